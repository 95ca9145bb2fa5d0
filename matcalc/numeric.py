"""NumPy evaluation of matcalc expressions, the numeric half of verification.

A derivative is only trustworthy once it agrees with finite differences, and both sides of that check
need the expression's value at concrete points. :func:`evaluate` gives that value for any AST.

Conventions (shared with :mod:`matcalc.sympy_backend`):

* Inside the evaluator every value follows the node's *static* shape: a node of shape ``()`` is an
  ``numpy.float64``, every other node a 2-D float64 array, ``(n, 1)`` for a column and ``(1, n)`` for a row.
  Deciding by the static shape (not by the array's size) keeps a vector with ``n = 1`` a vector.
* Symbolic dimensions are bound from the shapes of the values given (and from ``sizes``); each binding
  remembers which symbol fixed it, so a conflict names both sides.
* A symbol declared symmetric (and its differential) must be given a symmetric value: derivatives
  with respect to symmetric matrices are only right on symmetric points, so a wrong input is an error.
* What is returned to the user goes through :func:`to_user`: scalars as ``float``, row and column
  vectors as 1-D arrays, matrices as 2-D arrays.
* Floating-point trouble follows IEEE rules silently (``log(0) = -inf``, ``0/0 = nan``): the verifier
  looks at the numbers, and warnings from deep inside an evaluation point at nothing useful.
  ``logdet`` of a matrix with a negative determinant is ``nan`` (zero determinant: ``-inf``).
  A singular ``inv`` raises ``numpy.linalg.LinAlgError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import nodes as N
from .errors import CheckError, UnknownNameError
from .shapes import Dim, DimLike, DimProduct, Shape, describe, is_vector

__all__ = [
    "NumpyEvaluator", "evaluate", "to_user", "SizeBinder", "leaves_of", "lookup_value", "as_internal",
]

#: An internal value: a float64 scalar or a 2-D float64 array.
Value = np.float64 | np.ndarray
Leaf = N.Symbol | N.Differential


# --- leaves and their values ------------------------------------------------------------------------
def leaves_of(node: N.Node) -> list[Leaf]:
    """The Symbol and Differential leaves of a DAG, in order of first appearance."""
    return [n for n in N.walk(node) if isinstance(n, N.Symbol | N.Differential)]


def leaf_name(leaf: Leaf) -> str:
    """``x`` for the symbol x, ``dx`` for its differential: the name used in messages and as a key."""
    return leaf.name if isinstance(leaf, N.Symbol) else "d" + leaf.symbol.name


def lookup_value(values: Mapping, leaf: Leaf) -> Any:
    """The value given for a leaf.

    A Symbol is found by its name or by the node itself; a Differential by the node itself or, failing
    that, by the string ``"d" + name`` (the key :mod:`matcalc.sympy_backend` uses for it).
    """
    if isinstance(leaf, N.Symbol):
        keys: tuple = (leaf.name, leaf)
    else:
        keys = (leaf, "d" + leaf.symbol.name)
    for key in keys:
        try:
            if key in values:
                return values[key]
        except TypeError:  # an unhashable mapping key type; treat as absent
            continue
    what = "the differential" if isinstance(leaf, N.Differential) else "the symbol"
    raise UnknownNameError(f"no value given for {what} {leaf_name(leaf)} ({describe(leaf.shape)})")


def as_internal(value: Any, shape: Shape, who: str) -> Value:
    """A user value as an internal one for a leaf of static ``shape``; 1-D arrays become columns or rows.

    Raises CheckError when the number of axes cannot fit (a vector given for a scalar, and so on); the
    sizes along the axes are checked by :class:`SizeBinder`.
    """
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CheckError(f"the value of {who} is not a real number or array: {exc}") from None
    if shape == ():
        if arr.ndim != 0:
            raise CheckError(f"{who} is a scalar but was given an array of shape {arr.shape}")
        return np.float64(arr)
    if arr.ndim == 1:
        if shape[1] == 1:
            return arr.reshape(-1, 1)
        if shape[0] == 1:
            return arr.reshape(1, -1)
        raise CheckError(f"{who} is a {describe(shape)} but was given a 1-D array of length {arr.shape[0]}")
    if arr.ndim != 2:
        raise CheckError(f"{who} is a {describe(shape)} but was given an array of shape {arr.shape}")
    return arr


class SizeBinder:
    """Sizes of symbolic dimensions, each remembering what fixed it so conflicts can be explained."""

    def __init__(self, sizes: Mapping | None = None):
        self.sizes: dict[str, int] = {}
        self.origin: dict[str, str] = {}
        for key, size in (sizes or {}).items():
            name = key.name if isinstance(key, Dim) else str(key)
            if int(size) != size or size < 0:
                raise CheckError(f"the size of {name} must be a non-negative integer, not {size!r}")
            self.sizes[name] = int(size)
            self.origin[name] = "sizes"

    def size(self, d: DimLike) -> int | None:
        """The size of a dimension, or None while one of its factors is unbound."""
        if isinstance(d, int):
            return d
        if isinstance(d, DimProduct):
            out = 1
            for f in d.factors:
                s = self.size(f)
                if s is None:
                    return None
                out *= s
            return out
        return self.sizes.get(d.name)

    def require(self, d: DimLike, what: str) -> int:
        s = self.size(d)
        if s is None:
            unbound = [f.name for f in _factors(d) if isinstance(f, Dim) and f.name not in self.sizes]
            raise CheckError(f"the size of dimension {', '.join(unbound)} (in {what}) is unknown: no value "
                             f"fixes it; pass sizes={{{unbound[0]!r}: ...}}")
        return s

    def concrete(self, shape: Shape, what: str) -> tuple[int, ...]:
        return tuple(self.require(d, what) for d in shape)

    def match(self, d: DimLike, actual: int, who: str) -> bool:
        """Bind or check ``d`` against a size seen in ``who``'s value; False if it must wait (a product)."""
        known = self.size(d)
        if known is not None:
            if known != actual:
                if isinstance(d, Dim):
                    raise CheckError(f"size mismatch for {who}: dimension {d.name} is {known} (fixed by "
                                     f"{self.origin[d.name]}) but {who} has size {actual} there")
                raise CheckError(f"size mismatch for {who}: expected size {d} = {known}, got {actual}")
            return True
        if isinstance(d, Dim):
            self.sizes[d.name] = actual
            self.origin[d.name] = who
            return True
        # A product with unbound factors: solvable once a single factor is left unknown.
        unbound = [f for f in d.factors if not isinstance(f, int) and self.size(f) is None]
        if len(unbound) != 1:
            return False
        rest = 1
        for f in d.factors:
            if f is not unbound[0]:
                rest *= self.size(f)
        if rest == 0 or actual % rest:
            raise CheckError(f"size mismatch for {who}: size {actual} is not a multiple of {rest} ({d})")
        return self.match(unbound[0], actual // rest, who)


def _factors(d: DimLike) -> tuple:
    return d.factors if isinstance(d, DimProduct) else (d,)


def bind_leaves(leaves: list[Leaf], values: Mapping, binder: SizeBinder) -> dict[int, Value]:
    """Look up, convert and size-check the value of every leaf; returns internal values by leaf id."""
    out: dict[int, Value] = {}
    pending: list[tuple[DimLike, int, str]] = []
    for leaf in leaves:
        who = leaf_name(leaf)
        value = as_internal(lookup_value(values, leaf), leaf.shape, who)
        if leaf.shape != ():
            for d, actual in zip(leaf.shape, value.shape, strict=True):
                if not binder.match(d, actual, who):
                    pending.append((d, actual, who))
            symbolic = leaf.symbol if isinstance(leaf, N.Differential) else leaf
            if symbolic.symmetric and not np.allclose(value, value.T, equal_nan=True):
                raise CheckError(f"{who} is declared symmetric but the value given is not symmetric")
        out[id(leaf)] = value
    while pending:
        still = [p for p in pending if not binder.match(*p)]
        if len(still) == len(pending):
            d, actual, who = still[0]
            raise CheckError(f"cannot split the size {actual} of {who} into the dimensions {d}; pass sizes")
        pending = still
    return out


# --- conversion back --------------------------------------------------------------------------------
def to_user(value: Any, shape: Shape) -> float | np.ndarray:
    """An internal value as the user sees it: float for a scalar, 1-D array for a vector, else 2-D."""
    if shape == ():
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    arr = np.array(value, dtype=np.float64)
    if is_vector(shape):
        return arr.reshape(-1)
    return arr if arr.ndim == 2 else np.atleast_2d(arr)


def _scalar(x: Any) -> np.float64:
    return np.float64(np.asarray(x, dtype=np.float64).reshape(()))


# --- element-wise functions -------------------------------------------------------------------------
def _sigmoid(x):
    # exp(-|x|) never overflows; pick the algebraically equal form that does not cancel.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


FUNCTIONS: dict[str, Callable] = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "step": lambda x: np.where(x > 0, 1.0, 0.0),
}
assert set(FUNCTIONS) == set(N.ELEMENTWISE)


def _logsumexp(x) -> np.float64:
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x)
    if not np.isfinite(m):  # all -inf, or some +inf / nan: the shift below would give nan
        return np.float64(np.log(np.sum(np.exp(x))))
    return np.float64(m + np.log(np.sum(np.exp(x - m))))


# --- the evaluator ----------------------------------------------------------------------------------
class NumpyEvaluator:
    """Evaluates nodes with NumPy, one ``_eval_<Class>`` method per node class.

    Values are memoised per node for the life of the evaluator, so a subexpression shared in the DAG
    is computed once. Evaluation is iterative (children first, from an explicit stack), so deep trees
    do not hit Python's recursion limit.
    """

    def __init__(self, values: Mapping, sizes: Mapping | None = None):
        self.values = values
        self.binder = SizeBinder(sizes)
        self._leaf_values: dict[int, Value] = {}
        self._memo: dict[int, tuple[N.Node, Value]] = {}

    def eval(self, node: N.Node) -> Value:
        """The internal value of ``node`` (see the module docstring)."""
        memo = self._memo
        if id(node) in memo:
            return memo[id(node)][1]
        new = [leaf for leaf in leaves_of(node) if id(leaf) not in self._leaf_values]
        self._leaf_values.update(bind_leaves(new, self.values, self.binder))
        with np.errstate(all="ignore"):
            stack: list[tuple[N.Node, bool]] = [(node, False)]
            while stack:
                n, ready = stack.pop()
                if id(n) in memo:
                    continue
                if ready:
                    memo[id(n)] = (n, self._dispatch(n))
                    continue
                stack.append((n, True))
                stack.extend((c, False) for c in reversed(n.children) if id(c) not in memo)
        return memo[id(node)][1]

    def _dispatch(self, n: N.Node) -> Value:
        method = getattr(self, "_eval_" + type(n).__name__, None)
        if method is None:  # pragma: no cover - every node class has a method
            raise NotImplementedError(f"numeric evaluation of {type(n).__name__}")
        out = method(n)
        return _scalar(out) if n.shape == () else np.asarray(out, dtype=np.float64)

    def _v(self, n: N.Node) -> Value:
        return self._memo[id(n)][1]

    def _shape(self, n: N.Node) -> tuple[int, ...]:
        return self.binder.concrete(n.shape, type(n).__name__)

    # --- leaves --------------------------------------------------------------------------------
    def _eval_Symbol(self, n):
        return self._leaf_values[id(n)]

    _eval_Differential = _eval_Symbol

    def _eval_Number(self, n):
        return float(n.value)

    def _eval_Identity(self, n):
        return np.eye(self.binder.require(n.size, "the identity matrix"))

    def _eval_Commutation(self, n):
        m, k = (self.binder.require(d, "the commutation matrix") for d in n.args)
        return np.eye(m * k)[np.arange(m * k).reshape(k, m).T.reshape(-1)]

    def _eval_Ones(self, n):
        return 1.0 if n.shape == () else np.ones(self._shape(n))

    def _eval_Zeros(self, n):
        return 0.0 if n.shape == () else np.zeros(self._shape(n))

    def _eval_Fill(self, n):
        return np.full(self._shape(n), self._v(n.value))

    # --- arithmetic ----------------------------------------------------------------------------
    def _eval_Add(self, n):
        out = self._v(n.args[0])
        for t in n.args[1:]:
            out = out + self._v(t)
        return out

    def _eval_Neg(self, n):
        return -self._v(n.args[0])

    def _eval_MatMul(self, n):
        scale = np.float64(1.0)
        product = None
        for f in n.args:
            v = self._v(f)
            if f.shape == ():
                scale = scale * v
            else:
                product = v if product is None else product @ v
        return scale if product is None else scale * product

    def _eval_Div(self, n):
        return self._v(n.args[0]) / self._v(n.args[1])

    def _eval_Hadamard(self, n):
        out = self._v(n.args[0])
        for f in n.args[1:]:
            out = out * self._v(f)
        return out

    def _eval_ElemDiv(self, n):
        return self._v(n.args[0]) / self._v(n.args[1])

    def _eval_Dot(self, n):
        a, b = (np.ravel(self._v(c)) for c in n.args)
        return np.dot(a, b)

    def _eval_Power(self, n):
        base, exponent = n.args
        if base.shape == ():
            return np.power(self._v(base), self._v(exponent))
        return np.linalg.matrix_power(self._v(base), int(exponent.value))

    def _eval_ElemPower(self, n):
        return np.power(self._v(n.args[0]), self._v(n.args[1]))

    def _eval_Transpose(self, n):
        v = self._v(n.args[0])
        return v if n.shape == () else v.T

    # --- functions -----------------------------------------------------------------------------
    def _eval_Apply(self, n):
        return FUNCTIONS[n.function](self._v(n.args[1]))

    def _eval_Sum(self, n):
        return np.sum(self._v(n.args[0]))

    def _eval_Mean(self, n):
        return np.mean(self._v(n.args[0]))

    def _eval_Numel(self, n):
        return float(np.size(self._v(n.args[0])))

    def _eval_LogSumExp(self, n):
        return _logsumexp(self._v(n.args[0]))

    def _eval_Norm(self, n):
        v = self._v(n.args[0])
        return np.sqrt(np.sum(np.square(v))) if n.order == 2 else np.sum(np.abs(v))

    def _eval_Trace(self, n):
        return np.trace(self._v(n.args[0]))

    def _eval_Det(self, n):
        return np.linalg.det(self._v(n.args[0]))

    def _eval_LogDet(self, n):
        sign, logabs = np.linalg.slogdet(self._v(n.args[0]))
        if sign < 0:
            return np.nan  # log of a negative determinant: not real
        return logabs if sign > 0 else -np.inf

    def _eval_Inv(self, n):
        return np.linalg.inv(self._v(n.args[0]))

    def _eval_Softmax(self, n):
        v = self._v(n.args[0])
        e = np.exp(v - np.max(v))
        return e / np.sum(e)

    def _eval_DiagMat(self, n):
        return np.diag(np.ravel(self._v(n.args[0])))

    def _eval_DiagVec(self, n):
        return np.diag(self._v(n.args[0])).reshape(-1, 1)

    def _eval_Kron(self, n):
        return np.kron(self._v(n.args[0]), self._v(n.args[1]))

    def _eval_VectorLit(self, n):
        return np.array([self._v(e) for e in n.args], dtype=np.float64).reshape(-1, 1)

    def _eval_MatrixLit(self, n):
        return np.array([[self._v(e) for e in row] for row in n.rows], dtype=np.float64)


def evaluate(node: N.Node, values: Mapping, sizes: Mapping[str, int] | None = None) -> float | np.ndarray:
    """The value of ``node`` at ``values`` (names or Symbol/Differential nodes to numbers or arrays).

    ``sizes`` fixes symbolic dimensions no value determines (``vector(2)`` alone). The result is a
    float for a scalar, a 1-D array for a vector and a 2-D array for a matrix (see :func:`to_user`).
    """
    return to_user(NumpyEvaluator(values, sizes).eval(node), node.shape)
