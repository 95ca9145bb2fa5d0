"""Common factors of element-wise products, computed once (code generation only).

Hash-consing shares a subexpression only when it is built the same way: ``(x ⊙ g) ⊙ r`` and
``(G ⊙ x) ⊙ r`` have the common factor ``x ⊙ r`` (layer norm's normalised input x̂), but no common node,
so the code computed it twice and XLA kept the m x n broadcast of ``r`` in memory for both. This pass
opens every element-wise product into its list of factors (nested products opened, and a broadcast
vector of products ``(u ⊙ v) 𝟙ᵀ`` as the factors ``u 𝟙ᵀ`` and ``v 𝟙ᵀ``), then repeatedly names the pair
of factors that the most products share, as one new product used by all of them (the greedy pairing of
common-subexpression elimination for commutative operations). Ties go to the pair that depends on the
fewest variables: what a forward pass computes (x̂ from X alone) before what the backward pass adds.
Each product is then rebuilt with its factors in one canonical order, so equal factor lists are one node,
and broadcast vectors multiplied together before they are broadcast. Values are unchanged up to the
rounding of a reassociated product.
"""

from __future__ import annotations

from collections import Counter
from itertools import count

from .. import nodes as N
from ..budget import checkpoint
from ..nodes import Node
from .broadcast import broadcast_parts, hadamard_factors, rebroadcast
from .plan import topological

#: At most this many pairs are named (each is one more temporary at most), and products with more
#: factors than this are left as they are (the pair count grows with the square of the length).
MAX_PAIRS = 64
MAX_FACTORS = 24
#: Past this many pairs of factors over all products, none are named (the products are only put in
#: canonical order): each round of the greedy pairing counts them all again.
MAX_PAIR_WORK = 100_000


class _Pair:
    """A product of two factors that several products share (factors: nodes, or other pairs)."""

    __slots__ = ("a", "b", "rank", "symbols")

    def __init__(self, a, b, rank: int, symbols: frozenset):
        self.a, self.b, self.rank, self.symbols = a, b, rank, symbols


def share_products(roots: list[Node]) -> list[Node]:
    """``roots`` with the common factors of their element-wise products shared (see the module)."""
    order = topological(roots)
    heads = _heads(order, roots)
    if not heads:
        return roots
    rank = {n: i for i, n in enumerate(order)}
    symbols = _symbols(order)
    lists = {h: _open(h) for h in heads}
    lists = {h: fs for h, fs in lists.items() if len(fs) <= MAX_FACTORS}
    ranks = count(len(order))
    for fs in lists.values():  # the factors _open made: ranked after the DAG, in a deterministic order
        for f in fs:
            if f not in rank:
                rank[f], symbols[f] = next(ranks), _symbols_of(f, symbols)
    if sum(len(fs) * (len(fs) - 1) // 2 for fs in lists.values()) <= MAX_PAIR_WORK:
        _pair_up(lists, rank, symbols, ranks)
    return _rebuild(order, roots, lists, rank)


def _heads(order: list[Node], roots: list[Node]) -> list[Node]:
    """The element-wise products used as a whole somewhere (a root, or a child of a non-product):
    those computed as such. A product used only inside other products is opened into them."""
    whole = {id(r) for r in roots}
    for n in order:
        if not isinstance(n, N.Hadamard):
            whole.update(id(c) for c in n.children)
    return [n for n in order if isinstance(n, N.Hadamard) and id(n) in whole]


def _symbols(order: list[Node]) -> dict[Node, frozenset]:
    """The variables each node depends on (children before parents, so one pass)."""
    out: dict[Node, frozenset] = {}
    for n in order:
        own = frozenset([n]) if isinstance(n, N.Symbol) else frozenset()
        out[n] = own.union(*(out[c] for c in n.children))
    return out


def _open(h: Node) -> list[Node]:
    """The factors of ``h``, broadcast products opened into broadcast factors."""
    out: list[Node] = []
    for f in hadamard_factors(h):
        parts = broadcast_parts(f)
        vectors = hadamard_factors(parts[0]) if parts is not None else []
        if len(vectors) > 1 and all(v.shape == parts[0].shape for v in vectors):  # not c ⊙ u: c is a scalar
            out += [rebroadcast(v, parts[1], parts[2]) for v in vectors]
        else:
            out.append(f)
    return out


def _rank_of(f, rank: dict) -> int:
    """Where a factor comes in the canonical order: its place in the DAG's topological order (pairs and
    the factors :func:`_open` made come after the DAG, each with a rank of its own)."""
    return f.rank if isinstance(f, _Pair) else rank[f]


def _symbols_of(f, symbols: dict) -> frozenset:
    """The variables a factor depends on."""
    if isinstance(f, _Pair):
        return f.symbols
    if f in symbols:
        return symbols[f]
    return frozenset().union(*(_symbols_of(c, symbols) for c in f.children))


def _key(a, b, rank: dict) -> tuple:
    return (a, b) if _rank_of(a, rank) <= _rank_of(b, rank) else (b, a)


def _pair_counts(lists: dict, rank: dict) -> Counter:
    """In how many products each unordered pair of factors occurs."""
    counts: Counter = Counter()
    for fs in lists.values():
        checkpoint()
        seen = set()
        for i, a in enumerate(fs):
            for b in fs[i + 1:]:
                key = _key(a, b, rank)
                if key not in seen:
                    seen.add(key)
                    counts[key] += 1
    return counts


def _pair_up(lists: dict, rank: dict, symbols: dict, ranks) -> None:
    """Greedily replace the most shared pair of factors by one :class:`_Pair`, in every list holding it."""
    for _ in range(MAX_PAIRS):
        counts = _pair_counts(lists, rank)
        shared = [(c, -len(_symbols_of(a, symbols) | _symbols_of(b, symbols)),
                   -_rank_of(a, rank), -_rank_of(b, rank), (a, b)) for (a, b), c in counts.items() if c > 1]
        if not shared:
            return
        a, b = max(shared, key=lambda s: s[:4])[4]
        pair = _Pair(a, b, next(ranks), _symbols_of(a, symbols) | _symbols_of(b, symbols))
        for h, fs in lists.items():
            if _holds(fs, a, b):
                rest = list(fs)
                rest.remove(a)
                rest.remove(b)
                lists[h] = rest + [pair]


def _holds(fs: list, a, b) -> bool:
    if a is b:
        return sum(1 for f in fs if f is a) >= 2
    return any(f is a for f in fs) and any(f is b for f in fs)


def _rebuild(order: list[Node], roots: list[Node], lists: dict, rank: dict) -> list[Node]:
    """Every node over its rebuilt children; each product from its (paired) factor list."""
    memo: dict[Node, Node] = {}
    pairs: dict[int, Node] = {}

    def factor(f) -> Node:
        if isinstance(f, _Pair):
            if id(f) not in pairs:
                pairs[id(f)] = _product([factor(f.a), factor(f.b)], rank)
            return pairs[id(f)]
        if f in memo:
            return memo[f]
        return f.with_children(tuple(factor(c) for c in f.children))  # a broadcast factor made by _open

    for n in order:
        checkpoint()
        if n in lists:
            fs = sorted(lists[n], key=lambda f: _rank_of(f, rank))
            memo[n] = _product([factor(f) for f in fs], rank)
        elif n.children:
            kids = tuple(memo[c] for c in n.children)
            memo[n] = n if all(k is c for k, c in zip(kids, n.children, strict=True)) else n.with_children(kids)
        else:
            memo[n] = n
    return [memo[r] for r in roots]


def _product(factors: list[Node], rank: dict) -> Node:
    """The element-wise product of ``factors``, broadcast vectors along one axis multiplied first
    (``(u 𝟙ᵀ) ⊙ (v 𝟙ᵀ) = (u ⊙ v) 𝟙ᵀ``: m multiplications, not m x n)."""
    out: list[Node] = []
    along: dict[bool, tuple[int, list[Node], Node]] = {}
    for f in factors:
        parts = broadcast_parts(f)
        if parts is None:
            out.append(f)
            continue
        v, ones, left = parts
        if left in along:
            along[left][1].append(v)
        else:
            along[left] = (len(out), [v], ones)
            out.append(f)
    for left, (i, vs, ones) in along.items():
        if len(vs) > 1:
            out[i] = rebroadcast(N.Hadamard(*vs), ones, left)
    return out[0] if len(out) == 1 else N.Hadamard(*out)
