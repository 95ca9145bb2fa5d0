"""matcalc: symbolic matrix calculus, the way deep-learning texts write it.

>>> import matcalc
>>> e = matcalc.parse("x' A x")
>>> e.shape
(Dim('n'), ...)
"""

from __future__ import annotations

from .errors import (
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
    "DivisionByZeroError",
]


def parse(text: str, **declarations) -> Node:
    """Parse ``text`` into an immutable, typed, shape-checked AST.

    ``declarations`` give kinds by name: ``parse("x'*A*x", A="matrix(n,n)", x="vector(n)")``; kinds may
    also be declared inside the text (``"w·x + b where b: scalar, w, x: vector(n)"``). Undeclared names
    follow usage, then the naming convention (``a``-``g`` scalars, ``h``-``z`` vectors, capitals matrices).
    Every node has ``.shape``: ``()``, ``(n, 1)``, ``(1, n)`` or ``(m, n)``.
    """
    from .typecheck import typecheck

    return typecheck(text, **declarations)


def __getattr__(name):
    # The later stages load on first use, so ``import matcalc`` stays fast and parse() needs no SymPy.
    if name in ("derive", "hessian", "Derivative", "DerivativeList"):
        from . import diff

        return getattr(diff, name)
    if name == "check_claim":
        from .verify import check_claim

        return check_claim
    if name == "evaluate":
        from .numeric import evaluate

        return evaluate
    raise AttributeError(f"module 'matcalc' has no attribute {name!r}")
