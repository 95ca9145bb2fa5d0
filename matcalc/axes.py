"""Axis-wise operations and broadcasting, written with the nodes of :mod:`matcalc.nodes`.

Why a module of its own: the typechecker's build stage turns ``sum(X, axis=1)``, ``var(X, axis=0)``,
``log_softmax(M)`` and ``X W + b'`` into nodes that already exist wherever it can (``X 𝟙``, ``𝟙 bᵀ``), so that
differentiation, Jacobians, Kronecker forms, simplification, code and SymPy verification need nothing new
for them; only the non-linear row-wise operations have nodes of their own (``SoftmaxRows``,
``LogSumExpRows``, ``MaxRows``). The rules (docs/language.md, "Axes and broadcasting"):

* ``axis=1`` reduces along each row (m x n -> m x 1), ``axis=0`` down each column (m x n -> 1 x n); the
  reduced axis is kept, as NumPy's ``keepdims=True``. On a column vector ``axis=0`` is the full reduction (a
  scalar) and ``axis=1`` keeps each single-entry row (``sum``, ``mean``, ``max``, ``min``, ``logsumexp`` give
  the vector itself, ``var`` zeros, ``norm`` the absolute values); a row vector mirrors that.
* ``axis=0`` of a row-wise node is the row-wise node of the transpose, transposed back.
* a row vector against an m x n matrix is repeated over the rows (``𝟙 r``), a column over the columns
  (``c 𝟙ᵀ``): the derivative with respect to the vector then sums over the repeated axis by itself.

This module imports only :mod:`matcalc.nodes`.
"""

from __future__ import annotations

from . import nodes as N

ROWS, COLUMNS = 1, 0


def _size_node(d) -> N.Node:
    """The number of entries reduced, ``n``: a Number for a known size, else ``numel(𝟙)`` (printed ``n``)."""
    return N.Number(d) if isinstance(d, int) else N.Numel(N.Ones((d, 1)))


def _reduced(x: N.Node, axis: int) -> str:
    """How ``axis`` reduces ``x``: "keep" (each slice is one entry), "all" (a vector reduced along its
    length: the full reduction), or "axis" (a matrix)."""
    r, c = x.shape
    size, other = (c, r) if axis == ROWS else (r, c)
    if size == 1:
        return "keep"
    return "all" if other == 1 else "axis"


def along(x: N.Node, axis: int | None, rows_op, full_op, keep_op=None) -> N.Node:
    """The reduction of ``x`` along ``axis`` from its row form ``rows_op`` (m x n -> m x 1), its full form
    ``full_op`` (a vector -> a scalar) and what it does to a single entry, ``keep_op`` (default: nothing)."""
    if axis is None or x.shape == ():
        return full_op(x)
    how = _reduced(x, axis)
    if how == "keep":
        return keep_op(x) if keep_op else x
    if how == "all":
        return full_op(x)
    return rows_op(x) if axis == ROWS else N.Transpose(rows_op(N.Transpose(x)))


def axis_sum(x: N.Node, axis: int | None) -> N.Node:
    """``sum(x, axis)``: ``X 𝟙`` along the rows, ``𝟙ᵀ X`` down the columns."""
    def rows(m):
        return N.MatMul(m, N.Ones((m.shape[1], 1)))

    if axis == COLUMNS and x.shape != () and _reduced(x, axis) == "axis":
        return N.MatMul(N.Ones((1, x.shape[0])), x)
    return along(x, axis, rows, N.Sum)


def axis_mean(x: N.Node, axis: int | None) -> N.Node:
    """``mean(x, axis)``: the sum divided by the number of entries reduced (``X 𝟙 / n``)."""
    if axis is None or x.shape == () or _reduced(x, axis) != "axis":
        return along(x, axis, None, N.Mean)
    size = x.shape[1] if axis == ROWS else x.shape[0]
    return N.Div(axis_sum(x, axis), _size_node(size))


def expand(v: N.Node, shape) -> N.Node:
    """``v`` repeated to ``shape``: a row over the rows (``𝟙 r``), a column over the columns (``c 𝟙ᵀ``); a
    scalar or a node of that shape as it is."""
    if v.shape == () or v.shape == shape or shape == ():
        return v
    if isinstance(v, N.Neg):  # -(μ) 𝟙ᵀ is -(μ 𝟙ᵀ): one node for the centring, as var() builds it
        return N.Neg(expand(v.args[0], shape))
    if v.shape[0] == 1 and v.shape[1] == shape[1]:
        return N.MatMul(N.Ones((shape[0], 1)), v)
    if v.shape[1] == 1 and v.shape[0] == shape[0]:
        return N.MatMul(v, N.Ones((1, shape[1])))
    return v  # the node's own shape check reports the mismatch


def broadcast(nodes) -> list[N.Node]:
    """The operands of an element-wise operation with every vector repeated to the matrix's shape."""
    full = next((n.shape for n in nodes if n.shape != () and n.shape[0] != 1 and n.shape[1] != 1), None)
    return list(nodes) if full is None else [expand(n, full) for n in nodes]


def axis_var(x: N.Node, axis: int | None) -> N.Node:
    """``var(x, axis)``: the mean of the squared deviations from the mean (biased, as ``numpy.var``)."""
    if x.shape == ():
        return N.Number(0)
    if axis is not None and _reduced(x, axis) == "keep":
        return N.Zeros(x.shape)
    deviation = N.Add(x, N.Neg(expand(axis_mean(x, axis), x.shape)))
    return axis_mean(N.ElemPower(deviation, N.Number(2)), axis)


def axis_norm(x: N.Node, axis: int | None) -> N.Node:
    """``norm(x, axis)``: the Euclidean norm of each row (column), ``sqrt(sum(x.^2, axis))``."""
    if axis is None or x.shape == () or _reduced(x, axis) == "all":
        return N.Norm(x, 2)
    if _reduced(x, axis) == "keep":
        return N.Apply("abs", x)
    return N.Apply("sqrt", axis_sum(N.ElemPower(x, N.Number(2)), axis))


def axis_logsumexp(x: N.Node, axis: int | None) -> N.Node:
    """``logsumexp(x, axis)``: ``LogSumExpRows`` along the rows."""
    return along(x, axis, N.LogSumExpRows, N.LogSumExp)


def axis_max(x: N.Node, axis: int | None) -> N.Node:
    """``max(x, axis)``; without an axis the largest entry of all (of a matrix: the largest row maximum)."""
    def full(v):
        if v.shape == ():
            return v
        if v.shape[0] == 1:
            return N.MaxRows(v)
        if v.shape[1] == 1:
            return N.MaxRows(N.Transpose(v))
        return N.MaxRows(N.Transpose(N.MaxRows(v)))

    return along(x, axis, N.MaxRows, full)


def axis_min(x: N.Node, axis: int | None) -> N.Node:
    """``min(x, axis) = -max(-x, axis)``."""
    return N.Neg(axis_max(N.Neg(x), axis))


def default_axis(x: N.Node, axis: int | None) -> int:
    """The axis softmax works along without one: a column vector's entries, else each row."""
    if axis is not None:
        return axis
    return COLUMNS if x.shape[1] == 1 else ROWS


def softmax(x: N.Node, axis: int | None) -> N.Node:
    """``softmax(x, axis)``: a column vector's ``Softmax``, else each row (``SoftmaxRows``); ``axis=0``
    makes each column a distribution. A single entry's softmax is 1."""
    axis = default_axis(x, axis)
    if _reduced(x, axis) == "keep":
        return N.Ones(x.shape)
    if x.shape[1] == 1:  # a column, axis=0
        return N.Softmax(x)
    if x.shape[0] == 1:  # a row, axis=1
        return N.Transpose(N.Softmax(N.Transpose(x)))
    return N.SoftmaxRows(x) if axis == ROWS else N.Transpose(N.SoftmaxRows(N.Transpose(x)))


def quotient(a: N.Node, b: N.Node) -> N.Node:
    """``a ./ b`` as typed: a softmax written out, ``exp(S) ./ sum(exp(S), axis=1)`` (as attention's
    papers write it, or ``exp(S) ./ (exp(S) ones(k) ones(k)')``), is ``softmax(S)``, the same function,
    whose derivative takes the softmax rule and whose code is the shifted, overflow-free form; likewise
    along the columns (``axis=0``). Anything else is the element-wise quotient."""
    a, b = broadcast([a, b])
    if isinstance(a, N.Apply) and a.function == "exp" and len(a.shape) == 2 and 1 not in a.shape:
        x = a.args[1]
        if _factors(b) == (a, N.Ones((x.shape[1], 1)), N.Ones((1, x.shape[1]))):
            return N.SoftmaxRows(x)
        if _factors(b) == (N.Ones((x.shape[0], 1)), N.Ones((1, x.shape[0])), a):
            return softmax(x, COLUMNS)
    return N.ElemDiv(a, b)


def _factors(m: N.Node) -> tuple:
    """The factors of a product, nested products flattened (``(A 𝟙) 𝟙ᵀ`` is ``A 𝟙 𝟙ᵀ``), a transposed
    ``ones(k)'`` as the row of ones it is."""
    if isinstance(m, N.Transpose) and isinstance(m.args[0], N.Ones):
        return (N.Ones((m.shape[0], m.shape[1])),)
    if not isinstance(m, N.MatMul):
        return (m,)
    return tuple(f for g in m.args for f in _factors(g))


def maxmask(x: N.Node, axis: int | None) -> N.Node:
    """``maxmask(x, axis)``: the tie-splitting indicator of each row's (column's) largest entries, the
    derivative weights of ``max``; along a column vector's entries without an axis, as softmax."""
    axis = default_axis(x, axis)
    if _reduced(x, axis) == "keep":
        return N.Ones(x.shape)
    return N.MaxRowsMask(x) if axis == ROWS else N.Transpose(N.MaxRowsMask(N.Transpose(x)))


def log_softmax(x: N.Node, axis: int | None) -> N.Node:
    """``log_softmax(x, axis) = x - logsumexp(x, axis)`` (repeated along the axis): stable, and linear in
    ``x`` but for the log-normaliser."""
    axis = default_axis(x, axis)
    return N.Add(x, N.Neg(expand(axis_logsumexp(x, axis), x.shape)))


#: The axis-wise calls by canonical name.
BUILDERS = {"sum": axis_sum, "mean": axis_mean, "var": axis_var, "norm": axis_norm,
            "logsumexp": axis_logsumexp, "max": axis_max, "min": axis_min, "softmax": softmax,
            "log_softmax": log_softmax, "maxmask": maxmask}
