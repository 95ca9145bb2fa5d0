"""``derive()``, ``hessian()`` and the :class:`Derivative` they return.

The pipeline for ``derive(F, X)`` is: the differential ``dF`` (:mod:`.rules`), then the matrix form read
off it (:mod:`.linear`), then the simplifier. Which reading applies depends on the shapes:

=====================  ==================  ==========================================================
F                      X                   result (numerator layout; denominator is the transpose)
=====================  ==================  ==========================================================
any                    scalar              dF/dX, shaped like F (``dx = 1``)
scalar                 vector or matrix    gradient by transposition; numerator is its transpose
vector                 vector              Jacobian (len F x len X) by forward batched tangents
vector or matrix       matrix              a 3- or 4-way tensor: linear map, Kronecker and index forms
=====================  ==================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import nodes as N
from .. import simplify as S
from ..errors import DeclarationError, MatcalcError, NoMatrixFormError, UnknownNameError
from ..nodes import Node, symbols_of
from ..printing import to_latex, to_text, to_unicode
from ..shapes import is_column, is_matrix, is_row
from .linear import forward_jacobian, pullback, substitute
from .rules import differential

LAYOUTS = ("numerator", "denominator")


def sizes_from(function: Node, values: dict) -> dict[str, int]:
    """Dimension sizes read off the values of the function's variables (a closed form such as ``I``
    may mention a dimension that none of its own symbols carries)."""
    import numpy as np

    from ..shapes import Dim

    sizes: dict[str, int] = {}
    for s in symbols_of(function):
        if s.name not in values or s.shape == ():
            continue
        shape = np.shape(values[s.name])
        dims = s.shape if len(shape) == 2 else (s.shape[0],) if s.shape[1] == 1 else (s.shape[1],)
        for d, size in zip(dims, shape, strict=False):
            if isinstance(d, Dim):
                sizes.setdefault(d.name, int(size))
    return sizes


def _prefer_positive(expr: Node) -> Node:
    """``-((a - b) c) -> (b - a) c``: absorb a leading minus into a difference it multiplies."""
    if isinstance(expr, N.Neg) and isinstance(expr.args[0], N.MatMul):
        factors = list(expr.args[0].args)
        for i, f in enumerate(factors):
            if isinstance(f, N.Add):
                factors[i] = S.add(*[S.neg(t) for t in f.args])
                return S.mul(*factors)
    return expr


def _symmetrise(g: Node) -> Node:
    """The gradient on the space of symmetric matrices: (G + Gᵀ) / 2."""
    gt = S.transpose(g)
    if gt is g:
        return g
    return S.div(S.add(g, gt), N.Number(2))


def gradient(F: Node, X: N.Symbol) -> Node:
    """The gradient of a scalar ``F`` in ``X``'s own shape (denominator layout)."""
    dF = differential(F, X)
    if dF is None:
        return S.zero_like(X.shape)
    if X.shape == ():
        return substitute(dF, {N.Differential(X): S.ONE})
    g = S.simplify(pullback(dF, N.Differential(X), S.ONE))
    return _symmetrise(g) if X.symmetric else g


def jacobian(F: Node, X: N.Symbol) -> Node:
    """The numerator-layout derivative of ``F`` with respect to ``X`` when it is a matrix."""
    if X.shape == ():
        dF = differential(F, X)
        return S.zero_like(F.shape) if dF is None else substitute(dF, {N.Differential(X): S.ONE})
    if F.shape == ():
        return S.transpose(gradient(F, X))
    if (is_column(F.shape) or is_row(F.shape)) and is_column(X.shape):
        dF = differential(F, X)
        length = F.shape[0] if is_column(F.shape) else F.shape[1]
        if dF is None:
            return N.Zeros((length, X.shape[0]))
        return S.simplify(forward_jacobian(dF, N.Differential(X)))
    dF = differential(F, X)
    shown = "0" if dF is None else to_unicode(dF)
    raise NoMatrixFormError(
        f"the derivative of {to_unicode(F)} ({_kind(F)}) with respect to {X.name} ({_kind(X)}) is a "
        f"{len(_axes(F)) + len(_axes(X))}-way tensor with no matrix form; its differential is "
        f"d({to_unicode(F)}) = {shown}")


def _axes(n: Node) -> tuple:
    if n.shape == ():
        return ()
    if is_column(n.shape) or is_row(n.shape):
        return (0,)
    return (0, 1)


def _kind(n: Node) -> str:
    if n.shape == ():
        return "scalar"
    if is_column(n.shape) or is_row(n.shape):
        return "vector"
    return "matrix"


def _find_variable(expr: Node, name, source: str | None) -> N.Symbol:
    if isinstance(name, N.Symbol):
        return name
    if not isinstance(name, str):
        raise UnknownNameError(f"wrt must be a variable name, not {name!r}")
    for s in symbols_of(expr):
        if s.name == name:
            return s
    names = ", ".join(s.name for s in symbols_of(expr)) or "no variables"
    raise UnknownNameError(f"{name!r} does not occur in the expression (it has {names})", None, source)


class Derivative:
    """The derivative of ``function`` with respect to ``variable``: a closed form in matrix notation.

    ``expr`` is the closed form (a node of the same language), ``shape`` its shape; ``str()`` prints it
    in the input language; ``evaluate(**values)`` computes it with NumPy.
    """

    def __init__(self, function: Node, variable: N.Symbol, expr: Node, layout: str, order: int = 1):
        self.function = function
        self.variable = variable
        self.expr = expr
        self.layout = layout
        self.order = order

    @property
    def shape(self) -> tuple:
        return self.expr.shape

    @property
    def notes(self) -> list[str]:
        """Remarks a textbook would add, e.g. the simpler form when a vector is a probability vector.

        ``-y' log(softmax(W x))`` has the gradient ``(sum(y) softmax(W x) - y) xᵀ``, which is the familiar
        ``(softmax(W x) - y) xᵀ`` when ``sum(y) = 1`` (a one-hot or probability ``y``): noted, not assumed.
        """
        out = []
        for node in N.walk(self.expr):
            if isinstance(node, N.Sum) and isinstance(node.args[0], N.Symbol) and node.args[0].shape != ():
                y = node.args[0].name
                simpler = _prefer_positive(substitute(self.expr, {node: S.ONE}))
                out.append(f"when sum({y}) = 1 (a one-hot or probability vector {y}): {to_unicode(simpler)}")
        return out

    @property
    def steps(self):
        """The derivation, step by step, as Parr and Howard write it (see :mod:`matcalc.diff.steps`)."""
        from .steps import explain

        return explain(self)

    def evaluate(self, **values):
        """The value at concrete ``values`` (scalars as floats, vectors 1-D, matrices 2-D arrays)."""
        from ..numeric import evaluate

        return evaluate(self.expr, values, sizes=sizes_from(self.function, values))

    # --- verification (matcalc.verify) and code generation (matcalc.codegen) ---------------------
    def check(self, sizes=None, points: int = 3, **options):
        """Verify against SymPy's entry-by-entry derivative at concrete sizes; returns a report."""
        from ..verify import check_derivative

        return check_derivative(self, sizes=sizes, points=points, **options)

    def to_numpy(self, **options) -> str:
        """Source of a standalone NumPy function computing this derivative."""
        from ..codegen import generate

        return generate(self, "numpy", **options)

    def to_jax(self, **options) -> str:
        from ..codegen import generate

        return generate(self, "jax", **options)

    def to_torch(self, **options) -> str:
        from ..codegen import generate

        return generate(self, "torch", **options)

    def compile(self, **options):
        """The NumPy version as a Python callable taking the variables by name."""
        from ..codegen import compile_numpy

        return compile_numpy(self, **options)

    def to_sympy(self, sizes=None):
        """SymPy: explicit matrices at ``sizes`` (default sizes 2, 3, 4, ... per dimension)."""
        from ..sympy_backend import to_explicit

        return to_explicit(self.expr, sizes)

    def __str__(self) -> str:
        return to_text(self.expr)

    def __repr__(self) -> str:
        what = "d²" if self.order == 2 else "d"
        return (f"<Derivative {what}({to_text(self.function)})/{what}{self.variable.name}"
                f"{'²' if self.order == 2 else ''} = {to_text(self.expr)} [{self.layout}]>")

    def unicode(self) -> str:
        return to_unicode(self.expr)

    def latex(self) -> str:
        return to_latex(self.expr)

    def _repr_latex_(self) -> str:
        from ..printing.latex import latex_name

        var = latex_name(self.variable.name, self.variable.shape)
        top = "\\partial^2" if self.order == 2 else "\\partial"
        bottom = f"\\partial {var}^2" if self.order == 2 else f"\\partial {var}"
        return f"$\\frac{{{top}}}{{{bottom}}}\\left({to_latex(self.function)}\\right) = {to_latex(self.expr)}$"

    def __eq__(self, other) -> bool:
        return isinstance(other, Derivative) and (self.function, self.variable, self.expr, self.layout) == (
            other.function, other.variable, other.expr, other.layout)

    def __hash__(self) -> int:
        return hash((self.function, self.variable, self.expr, self.layout))


class DerivativeList(list):
    """One :class:`Derivative` per variable of ``wrt=[...]``."""

    def evaluate(self, **values) -> list:
        return [d.evaluate(**values) for d in self]

    def __str__(self) -> str:
        return "[" + ", ".join(str(d) for d in self) + "]"

    @property
    def jacobian(self) -> Node:
        """All partials side by side, when every variable is a scalar: ∇f as a row, or the Jacobian."""
        if any(d.variable.shape != () for d in self):
            raise NoMatrixFormError("the partials can be put side by side only when every variable is a scalar")
        f = self[0].function
        if f.shape == ():
            row = [d.expr for d in self]
            return N.MatrixLit([row]) if len(row) > 1 else row[0]
        if isinstance(f, N.VectorLit) or is_column(f.shape):
            columns = [d.expr for d in self]
            if all(isinstance(c, N.VectorLit) for c in columns):
                rows = [[c.args[i] for c in columns] for i in range(len(columns[0].args))]
                return N.MatrixLit(rows)
        raise NoMatrixFormError("the partials have no side-by-side matrix form")

    def evaluate_jacobian(self, **values):
        from ..numeric import evaluate

        return evaluate(self.jacobian, values, sizes=sizes_from(self[0].function, values))


def _tensor(F: Node, X: N.Symbol, layout: str, order: int = 1):
    from .tensor import TensorDerivative

    dF = differential(F, X)
    if dF is None:
        dF = S.zero_like(F.shape)
    return TensorDerivative(F, X, S.simplify(dF), layout, order)


def _is_tensor(F: Node, X: N.Symbol) -> bool:
    """A derivative with three or four axes: a matrix F with a non-scalar X, or a non-scalar F and matrix X."""
    if X.shape == () or F.shape == ():
        return False
    return is_matrix(F.shape) or is_matrix(X.shape)


def _first(F: Node, X: N.Symbol, layout: str) -> Node:
    J = jacobian(F, X)
    if layout == "numerator":
        return J
    # denominator layout: the transpose, except d(matrix)/d(scalar) and d(scalar)/d(scalar)
    if is_matrix(J.shape) and X.shape == () and is_matrix(F.shape):
        return J
    return S.transpose(J)


def _second(F: Node, X: N.Symbol) -> Node:
    if F.shape != () and X.shape == ():  # shaped like F
        return jacobian(jacobian(F, X), X)
    if F.shape != ():
        raise NoMatrixFormError(
            f"a second derivative of the non-scalar {to_unicode(F)} with respect to {X.name} has "
            f"{len(_axes(F)) + 2 * len(_axes(X))} axes: a tensor with no matrix form")
    g = gradient(F, X)
    if X.shape == ():
        return jacobian(g, X)
    if is_column(X.shape):
        return jacobian(g, X)
    raise NoMatrixFormError(
        f"the Hessian of {to_unicode(F)} with respect to the matrix {X.name} is a 4-way tensor with no "
        "matrix form")


def derive(expr, wrt=None, layout: str = "numerator", order: int = 1, **declarations):
    """The derivative of ``expr`` with respect to ``wrt``, in closed form.

    ``expr`` is a string of the matcalc language or a parsed node; ``wrt`` a variable name or a list of
    names (then one Derivative per name, as a :class:`DerivativeList`). ``layout`` is ``"numerator"``
    (Jacobian layout, as in Parr and Howard) or ``"denominator"`` (gradients shaped like the variable).
    ``order=2`` gives the Hessian. Declarations are as for :func:`matcalc.parse`.
    """
    from ..parser import deep_recursion
    from ..typecheck import typecheck

    if layout not in LAYOUTS:
        raise DeclarationError(f"layout must be 'numerator' or 'denominator', not {layout!r}")
    if order not in (1, 2):
        raise DeclarationError(f"order must be 1 or 2, not {order!r}")
    source = expr if isinstance(expr, str) else None
    if isinstance(expr, Node):
        if declarations:
            raise DeclarationError("declarations go with a string expression, not with a parsed one")
        node = expr
    elif isinstance(expr, str):
        node = typecheck(expr, **declarations)
    else:
        raise DeclarationError(f"expr must be a string or a parsed expression, not {type(expr).__name__}")
    if wrt is None:
        syms = symbols_of(node)
        if len(syms) != 1:
            names = ", ".join(s.name for s in syms) or "none"
            raise UnknownNameError(f"say which variable to differentiate with respect to (wrt=...); "
                                   f"the expression has {names}", None, source)
        wrt = syms[0].name
    with deep_recursion():
        if isinstance(wrt, Sequence) and not isinstance(wrt, str):
            if order == 2:
                return _hessian_blocks(node, wrt, layout, source)
            return DerivativeList(_derive_one(node, w, layout, order, source) for w in wrt)
        return _derive_one(node, wrt, layout, order, source)


def _hessian_blocks(node: Node, wrt, layout: str, source) -> DerivativeList:
    """Mixed second derivatives: block (i, j) is ∂/∂vⱼ of the gradient with respect to vᵢ."""
    if node.shape != ():
        raise NoMatrixFormError("second derivatives need a scalar function")
    variables = [_find_variable(node, w, source) for w in wrt]
    rows = DerivativeList()
    for vi in variables:
        g = gradient(node, vi)
        row = DerivativeList()
        for vj in variables:
            if _is_tensor(g, vj):
                block = _tensor(g, vj, layout, order=2)
            else:
                block = Derivative(node, vj, S.simplify(jacobian(g, vj)), layout, order=2)
            block.variables = (vi, vj)
            row.append(block)
        rows.append(row)
    return rows


def _derive_one(node: Node, wrt, layout: str, order: int, source) -> Derivative:
    X = _find_variable(node, wrt, source)
    try:
        if order == 1 and _is_tensor(node, X):
            return _tensor(node, X, layout)
        if order == 2 and node.shape == () and is_matrix(X.shape):
            return _tensor(gradient(node, X), X, layout, order=2)
        if order == 2 and node.shape != () and X.shape != () and not _is_tensor(node, X):
            # the second derivative of a vector in a vector has three axes: the tensor forms of ∂J/∂x
            return _tensor(jacobian(node, X), X, layout, order=2)
        if order == 1:
            expr = _first(node, X, layout)
        else:
            expr = S.simplify(_second(node, X))
    except MatcalcError as exc:
        raise exc.located(None, source) from None
    return Derivative(node, X, expr, layout, order)


def hessian(expr, wrt=None, **declarations) -> Derivative:
    """The Hessian (second derivative) of a scalar expression: ``derive(expr, wrt, order=2)``."""
    return derive(expr, wrt, order=2, **declarations)
