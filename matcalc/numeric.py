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
from functools import partial
from typing import Any

import numpy as np

from . import nodes as N
from . import ops
from .budget import budgeted, checkpoint
from .errors import ArgumentShapeError, CheckError, UnknownNameError
from .shapes import Dim, DimLike, DimProduct, Shape, describe, is_vector
from .visit import Visitor, find_method

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
    arr = _real_array(value, who)
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


def _real_array(value: Any, who: str) -> np.ndarray:
    """``value`` as a float64 array; complex, ragged, non-numeric and NaN values are refused with a
    CheckError naming ``who`` (a complex number would otherwise lose its imaginary part silently)."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise CheckError(f"the value of {who} is not a real number or array: {_first_line(exc)}") from None
    if raw.dtype.kind == "c":
        raise CheckError(f"the value of {who} is complex; matcalc evaluates real numbers only")
    if raw.dtype.kind not in "biuf":
        raise CheckError(f"the value of {who} is not a real number or array (it holds {raw.dtype} values: "
                         "a ragged list, strings or objects)")
    if raw.size > MAX_ENTRIES:
        raise CheckError(f"the value of {who} has {raw.size:,} entries, more than matcalc evaluates")
    arr = np.array(raw, dtype=np.float64)
    if np.isnan(arr).any():  # ±inf are numbers to IEEE and follow its rules (see the module docstring)
        raise CheckError(f"the value of {who} holds nan (not a number)")
    return arr


#: The most entries of an array the evaluator builds (2 GiB of float64): a constant such as ``eye(n)``
#: with ``sizes={"n": 10**9}`` is refused rather than allocated.
MAX_ENTRIES = 1 << 28


def _not_too_large(shape: tuple[int, ...]) -> tuple[int, ...]:
    entries = 1
    for s in shape:
        entries *= s
    if entries > MAX_ENTRIES:
        raise CheckError(f"an array of shape {shape} ({entries:,} entries) is larger than matcalc evaluates "
                         f"({MAX_ENTRIES:,} entries)")
    return shape


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


class SingularMatrixError(CheckError, np.linalg.LinAlgError):
    """An inverse of a singular matrix at the values given (also a LinAlgError, as NumPy raises)."""


def adjugate(a: np.ndarray) -> np.ndarray:
    """adj(A) = det(A) A⁻¹, computed without inverting, so it exists at singular A too.

    With A = U diag(s) Vᵀ: adj(A) = det(U) det(V) V diag(p) Uᵀ, p_i the product of the other s_j.
    """
    k = a.shape[0]
    if k == 1:
        return np.ones((1, 1))
    u, s, vt = np.linalg.svd(a)
    before = np.concatenate(([1.0], np.cumprod(s[:-1])))
    after = np.concatenate((np.cumprod(s[::-1][:-1])[::-1], [1.0]))
    sign = np.linalg.det(u) * np.linalg.det(vt)
    return sign * (vt.T * (before * after)) @ u.T


def _with_adjugates(factors, ev: NumpyEvaluator) -> list:
    """The factors' values, each ``det(X)`` (or ``det(X)^k``) paired with a singular ``inv(X)`` (or its
    transpose) replaced by 1 (``det(X)^(k-1)``) and ``adj(X)``: ``det(X) inv(X)`` is the adjugate, which
    the derivative of ``det`` needs and which exists where the inverse does not."""
    values = [ev._v(f) for f in factors]
    for i, f in enumerate(factors):
        if id(f) not in ev._singular:
            continue
        transposed = isinstance(f, N.Transpose)
        x = (f.args[0] if transposed else f).args[0]
        for j, g in enumerate(factors):
            k = g.args[1].value if isinstance(g, N.Power) and isinstance(g.args[1], N.Number) else 1
            base = g.args[0] if isinstance(g, N.Power) else g
            if isinstance(base, N.Det) and base.args[0] is x and k >= 1 and values[j] is not None:
                adj = adjugate(ev._v(x))
                values[i] = adj.T if transposed else adj
                values[j] = np.power(ev._v(base), float(k - 1))
                break
        else:
            ev._refuse_singular([f])
    return values


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
#: NumPy evaluation of each element-wise function, from its record in the catalogue (matcalc.ops).
FUNCTIONS: dict[str, Callable] = {name: partial(op.numpy, np) for name, op in ops.ELEMENTWISE.items()}


def _logsumexp(x) -> np.float64:
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x)
    if not np.isfinite(m):  # all -inf, or some +inf / nan: the shift below would give nan
        return np.float64(np.log(np.sum(np.exp(x))))
    return np.float64(m + np.log(np.sum(np.exp(x - m))))


# --- the evaluator ----------------------------------------------------------------------------------
class NumpyEvaluator(Visitor):
    """Evaluates nodes with NumPy: one ``_eval_<Class>`` method per operator, and a call's rule from its
    record in the operation catalogue (``_eval_Call``).

    Values are memoised per node for the life of the evaluator, so a subexpression shared in the DAG
    is computed once. Evaluation is iterative (children first, from an explicit stack), so deep trees
    do not hit Python's recursion limit.
    """

    def __init__(self, values: Mapping, sizes: Mapping | None = None):
        super().__init__()
        self.values = values
        self.binder = SizeBinder(sizes)
        self._leaf_values: dict[int, Value] = {}
        #: Inverses of singular matrices (and their transposes): NaN placeholders that only a product
        #: ``det(X) ... inv(X)`` may use, as the adjugate; anything else using one raises.
        self._singular: set[int] = set()

    def eval(self, node: N.Node) -> Value:
        """The internal value of ``node`` (see the module docstring)."""
        if id(node) in self._memo:
            return self._memo[id(node)][1]
        new = [leaf for leaf in leaves_of(node) if id(leaf) not in self._leaf_values]
        self._leaf_values.update(bind_leaves(new, self.values, self.binder))
        with np.errstate(all="ignore"):
            self.visit(node)
        self._refuse_singular([node])
        return self._memo[id(node)][1]

    def step(self) -> None:
        checkpoint()

    def apply(self, n: N.Node) -> Value:
        """The value of one node whose children are evaluated: its ``_eval_<Class>`` method, in float64."""
        method = find_method(self, "_eval_", type(n))
        if method is None:  # pragma: no cover - every node class has a method
            raise NotImplementedError(f"numeric evaluation of {type(n).__name__}")
        if self._singular and not isinstance(n, N.Transpose | N.MatMul):
            self._refuse_singular(n.children)
        try:
            out = method(n)
        except np.linalg.LinAlgError as exc:
            raise SingularMatrixError(f"{type(n).__name__.lower()} failed at the values given: {exc}") from None
        return _scalar(out) if n.shape == () else np.asarray(out, dtype=np.float64)

    def _refuse_singular(self, nodes) -> None:
        for c in nodes:
            if id(c) in self._singular:
                raise SingularMatrixError("the inverse of a singular matrix is needed at the values given")

    def _v(self, n: N.Node) -> Value:
        return self._memo[id(n)][1]

    def _shape(self, n: N.Node) -> tuple[int, ...]:
        return _not_too_large(self.binder.concrete(n.shape, type(n).__name__))

    # --- leaves --------------------------------------------------------------------------------
    def _eval_Symbol(self, n):
        return self._leaf_values[id(n)]

    _eval_Differential = _eval_Symbol

    def _eval_Number(self, n):
        try:
            return float(n.value)
        except OverflowError:
            raise CheckError("a number in the expression is beyond the range of float64 (about 1.8e308) "
                             "and cannot be evaluated") from None

    def _eval_Pi(self, n):
        return np.float64(np.pi)

    def _eval_Identity(self, n):
        size = self.binder.require(n.size, "the identity matrix")
        return np.eye(_not_too_large((size, size))[0])

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
        values = _with_adjugates(n.args, self) if self._singular else [self._v(f) for f in n.args]
        for f, v in zip(n.args, values, strict=True):
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

    def _eval_Power(self, n):
        base, exponent = n.args
        if base.shape == ():
            return np.power(self._v(base), self._v(exponent))
        return np.linalg.matrix_power(self._v(base), int(exponent.value))

    def _eval_ElemPower(self, n):
        return np.power(self._v(n.args[0]), self._v(n.args[1]))

    def _eval_Transpose(self, n):
        if id(n.args[0]) in self._singular:
            self._singular.add(id(n))
        v = self._v(n.args[0])
        return v if n.shape == () else v.T

    # --- functions -----------------------------------------------------------------------------
    def _eval_Apply(self, n):
        return FUNCTIONS[n.function](self._v(n.args[1]))

    def _eval_Call(self, n):
        """A call (det, softmax, kron ...): the NumPy rule of its record in the catalogue."""
        return n.record.numpy(self, n, *[self._v(c) for c in n.children])

    # what the catalogue's NumPy rules use (``ev.np``, ``ev.logsumexp``, ``ev.out``, ``ev.singular``)
    np = np
    logsumexp = staticmethod(_logsumexp)

    def out(self, n: N.Node, value: np.ndarray) -> Value:
        """A row-wise result as the node's value (a scalar result is a reduction of one row)."""
        return np.float64(value[0, 0]) if n.shape == () else value

    def singular(self, n: N.Node, a: np.ndarray) -> np.ndarray:
        """The inverse of a singular matrix: a NaN placeholder that only a product ``det(X) ... inv(X)``
        may use, as the adjugate; anything else using it raises."""
        self._singular.add(id(n))
        return np.full(np.shape(a), np.nan)

    def _eval_VectorLit(self, n):
        return np.array([self._v(e) for e in n.args], dtype=np.float64).reshape(-1, 1)

    def _eval_MatrixLit(self, n):
        return np.array([[self._v(e) for e in row] for row in n.rows], dtype=np.float64)


@budgeted("the evaluation")
def evaluate(node, values: Mapping | None = None, sizes: Mapping[str, int] | None = None, **named):
    """The value of ``node`` at ``values`` (names or Symbol/Differential nodes to numbers or arrays).

    ``node`` is a parsed expression, a string (parsed silently) or a derivative; values are given as a
    mapping, as keywords, or both (``evaluate(e, {"x": x}, A=A)``), the same way as
    ``Derivative.evaluate``. ``sizes`` fixes symbolic dimensions no value determines (``vector(2)``
    alone). The result is a float for a scalar, a 1-D array for a vector and a 2-D array for a matrix
    (see :func:`to_user`). A value of the wrong shape raises :class:`~matcalc.ArgumentShapeError`.
    """
    if named:
        values = {**(values or {}), **named}
    values = {} if values is None else values
    if isinstance(node, str):
        from .typecheck import typecheck

        node = typecheck(node)
    if not isinstance(node, N.Node) and hasattr(node, "evaluate"):  # a Derivative
        return node.evaluate(values, sizes=sizes)
    sizes = user_sizes([leaf for leaf in leaves_of(node) if isinstance(leaf, N.Symbol)], values, sizes)
    return to_user(NumpyEvaluator(values, sizes).eval(node), node.shape)


def _user_dims(shape: Shape, given: tuple) -> tuple | None:
    """``(dimension, size)`` pairs for a value of NumPy shape ``given`` of a variable of ``shape``, or None
    if it cannot fit (a vector takes a 1-D array, or a 2-D column or row of its own orientation)."""
    if shape == ():
        return () if given == () else None
    if is_vector(shape):
        column = shape[1] == 1
        d = shape[0] if column else shape[1]
        if len(given) == 1:
            return ((d, given[0]),)
        if len(given) == 2 and (given[1] == 1 if column else given[0] == 1):
            return ((d, given[0] if column else given[1]),)
        return None
    return tuple(zip(shape, given, strict=True)) if len(given) == 2 else None


def _expected_text(shape: Shape, binder: SizeBinder) -> str:
    dims = [shape[0] if shape[1] == 1 else shape[1]] if is_vector(shape) else list(shape)
    shown = [str(binder.size(d)) if binder.size(d) is not None else str(d) for d in dims]
    return "()" if shape == () else f"({shown[0]},)" if len(shown) == 1 else f"({', '.join(shown)})"


def user_sizes(symbols, values: Mapping, sizes: Mapping | None = None) -> dict[str, int]:
    """The sizes of the dimensions, read off the values given for ``symbols`` (in order).

    A value whose shape cannot be the variable's raises :class:`~matcalc.ArgumentShapeError` naming the
    argument, the shape expected (sizes already fixed by earlier arguments filled in) and the shape
    given; names without a value are skipped (the evaluator reports them).
    """
    binder = SizeBinder(sizes)
    for s in symbols:
        try:
            given = np.shape(lookup_value(values, s))
        except (UnknownNameError, ValueError):
            continue
        pairs = _user_dims(s.shape, given)
        expected = _expected_text(s.shape, binder)
        clash = pairs is None or any(binder.size(d) not in (None, a) for d, a in pairs)
        if clash:
            fixed = sorted({f"{d} = {binder.size(d)} (from {binder.origin.get(str(d), 'sizes')})" for d in
                            _factors_of_shape(s.shape) if isinstance(d, Dim) and binder.size(d) is not None})
            raise ArgumentShapeError(f"wrong shape for {s.name}: expected {expected}, a {describe(s.shape)}"
                                     f"{' with ' + ', '.join(fixed) if fixed else ''}; got {given}")
        for d, a in pairs:
            binder.match(d, a, s.name)
    return binder.sizes


def _factors_of_shape(shape: Shape) -> list:
    return [f for d in shape for f in _factors(d)]
