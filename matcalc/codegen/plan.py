"""Which subexpressions get a temporary, and in what order they are computed.

Nodes are hash-consed, so a subexpression shared in the derivative's DAG is one object used by several
parents. Printing the tree naively would compute it once per use (derivatives of deep expressions share
a lot: the forward value ``tanh(W x + b)`` appears in every factor of the backward pass). So every node
used more than once becomes a temporary ``t1 = ...`` computed before its first use. Large unshared
subexpressions are cut into temporaries too, which keeps lines readable and the printers' recursion
shallow on huge expressions.
"""

from __future__ import annotations

from collections import Counter

from .. import nodes as N
from ..budget import checkpoint
from ..nodes import Node
from .broadcast import broadcast_parts

#: Nodes that are never worth a temporary: names, literals and constants.
CHEAP = (N.Symbol, N.Number, N.Pi, N.Identity, N.Differential, N.Ones, N.Zeros, N.Numel)  # Numel: a size
#: Nodes that stay inline so products can use them well (``v @ X`` for ``Xᵀ v``, broadcasting for
#: ``diag(v) M``): when one is shared, its operand gets the temporary instead.
INLINE = (N.Transpose, N.DiagMat)
#: The most operations an unshared subexpression may hold before it is given a temporary.
MAX_INLINE = 8


def topological(roots: list[Node]) -> list[Node]:
    """Every node reachable from ``roots``, children before parents (iterative: deep DAGs are fine)."""
    order: list[Node] = []
    done: set[int] = set()
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            checkpoint()
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(node.children) if id(c) not in done)
    return order


def _broadcast(node: Node) -> Node | None:
    """The vector of ``v 𝟙ᵀ`` or ``𝟙 w`` (a vector repeated over a matrix), else None. Such a node stays
    inline like a transpose: element-wise operations broadcast the vector itself, and a temporary of the
    repeated matrix would make XLA build all m x n of it."""
    if not (isinstance(node, N.MatMul) and len(node.args) == 2 and len(node.shape) == 2):
        return None
    parts = broadcast_parts(node)
    return parts[0] if parts is not None else None


def plan_temporaries(roots: list[Node], statement_nodes: tuple[type, ...] = ()) -> list[Node]:
    """The nodes to compute into temporaries, in dependency order.

    ``statement_nodes`` are node classes the target computes with several statements; they always get
    a temporary.
    """
    order = topological(roots)
    uses: Counter = Counter()
    for node in order:
        for child in node.children:
            uses[child] += 1
    for root in roots:
        uses[root] += 1
    temps: set[Node] = set()
    weight: dict[Node, int] = {}

    def inline_weight(child: Node) -> int:
        return 0 if child in temps else weight[child]

    for node in order:
        if isinstance(node, CHEAP):
            weight[node] = 0
            continue
        if isinstance(node, INLINE) or _broadcast(node):
            operand = node.args[0] if isinstance(node, INLINE) else _broadcast(node)
            while isinstance(operand, INLINE):  # 𝟙 gᵀ: the temporary, if any, is g's
                operand = operand.args[0]
            if uses[node] > 1 and not isinstance(operand, CHEAP):
                temps.add(operand)
            weight[node] = inline_weight(operand)
            continue
        weight[node] = 1 + sum(inline_weight(c) for c in node.children)
        is_root = node in roots
        if uses[node] > 1 or isinstance(node, statement_nodes) or (weight[node] > MAX_INLINE and not is_root):
            temps.add(node)
    return [node for node in order if node in temps]
