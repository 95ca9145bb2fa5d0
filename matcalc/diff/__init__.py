"""Differentiation, the mathematics only: the rules (:mod:`.rules`), reading matrix forms off a differential
(:mod:`.linear`), the :class:`~.derivative.Derivative` results (:mod:`.derivative`, :mod:`.tensor`) and the
explained steps (:mod:`.steps`).

The user-facing :func:`derive`, :func:`hessian` and :class:`Derivative` (with ``check()``, ``compile()``, ...)
live a layer above, in :mod:`matcalc.api`; they are re-exported here, on first use, for ``from matcalc.diff
import derive``.
"""

from .derivative import DerivativeList, gradient, jacobian
from .rules import differential

__all__ = ["Derivative", "DerivativeList", "derive", "hessian", "gradient", "jacobian", "differential"]


def __getattr__(name):
    if name in ("Derivative", "derive", "hessian"):
        from .. import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
