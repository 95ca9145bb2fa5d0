"""The public API: :func:`derive`, :func:`hessian`, the :class:`Derivative` they return, :func:`check_claim`.

The top layer of matcalc: it parses (:mod:`.typecheck`), differentiates (:mod:`.diff`, which holds only the
mathematics), and gives the results the methods that reach the layers beside differentiation: verification
(:mod:`.verify`), code generation (:mod:`.codegen`) and the explained steps. Nothing below imports it, so
the import graph has no cycle; :mod:`matcalc` and :mod:`matcalc.diff` re-export its names.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import nodes as N
from . import simplify as S
from .budget import budgeted
from .diff import derivative as _math
from .diff import tensor as _tensor_math
from .diff.derivative import LAYOUTS, DerivativeList, axes_of, find_variable, gradient, jacobian
from .diff.rules import differential
from .diff.symmetric import symmetric_form
from .errors import DeclarationError, MatcalcError, NoMatrixFormError, UnknownNameError
from .nodes import Node, symbols_of
from .printing import to_unicode
from .shapes import is_column, is_matrix

__all__ = ["Derivative", "TensorDerivative", "DerivativeList", "derive", "hessian", "check_claim"]


class Derivative(_math.Derivative):
    """The derivative of ``function`` with respect to ``variable``: a closed form in matrix notation
    (see :class:`matcalc.diff.derivative.Derivative`), which can check itself against SymPy, explain its
    steps and compile to NumPy, JAX or PyTorch."""

    @property
    def steps(self):
        """The derivation, step by step, as Parr and Howard write it (see :mod:`matcalc.diff.steps`)."""
        from .diff.steps import explain

        return explain(self)

    # --- verification (matcalc.verify) and code generation (matcalc.codegen) ---------------------
    def check(self, sizes=None, points: int = 3, **options):
        """Verify against SymPy's entry-by-entry derivative at concrete sizes; returns a report."""
        from .verify import check_derivative

        return check_derivative(self, sizes=sizes, points=points, **options)

    def to_numpy(self, **options) -> str:
        """Source of a standalone NumPy function computing this derivative."""
        from .codegen import generate

        return generate(self, "numpy", **options)

    def to_jax(self, **options) -> str:
        from .codegen import generate

        return generate(self, "jax", **options)

    def to_torch(self, **options) -> str:
        from .codegen import generate

        return generate(self, "torch", **options)

    def compile(self, **options):
        """The NumPy version as a Python callable taking the variables by name."""
        from .codegen import compile_numpy

        return compile_numpy(self, **options)

class TensorDerivative(_tensor_math.TensorDerivative, Derivative):
    """A 3- or 4-way derivative (see :class:`matcalc.diff.tensor.TensorDerivative`) with the methods of
    :class:`Derivative`."""


def _tensor(F: Node, X: N.Symbol, layout: str, order: int = 1, assumed=None):
    dF = differential(F, X)
    if dF is None:
        dF = S.zero_like(F.shape)
    t = TensorDerivative(F, X, S.simplify(dF), layout, order)
    if assumed is not None:
        t.assumptions = assumed
    return t


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
            f"{len(axes_of(F)) + 2 * len(axes_of(X))} axes: a tensor with no matrix form")
    g = gradient(F, X)
    if X.shape == ():
        return jacobian(g, X)
    if is_column(X.shape):
        return jacobian(g, X)
    raise NoMatrixFormError(
        f"the Hessian of {to_unicode(F)} with respect to the matrix {X.name} is a 4-way tensor with no "
        "matrix form")


@budgeted("the derivation")
def derive(expr, wrt=None, layout: str = "numerator", order: int = 1, named: bool = True, warn: bool = True,
           **declarations):
    """The derivative of ``expr`` with respect to ``wrt``, in closed form.

    ``expr`` is a string of the matcalc language or a parsed node; ``wrt`` a variable name or a list of
    names (then one Derivative per name, as a :class:`DerivativeList`). ``layout`` is ``"numerator"``
    (Jacobian layout, as in Parr and Howard) or ``"denominator"`` (gradients shaped like the variable).
    ``order=2`` gives the Hessian. ``named=False`` prints results whole, without naming their repeated
    parts (``… where s = …``). Declarations are as for :func:`matcalc.parse`.

    Every result lists what was assumed about each name (``.assumptions``, and the ``where`` line of its
    ``str()``); readings users rarely intend issue a :class:`matcalc.AssumptionWarning`, which
    ``warn=False`` silences.
    """
    from .assumed import emit, recall, remember
    from .recursion import deep_recursion
    from .typecheck import analyse

    if layout not in LAYOUTS:
        raise DeclarationError(f"layout must be 'numerator' or 'denominator', not {layout!r}")
    if order not in (1, 2):
        raise DeclarationError(f"order must be 1 or 2, not {order!r}")
    source = expr if isinstance(expr, str) else None
    if isinstance(expr, Node):
        if declarations:
            raise DeclarationError("declarations go with a string expression, not with a parsed one")
        node, assumed = expr, recall(expr, symbols_of(expr))
    elif isinstance(expr, str):
        node, assumed = analyse(expr, declarations)
        remember(node, assumed)
        if warn:
            emit(assumed.notes)
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
                out = _hessian_blocks(node, wrt, layout, source, assumed)
                for row in out:
                    _set_named(row, named)
                return out
            return _set_named(DerivativeList(_derive_one(node, w, layout, order, source, assumed) for w in wrt),
                              named)
        return _set_named([_derive_one(node, wrt, layout, order, source, assumed)], named)[0]


def _set_named(derivatives: list, named: bool) -> list:
    for d in derivatives:
        d.named = bool(named)
    return derivatives


def _hessian_blocks(node: Node, wrt, layout: str, source, assumed) -> DerivativeList:
    """Second derivatives by blocks: block (i, j) is ∂²f/∂vᵢ∂vⱼ, the Jacobian with respect to vⱼ of the
    gradient with respect to vᵢ: len(vᵢ) x len(vⱼ) in numerator layout (entry (a, b) is ∂²f/∂vᵢ_a∂vⱼ_b), its
    transpose in denominator layout. A diagonal block is the Hessian with respect to that variable."""
    if node.shape != ():
        raise NoMatrixFormError("second derivatives need a scalar function")
    variables = [find_variable(node, w, source, assumed) for w in wrt]
    rows = DerivativeList()
    for vi in variables:
        g = gradient(node, vi)
        row = DerivativeList()
        for vj in variables:
            if _is_tensor(g, vj):
                block = _tensor(g, vj, layout, 2, assumed)
            elif vi is vj:
                block = Derivative(node, vj, symmetric_form(S.simplify(jacobian(g, vj))), layout, 2, assumed)
            else:
                J = S.simplify(jacobian(g, vj))
                block = Derivative(node, vj, J if layout == "numerator" else S.transpose(J), layout, 2, assumed,
                                   first=vi)
            block.variables = (vi, vj)
            row.append(block)
        rows.append(row)
    return rows


def _derive_one(node: Node, wrt, layout: str, order: int, source, assumed) -> Derivative:
    X = find_variable(node, wrt, source, assumed)
    try:
        if order == 1 and _is_tensor(node, X):
            return _tensor(node, X, layout, 1, assumed)
        if order == 2 and node.shape == () and is_matrix(X.shape):
            return _tensor(gradient(node, X), X, layout, 2, assumed)
        if order == 2 and node.shape != () and X.shape != () and not _is_tensor(node, X):
            # the second derivative of a vector in a vector has three axes: the tensor forms of ∂J/∂x
            return _tensor(jacobian(node, X), X, layout, 2, assumed)
        if order == 1:
            expr = _first(node, X, layout)
        else:
            expr = S.simplify(_second(node, X))
            expr = symmetric_form(expr) if node.shape == () else expr
    except MatcalcError as exc:
        raise exc.located(None, source) from None
    return Derivative(node, X, expr, layout, order, assumed)


def hessian(expr, wrt=None, warn: bool = True, **declarations) -> Derivative:
    """The Hessian (second derivative) of a scalar expression: ``derive(expr, wrt, order=2)``."""
    return derive(expr, wrt, order=2, warn=warn, **declarations)


def check_claim(expr, wrt, claim, layout: str = "numerator", sizes=None, points: int = 3,
                time_budget: float | None = 10.0, seed: int = 0, **decls):
    """Is ``claim`` the derivative of ``expr`` with respect to ``wrt`` (in ``layout``)?

    ``expr`` is parsed and derived with the declarations ``decls``; ``claim`` is parsed with the kinds of
    ``expr``'s variables (its symbols are those of ``expr``) and compared with SymPy's derivative as in
    :func:`matcalc.verify.check_derivative`. A claim of the wrong shape, or one that does not parse, is
    reported as a wrong claim with the reason; a wrong claim says at which entry and point it differs and
    gives the right answer. ``check_claim("x' A x", "x", "2 A x", layout="denominator")`` is wrong;
    with ``A="symmetric(n)"`` it is right.
    """
    from .typecheck import typecheck
    from .verify import check_budget, judge_claim

    check_budget(time_budget)
    node = expr if isinstance(expr, N.Node) else typecheck(expr, **decls)
    correct = derive(node, wrt, layout=layout)
    return judge_claim(correct, claim, layout, sizes=sizes, points=points, time_budget=time_budget, seed=seed)
