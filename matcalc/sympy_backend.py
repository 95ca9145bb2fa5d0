"""Explicit SymPy matrices at concrete sizes: the ground truth a derivative is checked against.

A closed-form matrix derivative is easy to get subtly wrong (a missing transpose, a factor of 2 from
symmetry). Writing every entry out as a SymPy expression at small concrete sizes and differentiating
entry by entry cannot make those mistakes, so it is the reference the verifier compares with.

Conventions (the same as :mod:`matcalc.numeric`):

* scalars are SymPy expressions; every other value is a ``sympy.Matrix``: ``n x 1`` for a column,
  ``1 x n`` for a row. The static shape decides, so a vector with ``n = 1`` is still a 1 x 1 Matrix.
* the entries of a symbol ``X`` are real symbols ``X_i_j`` (0-based, like NumPy), of a vector ``x_i``;
  a symmetric matrix uses one symbol for ``X[i, j]`` and ``X[j, i]`` (named ``X_i_j`` with ``i <= j``).
* a Differential ``dX`` is an independent matrix of real symbols ``dX_i_j``, stored under the key
  ``"dX"``; it is symmetric when ``X`` is, since a perturbation of a symmetric matrix is symmetric.
* element-wise kinks are Piecewise: ``relu(x) = x if x > 0 else 0``, ``step(x) = 1 if x > 0 else 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import sympy

from . import nodes as N
from . import ops
from .errors import CheckError, UnknownNameError
from .numeric import SizeBinder, as_internal, leaf_name, leaves_of, to_user
from .shapes import DimLike, Shape, is_vector
from .visit import Visitor

__all__ = [
    "default_sizes", "symbol_matrices", "to_explicit", "ExplicitBuilder", "numeric_value", "FUNCTIONS",
]

Explicit = sympy.Expr | sympy.MatrixBase


def default_sizes(node: N.Node) -> dict[str, int]:
    """Distinct sizes 2, 3, 4, ... for the symbolic dimensions of ``node``, in :func:`dims_in` order.

    Distinct sizes make every non-square shape non-square, so a transposed result cannot pass.
    """
    return {d.name: 2 + i for i, d in enumerate(N.dims_in(node))}


def _concrete(shape: Shape, sizes: Mapping[str, int], what: str) -> tuple[int, ...]:
    return SizeBinder(sizes).concrete(shape, what)


def _entries(name: str, static: Shape, shape: tuple[int, ...], symmetric: bool) -> Explicit:
    """The explicit value of a leaf named ``name`` of static shape ``static``, concrete ``shape``."""
    if shape == ():
        return sympy.Symbol(name, real=True)
    rows, cols = shape
    if is_vector(static):
        return sympy.Matrix(rows, cols, [sympy.Symbol(f"{name}_{k}", real=True) for k in range(rows * cols)])
    if symmetric:
        return sympy.Matrix(rows, cols,
                            lambda i, j: sympy.Symbol(f"{name}_{min(i, j)}_{max(i, j)}", real=True))
    return sympy.Matrix(rows, cols, lambda i, j: sympy.Symbol(f"{name}_{i}_{j}", real=True))


def symbol_matrices(node: N.Node, sizes: Mapping[str, int] | None = None,
                    differentials: bool = False) -> dict[str, Explicit]:
    """Explicit SymPy values for the leaves of ``node``, by name (``"x"``, and ``"dx"`` for ``dx``).

    Differentials found in ``node`` are always included; ``differentials=True`` adds ``d<name>`` for
    every symbol too, for building linear maps ``dX -> ...`` next to the expression.
    """
    sizes = default_sizes(node) if sizes is None else sizes
    out: dict[str, Explicit] = {}
    owner: dict[str, N.Node] = {}
    leaves: list = leaves_of(node)
    if differentials:
        leaves += [N.Differential(s) for s in N.symbols_of(node)]
    for leaf in leaves:
        name = leaf_name(leaf)
        if name in owner:
            if owner[name] is not leaf:
                raise CheckError(f"two leaves are both called {name}; rename the symbol {name}")
            continue
        symbol = leaf if isinstance(leaf, N.Symbol) else leaf.symbol
        owner[name] = leaf
        out[name] = _entries(name, leaf.shape, _concrete(leaf.shape, sizes, name), symbol.symmetric)
    return out


# --- element-wise functions -------------------------------------------------------------------------
#: SymPy form of each element-wise function, from its record in the catalogue (matcalc.ops).
FUNCTIONS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    name: partial(op.sympy, sympy) for name, op in ops.ELEMENTWISE.items()}


def _is_matrix(v: Any) -> bool:
    return isinstance(v, sympy.MatrixBase)


def _entries_of(v: Explicit) -> list:
    return list(v) if _is_matrix(v) else [v]


def _broadcast(a: Explicit, b: Explicit) -> tuple[Explicit, Explicit]:
    """Scalar expansion: a scalar next to a matrix becomes a matrix of that scalar."""
    if _is_matrix(a) and not _is_matrix(b):
        return a, sympy.Matrix(a.rows, a.cols, [b] * (a.rows * a.cols))
    if _is_matrix(b) and not _is_matrix(a):
        return sympy.Matrix(b.rows, b.cols, [a] * (b.rows * b.cols)), b
    return a, b


def _elementwise(a: Explicit, b: Explicit, op: Callable) -> Explicit:
    a, b = _broadcast(a, b)
    if not _is_matrix(a):
        return op(a, b)
    return sympy.Matrix(a.rows, a.cols, [op(x, y) for x, y in zip(a, b, strict=True)])


def _apply(v: Explicit, f: Callable) -> Explicit:
    return v.applyfunc(f) if _is_matrix(v) else f(v)


def _inv(m: sympy.MatrixBase) -> sympy.Matrix:
    # adjugate / det is a fixed rational formula: no pivoting decisions on symbolic entries.
    return m.adjugate(method="berkowitz") / m.det(method="berkowitz")


class ExplicitBuilder(Visitor):
    """Builds explicit SymPy values, one ``_build_<Class>`` method per node class, memoised per node.

    Like :class:`matcalc.numeric.NumpyEvaluator` it works iteratively, children first, so deep DAGs
    neither recurse nor rebuild shared subexpressions.
    """

    prefix = "_build_"

    def __init__(self, sizes: Mapping[str, int], symbols: Mapping[str, Explicit]):
        super().__init__()
        self.sizes = dict(sizes)
        self.symbols = symbols

    def build(self, node: N.Node) -> Explicit:
        return self.visit(node)

    def _v(self, n: N.Node) -> Explicit:
        return self._memo[id(n)][1]

    def _size(self, d: DimLike, what: str) -> int:
        return SizeBinder(self.sizes).require(d, what)

    def _shape(self, n: N.Node) -> tuple[int, ...]:
        return _concrete(n.shape, self.sizes, type(n).__name__)

    def _const(self, n: N.Node, value) -> Explicit:
        if n.shape == ():
            return sympy.Integer(value)
        rows, cols = self._shape(n)
        return sympy.Matrix(rows, cols, [value] * (rows * cols))

    # --- leaves --------------------------------------------------------------------------------
    def _build_Symbol(self, n):
        name = leaf_name(n)
        if name not in self.symbols:
            raise UnknownNameError(f"no explicit value for {name}")
        v = self.symbols[name]
        want = self._shape(n)
        have = v.shape if _is_matrix(v) else ()
        if have != want:
            raise CheckError(f"the explicit value of {name} is {have}, but its shape is {want} here")
        return v

    _build_Differential = _build_Symbol

    def _build_Number(self, n):
        return sympy.Rational(n.value.numerator, n.value.denominator)

    def _build_Pi(self, n):
        return sympy.pi

    def _build_Identity(self, n):
        return sympy.eye(self._size(n.size, "the identity matrix"))

    def _build_Commutation(self, n):
        m, k = (self._size(d, "the commutation matrix") for d in n.args)
        return sympy.Matrix(m * k, m * k, lambda r, c: 1 if c == r // k + (r % k) * m else 0)

    def _build_Ones(self, n):
        return self._const(n, 1)

    def _build_Zeros(self, n):
        return self._const(n, 0)

    def _build_Fill(self, n):
        rows, cols = self._shape(n)
        return sympy.Matrix(rows, cols, [self._v(n.value)] * (rows * cols))

    # --- arithmetic ----------------------------------------------------------------------------
    def _build_Add(self, n):
        out = self._v(n.args[0])
        for t in n.args[1:]:
            out = _elementwise(out, self._v(t), lambda a, b: a + b)
        return out

    def _build_Neg(self, n):
        return -self._v(n.args[0])

    def _build_MatMul(self, n):
        scale = sympy.Integer(1)
        product = None
        for f in n.args:
            v = self._v(f)
            if f.shape == ():
                scale = scale * v
            else:
                product = v if product is None else product * v
        if product is None:
            return scale
        out = product * scale
        return out[0, 0] if n.shape == () else out

    def _build_Div(self, n):
        return self._v(n.args[0]) / self._v(n.args[1])

    def _build_Hadamard(self, n):
        out = self._v(n.args[0])
        for f in n.args[1:]:
            out = _elementwise(out, self._v(f), lambda a, b: a * b)
        return out

    def _build_ElemDiv(self, n):
        return _elementwise(self._v(n.args[0]), self._v(n.args[1]), lambda a, b: a / b)

    def _build_Power(self, n):
        base, exponent = n.args
        if base.shape == ():
            return self._v(base) ** self._v(exponent)
        m, p = self._v(base), int(exponent.value)
        if p < 0:
            m, p = _inv(m), -p
        return sympy.eye(m.rows) if p == 0 else m**p

    def _build_ElemPower(self, n):
        p = self._v(n.args[1])
        return _apply(self._v(n.args[0]), lambda e: e**p)

    def _build_Transpose(self, n):
        v = self._v(n.args[0])
        return v.T if _is_matrix(v) else v

    # --- functions -----------------------------------------------------------------------------
    def _build_Apply(self, n):
        return _apply(self._v(n.args[1]), FUNCTIONS[n.function])

    def _build_Call(self, n):
        """A call (det, softmax, kron ...): the SymPy rule of its record in the catalogue."""
        return n.record.sympy(self, n, *[self._v(c) for c in n.children])

    # what the catalogue's SymPy rules use (``b.sp``, ``b.entries``, ``b.inv``, ``b.rows_of``, ``b.column``)
    sp = sympy
    entries = staticmethod(_entries_of)
    inv = staticmethod(_inv)

    @staticmethod
    def rows_of(v: sympy.MatrixBase) -> list[list]:
        """The rows of a row-wise node's argument, each a list of entries."""
        return [list(v.row(i)) for i in range(v.rows)]

    @staticmethod
    def column(n: N.Node, entries: list) -> Explicit:
        """One entry per row: a column, or the scalar of a single row."""
        return entries[0] if n.shape == () else sympy.Matrix(len(entries), 1, entries)

    def _build_VectorLit(self, n):
        entries = [self._v(e) for e in n.args]
        return entries[0] if n.shape == () else sympy.Matrix(entries)

    def _build_MatrixLit(self, n):
        rows = [[self._v(e) for e in row] for row in n.rows]
        return rows[0][0] if n.shape == () else sympy.Matrix(rows)


def to_explicit(node: N.Node, sizes: Mapping[str, int] | None = None,
                symbols: Mapping[str, Explicit] | None = None) -> Explicit:
    """``node`` written out entry by entry at concrete ``sizes`` (default: :func:`default_sizes`).

    ``symbols`` gives the explicit leaves by name (default: :func:`symbol_matrices`); pass the same
    dict to :func:`numeric_value` and to ``sympy.diff``/``jacobian`` to know which symbol is which entry.
    """
    sizes = default_sizes(node) if sizes is None else sizes
    symbols = symbol_matrices(node, sizes) if symbols is None else symbols
    out = ExplicitBuilder(sizes, symbols).build(node)
    return out.copy() if _is_matrix(out) else out


# --- numbers back -----------------------------------------------------------------------------------
def _heaviside(x, at_zero=0.5):
    return np.heaviside(x, at_zero)


def _named_values(values: Mapping) -> dict[str, Any]:
    """Values keyed by leaf name: Symbol nodes become ``name``, Differential nodes ``"d" + name``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(key, (N.Symbol, N.Differential)):
            out[leaf_name(key)] = value
        else:
            out.setdefault(str(key), value)
    return out


def _leaf_shape(v: Explicit) -> Shape:
    return tuple(v.shape) if _is_matrix(v) else ()


def numeric_value(explicit: Explicit, symbols: Mapping[str, Explicit], values: Mapping,
                  shape: Shape | None = None) -> float | np.ndarray:
    """The number an explicit expression takes at ``values`` (same keys and forms as ``evaluate``).

    Only the leaves whose entries occur in ``explicit`` need a value. Symmetric leaves read each shared
    entry from the upper triangle and must be given symmetric values. The result follows
    :func:`matcalc.numeric.to_user` for ``shape`` (the node's static shape); without it a SymPy scalar
    gives a float, an ``n x 1`` or ``1 x n`` Matrix a 1-D array and any other Matrix a 2-D array.
    """
    if not _is_matrix(explicit):
        explicit = sympy.sympify(explicit)
    named = _named_values(values)
    free = explicit.free_symbols
    args: list[sympy.Symbol] = []
    nums: list[np.float64] = []
    seen: set = set()
    for name, leaf in symbols.items():
        entries = _entries_of(leaf)
        if not free.intersection(entries):
            continue
        if name not in named:
            raise UnknownNameError(f"no value given for {name}")
        leaf_shape = _leaf_shape(leaf)
        value = as_internal(named[name], leaf_shape, name)
        if np.shape(value) != leaf_shape:
            raise CheckError(f"{name} is {leaf_shape} here but was given a value of shape {np.shape(value)}")
        symmetric = len(leaf_shape) == 2 and len(set(entries)) < len(entries)
        if symmetric and not np.allclose(value, value.T, equal_nan=True):
            raise CheckError(f"{name} is symmetric but the value given is not symmetric")
        for entry, number in zip(entries, np.ravel(value), strict=True):
            if isinstance(entry, sympy.Symbol) and entry not in seen:
                seen.add(entry)
                args.append(entry)
                nums.append(np.float64(number))  # NumPy powers: nan, not complex
    missing = free - seen
    if missing:
        raise UnknownNameError(f"no value for the SymPy symbols {sorted(map(str, missing))}")
    # lambdify only ever sees expressions matcalc built itself, never user text.
    with np.errstate(all="ignore"):
        # Heaviside as NumPy's own: lambdify would print it as a Piecewise and simplify its condition,
        # which takes seconds when it compares Max expressions (the derivative of max of a matrix)
        result = sympy.lambdify(args, explicit, modules=[{"Heaviside": _heaviside}, "numpy"])(*nums)
    if shape is not None:
        return to_user(result, shape)
    if not _is_matrix(explicit):
        return float(np.asarray(result, dtype=np.float64).reshape(()))
    arr = np.array(result, dtype=np.float64).reshape(explicit.shape)
    return arr.reshape(-1) if 1 in explicit.shape else arr
