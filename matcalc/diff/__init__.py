"""Differentiation: the rules (:mod:`.rules`), reading matrix forms off a differential
(:mod:`.linear`), the user-facing :func:`derive` (:mod:`.derivative`) and the explained steps
(:mod:`.steps`)."""

from .derivative import Derivative, DerivativeList, derive, gradient, hessian, jacobian
from .rules import differential

__all__ = ["Derivative", "DerivativeList", "derive", "hessian", "gradient", "jacobian", "differential"]
