"""matcalc: symbolic matrix calculus, the way deep-learning texts write it.

>>> import matcalc
>>> e = matcalc.parse("x' A x")
>>> e.shape
(Dim('n'), ...)
"""

from __future__ import annotations

from . import budget
from .budget import BudgetError, limits, set_limits
from .errors import (
    ArgumentShapeError,
    AssumptionWarning,
    CheckError,
    DeclarationError,
    DerivativeError,
    DivisionByZeroError,
    MatcalcError,
    MatcalcSyntaxError,
    NestingError,
    NoMatrixFormError,
    ShapeError,
    UnknownFunctionError,
    UnknownNameError,
)
from .nodes import Node
from .printing import to_latex, to_text, to_unicode
from .shapes import Dim

__version__ = "0.1.0"

__all__ = [
    "parse", "derive", "hessian", "check_claim", "Derivative", "DerivativeList", "evaluate",
    "Node", "Dim", "to_text", "to_unicode", "to_latex",
    "MatcalcError", "MatcalcSyntaxError", "ShapeError", "UnknownNameError", "UnknownFunctionError",
    "DeclarationError", "NestingError", "DerivativeError", "NoMatrixFormError", "CheckError",
    "BudgetError", "limits", "set_limits",
    "ArgumentShapeError", "AssumptionWarning", "assumptions",
    "DivisionByZeroError",
]


def parse(text: str, warn: bool = True, **declarations) -> Node:
    """Parse ``text`` into an immutable, typed, shape-checked AST.

    ``declarations`` give kinds by name: ``parse("x'*A*x", A="matrix(n,n)", x="vector(n)")``; kinds may
    also be declared inside the text (``"w·x + b where b: scalar, w, x: vector(n)"``). Undeclared names
    follow usage, then the naming convention (``a``-``g`` scalars, ``h``-``z`` vectors, capitals matrices).
    Every node has ``.shape``: ``()``, ``(n, 1)``, ``(1, n)`` or ``(m, n)``.

    A reading that users rarely intend (``Ax`` as one name, a bias ``b1`` that the letter convention makes
    a scalar added to a vector) issues an :class:`AssumptionWarning`; ``warn=False`` silences it.
    ``matcalc.assumptions(node)`` lists what was assumed about each name.
    """
    from .assumed import emit, remember
    from .budget import guarded
    from .typecheck import analyse

    with guarded("parsing", len(text) if isinstance(text, str) else 0):
        node, assumed = analyse(text, declarations)
    remember(node, assumed)
    if warn:
        emit(assumed.notes)
    return node


def assumptions(node: Node):
    """What was assumed about each name of a parsed ``node``: kind, shape and where it came from
    (a declaration, the way the expression uses it, or the letter convention). ``str()`` of the result is
    the ``where`` line that matcalc prints under every answer."""
    from .assumed import recall
    from .nodes import symbols_of

    return recall(node, symbols_of(node))


def _warm_up() -> None:
    """Imports and parser tables every call needs, done before the first call's budget starts."""
    from .parser import _parser, _tables

    if _tables("start") is None:  # the saved LALR tables parse well-formed input without lark
        _parser("start")


budget.WARM_UP.append(_warm_up)


def __getattr__(name):
    # The later stages load on first use, so ``import matcalc`` stays fast and parse() needs no SymPy.
    if name in ("derive", "hessian", "Derivative", "DerivativeList", "check_claim"):
        from . import api

        return getattr(api, name)
    if name == "evaluate":
        from .numeric import evaluate

        return evaluate
    raise AttributeError(f"module 'matcalc' has no attribute {name!r}")


def __dir__():
    # derive, hessian, evaluate ... are loaded lazily but belong to the public interface
    return sorted(set(globals()) | set(__all__))
