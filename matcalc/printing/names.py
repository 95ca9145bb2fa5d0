"""Named parts: a long result that repeats a subexpression prints it once, under a name.

Nodes are hash-consed, so a subexpression used twice is one node with two parents in the DAG; printing
unshares it, which is why the gradient of an L-layer network (9L + 2 nodes) printed in full grows like
L². Parr and Howard introduce intermediate variables for this, and matrixcalculus.org lists common
subexpressions; the printers here do the same:

    Vᵀ (diag(s) - s sᵀ) K / sqrt(d)  where s = softmax(K q / sqrt(d))

A node is named when it is referenced more than once and its text is longer than its name; inner parts are
named first, so ``h₂ = tanh(W_2 h₁)`` refers to ``h₁``. The named form is used only when it is shorter
than the whole text. Only the printed text changes: ``Derivative.expr`` is still the whole expression.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import nodes as N
from .. import ops
from ..nodes import Node

_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_MIN_LENGTH = 6  # shorter texts are clearer written out than named


def _is_deviation(node: Node) -> bool:
    """sqrt(mean((x - mean(x))⊙²) + eps), or of each row, (u⊙² 𝟙)/k with u = X - X 𝟙 𝟙ᵀ/k: a standard
    deviation σ (a root mean square without the centring, RMSNorm's, keeps the root's letter r)."""
    inside = list(N.walk(node))
    return any(isinstance(n, N.Mean) for n in inside) or (
        any(isinstance(n, N.Numel) for n in inside) and any(isinstance(n, N.Neg) for n in inside))


def _letter(node: Node, style: str) -> str:
    if isinstance(node, N.Call) and node.record.letter:  # a softmax is a distribution s (P: one per row)
        return node.record.letter
    if isinstance(node, N.Apply) and node.function == "sqrt" and _is_deviation(node):
        return {"unicode": "σ", "latex": "\\sigma"}.get(style, "sigma")
    if isinstance(node, N.Apply):
        # by what it is (σ(u) is a probability p, tanh(u) a hidden layer h ...): the catalogue's letter
        return ops.ELEMENTWISE[node.function].letter or "u"
    return "u"


def _references(root: Node) -> dict[Node, int]:
    """How many times each node is an operand of another (each occurrence counted), the root once."""
    refs: dict[Node, int] = {root: 1}
    for node in N.walk(root):
        for child in node.children:
            refs[child] = refs.get(child, 0) + 1
    return refs


def _post_order(root: Node) -> list[Node]:
    """Every node of the DAG once, operands before the nodes that use them."""
    out: list[Node] = []
    seen: set[Node] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            out.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.children) if c not in seen)
    return out


def _skippable(node: Node) -> bool:
    """Leaves, and a leaf transposed or negated, read as fast as any name."""
    if not node.children:
        return True
    return isinstance(node, N.Transpose | N.Neg | N.Numel) and not node.args[0].children


def choose_parts(root: Node, text_of: Callable[[Node, dict], str], style: str = "unicode") -> dict[Node, str]:
    """The parts to name, ``{node: name}`` in the order they are defined (inner parts first).

    ``text_of(node, aliases)`` prints a node with the parts named so far; ``style`` spells the names
    (``unicode``: h₁, ``text``: h1, ``latex``: h_{1}).
    """
    refs = _references(root)
    taken = {s.name for s in N.symbols_of(root)} | {str(d) for d in N.dims_in(root)}
    chosen: list[Node] = []
    aliases: dict[Node, str] = {}
    for node in _post_order(root):
        if node is root or refs.get(node, 0) < 2 or _skippable(node):
            continue
        length = len(text_of(node, aliases))
        # a name of one or two letters replaces each use and costs one definition ", u = …"
        if length < _MIN_LENGTH or refs[node] * (length - 2) <= length + 6:
            continue
        chosen.append(node)
        aliases[node] = "u"  # a placeholder of a name's length, for the texts of the parts that follow
    return _spell(chosen, taken, style)


def _spell(chosen: list[Node], taken: set[str], style: str) -> dict[Node, str]:
    by_letter: dict[str, list[Node]] = {}
    for node in chosen:
        letter = _letter(node, style)
        if letter in taken:
            letter = next((c for c in "uvwzabcfgkqt" if c not in taken), "u")
        by_letter.setdefault(letter, []).append(node)
    names: dict[Node, str] = {}
    for letter, nodes in by_letter.items():
        for i, node in enumerate(nodes, 1):
            name = letter if len(nodes) == 1 else _subscripted(letter, i, style)
            while name in taken:  # h1 when a variable is called h1
                name += "_"
            names[node] = name
    return {node: names[node] for node in chosen}


def _subscripted(letter: str, i: int, style: str) -> str:
    if style == "unicode":
        return letter + str(i).translate(_SUBSCRIPT)
    if style == "latex":
        return f"{letter}_{{{i}}}"
    return f"{letter}{i}"


def _named_text(root: Node, make_printer: Callable[[dict], object], names: dict[Node, str], where: str) -> str:
    body = make_printer(names).doprint(root)
    defs = []
    for node, name in names.items():
        others = {n: a for n, a in names.items() if n is not node}
        defs.append(f"{name} = {make_printer(others).doprint(node)}")
    return body + where + ", ".join(defs)


def parts_to_name(root: Node, measure: Callable[[dict], object]) -> list[Node]:
    """The parts worth naming, inner parts first, or none when naming does not shorten the text.

    Lengths are measured with one printer (``measure(aliases)``, the Unicode one), so that the text,
    Unicode and LaTeX forms of a result name the same parts.
    """
    def text_of(node: Node, aliases: dict) -> str:
        return measure(aliases).doprint(node)

    names = choose_parts(root, text_of, "unicode")
    if not names:
        return []
    # printing unshares the DAG: a deep result's whole text can be far too long to build just to compare
    if _unshared_size(root) <= _MAX_WHOLE:
        whole = measure({}).doprint(root)
        if len(_named_text(root, measure, names, " where ")) >= len(whole):
            return []
    return list(names)


def print_named(root: Node, make_printer: Callable[[dict], object], style: str, where: str,
                measure: Callable[[dict], object] | None = None) -> str:
    """``root`` printed with its repeated parts named, ``body<where>a = …, b = …``, when that is shorter
    than the whole text; otherwise the whole text. ``make_printer(aliases)`` builds the target's printer,
    ``measure(aliases)`` the printer whose lengths decide (by default the same)."""
    chosen = parts_to_name(root, measure or make_printer)
    if not chosen:
        return make_printer({}).doprint(root)
    taken = {s.name for s in N.symbols_of(root)} | {str(d) for d in N.dims_in(root)}
    return _named_text(root, make_printer, _spell(chosen, taken, style), where)


_MAX_WHOLE = 200_000  # nodes of the unshared tree


def _unshared_size(root: Node) -> int:
    """The number of nodes of the tree that printing ``root`` whole would walk (shared nodes counted per use)."""
    occurrences: dict[Node, int] = {root: 1}
    for node in reversed(_post_order(root)):  # parents before their operands
        for child in node.children:
            occurrences[child] = occurrences.get(child, 0) + occurrences[node]
    return sum(occurrences.values())
