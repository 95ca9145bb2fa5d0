"""``det(X) … inv(X)`` in generated code as the adjugate, which exists where the inverse does not.

The derivative of ``det`` is ``det(X) X⁻ᵀ`` (``d det(X) = det(X) tr(X⁻¹ dX)``). Written with ``inv``,
generated code raises at every singular ``X``, even where the derivative is plainly defined (``det(x yᵀ)``
is 0 for every ``x``, so its gradient is 0). ``det(X) X⁻¹`` is the adjugate ``adj(X)``, a polynomial in
the entries of ``X``; :func:`with_adjugates` rewrites each product holding ``det(X)`` (or a power of it)
and ``inv(X)`` (or its transpose) to use an :class:`Adjugate` node, which the printers compute from the
singular value decomposition: with ``X = U diag(s) Vᵀ``, ``adj(X) = det(U) det(V) V diag(p) Uᵀ`` where
``p_i`` is the product of the other singular values. The same formula is :func:`matcalc.numeric.adjugate`.
"""

from __future__ import annotations

from .. import nodes as N
from ..nodes import Node
from .plan import topological


class Adjugate(N.Node):
    """``adj(X) = det(X) X⁻¹`` of a square matrix (code generation only)."""

    __slots__ = ()

    @staticmethod
    def _check(x):
        return x.shape


def with_adjugates(expr: Node) -> Node:
    """``expr`` with every ``det(X) … inv(X)`` product using ``adj(X)`` (memoised over the DAG)."""
    memo: dict[Node, Node] = {}
    for node in topological([expr]):
        kids = node.children
        new = node
        if kids and any(memo[k] is not k for k in kids):
            new = node.with_children(tuple(memo[k] for k in kids))
        if isinstance(new, N.MatMul):
            new = _pair(new)
        memo[node] = new
    return memo[expr]


def _det_power(f: Node) -> tuple[Node, int] | None:
    """``(X, k)`` for ``det(X)^k`` with an integer ``k >= 1`` (``det(X)`` is ``k = 1``)."""
    if isinstance(f, N.Det):
        return f.args[0], 1
    if isinstance(f, N.Power) and isinstance(f.args[0], N.Det) and isinstance(f.args[1], N.Number):
        k = f.args[1].value
        if k.denominator == 1 and k >= 1:
            return f.args[0].args[0], int(k)
    return None


def _inverse_of(f: Node) -> tuple[Node, bool] | None:
    """``(X, transposed)`` for ``inv(X)`` or ``inv(X)ᵀ``."""
    if isinstance(f, N.Inv):
        return f.args[0], False
    if isinstance(f, N.Transpose) and isinstance(f.args[0], N.Inv):
        return f.args[0].args[0], True
    return None


def _pair(product: N.MatMul) -> Node:
    args = list(product.args)
    for i, f in enumerate(args):
        inverse = _inverse_of(f)
        if inverse is None:
            continue
        x, transposed = inverse
        for j, g in enumerate(args):
            det = _det_power(g)
            if det is None or det[0] is not x:
                continue
            adj: Node = Adjugate(x)
            args[i] = N.Transpose(adj) if transposed else adj
            base = g.args[0] if isinstance(g, N.Power) else g
            args[j] = None if det[1] == 1 else base if det[1] == 2 else N.Power(base, N.Number(det[1] - 1))
            rest = [a for a in args if a is not None]
            return rest[0] if len(rest) == 1 else N.MatMul(*rest)
    return product
