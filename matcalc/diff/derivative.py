"""The mathematics of a derivative: gradients, Jacobians, layouts, and the :class:`Derivative` result.

:func:`matcalc.api.derive` and :func:`~matcalc.api.hessian` build the results (as :class:`matcalc.api.Derivative`,
which adds checking, code generation and the steps on top of this class).

The pipeline for ``derive(F, X)`` is: the differential ``dF`` (:mod:`.rules`), then the matrix form read
off it (:mod:`.linear`), then the simplifier. Which reading applies depends on the shapes:

=====================  ==================  ==========================================================
F                      X                   result (numerator layout; denominator is the transpose)
=====================  ==================  ==========================================================
any                    scalar              dF/dX, shaped like F (``dx = 1``)
scalar                 vector or matrix    gradient by transposition; numerator is its transpose
vector                 vector              Jacobian (len F x len X) by forward batched tangents
vector or matrix       matrix              a 3- or 4-way tensor: no matrix form (see the error)
=====================  ==================  ==========================================================
"""

from __future__ import annotations

from .. import nodes as N
from .. import simplify as S
from ..errors import DeclarationError, NoMatrixFormError, UnknownNameError
from ..nodes import Node, symbols_of
from ..printing import to_latex, to_text, to_unicode
from ..shapes import is_column, is_row
from .linear import forward_jacobian, pullback, substitute
from .rules import differential

LAYOUTS = ("numerator", "denominator")


def sizes_from(function: Node, values: dict, sizes=None, variable=None) -> dict[str, int]:
    """Dimension sizes read off the values of the function's variables (a closed form such as ``I``
    may mention a dimension that none of its own symbols carries); a value of the wrong shape raises
    :class:`~matcalc.ArgumentShapeError` naming the argument, the expected and the actual shape."""
    from ..numeric import user_sizes

    symbols = list(symbols_of(function))
    if variable is not None and variable not in symbols:
        symbols.append(variable)
    return user_sizes(symbols, values, sizes)


def _values(values, named: dict) -> dict:
    """Values given as a mapping, as keywords, or both (``evaluate({"x": x}, A=A)``)."""
    return {**(values or {}), **named}


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
        return S.simplify(substitute(dF, {N.Differential(X): S.ONE}))
    g = S.simplify(pullback(dF, N.Differential(X), S.ONE))
    return _symmetrise(g) if X.symmetric else g


def jacobian(F: Node, X: N.Symbol) -> Node:
    """The numerator-layout derivative of ``F`` with respect to ``X`` when it is a matrix."""
    if X.shape == ():
        dF = differential(F, X)
        return S.zero_like(F.shape) if dF is None else S.simplify(substitute(dF, {N.Differential(X): S.ONE}))
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


def find_variable(expr: Node, name, source: str | None, assumed=None) -> N.Symbol:
    """The symbol ``name`` of ``expr``; a declared name that does not occur is a symbol of its declared
    shape (its derivative is zero, as in SymPy and the texts), an undeclared one an error (likely a typo)."""
    if isinstance(name, N.Symbol):
        return name
    if not isinstance(name, str):
        raise UnknownNameError(f"wrt must be a variable name, not {name!r}")
    for s in symbols_of(expr):
        if s.name == name:
            return s
    if assumed is not None and name in assumed:
        a = assumed[name]
        return N.Symbol(name, a.shape, a.kind == "symmetric")
    names = ", ".join(s.name for s in symbols_of(expr)) or "no variables"
    merged = [n.message for n in getattr(assumed, "notes", ()) if " is read as one name" in n.message
              and name in n.message.split(" is read as one name")[0]]  # `Wx + b` with wrt x
    raise UnknownNameError(f"{name!r} does not occur in the expression (it has {names}); declare it to get "
                           "a zero derivative" + (f"; note: {merged[0]}" if merged else ""), None, source)


class Derivative:
    """The derivative of ``function`` with respect to ``variable``: a closed form in matrix notation.

    ``expr`` is the closed form (a node of the same language), ``shape`` its shape; ``str()`` prints it
    in the input language, whole, so that it parses back; ``text()``, ``unicode()`` and ``latex()`` name
    the repeated parts when that is shorter (``… where s = softmax(…)``) unless ``named`` is False;
    ``evaluate(**values)`` computes it with NumPy.
    """

    def __init__(self, function: Node, variable: N.Symbol, expr: Node, layout: str, order: int = 1,
                 assumptions=None, named: bool = True, first: N.Symbol | None = None):
        from ..assumed import recall

        self.function = function
        self.variable = variable
        self.expr = expr
        self.layout = layout
        self.order = order
        self.named = named
        #: what was assumed about each name (kind, shape, and whether declared, from usage or convention)
        self.assumptions = assumptions if assumptions is not None else recall(function, symbols_of(function))
        #: A mixed second derivative ∂²f/∂first∂variable (a block of ``hessian(f, [u, v])``): the Jacobian,
        #: with respect to ``variable``, of the gradient with respect to ``first``; else None.
        self.first = first

    @property
    def label(self) -> str:
        """``∂f/∂x``, ``∂²f/∂x²`` or, for a mixed block, ``∂²f/∂x∂y``."""
        f = to_unicode(self.function)
        if self.first is not None:
            return f"∂²({f})/∂{self.first.name}∂{self.variable.name}"
        if self.order == 2:
            return f"∂²({f})/∂{self.variable.name}²"
        return f"∂({f})/∂{self.variable.name}"

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

    def evaluate(self, values=None, /, sizes=None, **named):
        """The value at concrete values (scalars as floats, vectors 1-D, matrices 2-D arrays), given as a
        mapping, as keywords, or both, exactly as for :func:`matcalc.evaluate`."""
        from ..numeric import evaluate

        values = _values(values, named)
        return evaluate(self.expr, values, sizes=sizes_from(self.function, values, sizes, self.variable))

    def to_sympy(self, sizes=None):
        """SymPy: explicit matrices at ``sizes`` (default sizes 2, 3, 4, ... per dimension)."""
        from ..budget import guarded
        from ..sympy_backend import to_explicit

        for name, size in (sizes or {}).items():
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 64:
                raise DeclarationError(f"explicit SymPy matrices are written at sizes from 1 to 64; "
                                       f"{name} = {size!r} is not one")
        with guarded("the SymPy conversion"):
            return to_explicit(self.expr, sizes)

    # --- printing: text(), unicode() and latex() give the formula alone, in the input language, the
    # texts' notation and LaTeX (``.steps`` has the same three); str() and the notebook display add the
    # ``where`` line of :attr:`assumptions`. The three name a result's repeated parts (``… where s = …``)
    # unless ``named=False``; str() prints the whole formula, which parses back.
    def __str__(self) -> str:
        where = str(self.assumptions)
        return self.text(named=False) + (f"\n{where}" if where else "")

    def __repr__(self) -> str:
        what = "d²" if self.order == 2 else "d"
        where = str(self.assumptions)
        wrt = (f"d{self.first.name}d{self.variable.name}" if self.first is not None
               else f"d{self.variable.name}{'²' if self.order == 2 else ''}")
        return (f"<Derivative {what}({to_text(self.function)})/{wrt} = {to_text(self.expr)} [{self.layout}]"
                f"{'; ' + where if where else ''}>")

    def _named(self, named: bool | None) -> bool:
        return self.named if named is None else named

    def text(self, named: bool | None = None) -> str:
        """The input language, the repeated parts named unless ``named=False`` (``str()`` parses back)."""
        return to_text(self.expr, named=self._named(named))

    def unicode(self, named: bool | None = None) -> str:
        return to_unicode(self.expr, named=self._named(named))

    def latex(self, named: bool | None = None) -> str:
        return to_latex(self.expr, named=self._named(named))

    def _repr_latex_(self) -> str:
        from ..printing.latex import latex_name, where_latex

        var = latex_name(self.variable.name, self.variable.shape)
        top = "\\partial^2" if self.order == 2 else "\\partial"
        bottom = f"\\partial {var}^2" if self.order == 2 else f"\\partial {var}"
        if self.first is not None:
            bottom = f"\\partial {latex_name(self.first.name, self.first.shape)}\\, \\partial {var}"
        where = where_latex(self.assumptions)
        where = "\\quad " + where if where else ""
        return f"$\\frac{{{top}}}{{{bottom}}}\\left({to_latex(self.function)}\\right) = {self.latex()}{where}$"

    def __eq__(self, other) -> bool:
        return isinstance(other, Derivative) and (self.function, self.variable, self.expr, self.layout) == (
            other.function, other.variable, other.expr, other.layout)

    def __hash__(self) -> int:
        return hash((self.function, self.variable, self.expr, self.layout))


class DerivativeList(list):
    """One :class:`Derivative` per variable of ``wrt=[...]``."""

    def evaluate(self, values=None, /, sizes=None, **named) -> list:
        return [d.evaluate(_values(values, named), sizes=sizes) for d in self]

    def text(self, named: bool | None = None) -> str:
        return "[" + ", ".join(d.text(named) for d in self) + "]"

    def __str__(self) -> str:
        where = str(self[0].assumptions) if self else ""
        return self.text(named=False) + (f"\n{where}" if where else "")

    @property
    def assumptions(self):
        return self[0].assumptions if self else None

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

    def evaluate_jacobian(self, values=None, /, sizes=None, **named):
        from ..numeric import evaluate

        values = _values(values, named)
        return evaluate(self.jacobian, values, sizes=sizes_from(self[0].function, values, sizes))
