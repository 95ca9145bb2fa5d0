"""Printers: text (the input language), Unicode (the texts' notation) and LaTeX."""

from __future__ import annotations

from ..budget import budgeted, check_output, current_limits
from ..errors import MatcalcError
from ..nodes import PRINTERS, Node, Symbol, symbols_of
from .latex import LatexPrinter
from .names import print_named
from .readback import explicit_differs, reads_back
from .text import TextPrinter
from .unicode import UnicodePrinter

__all__ = ["to_text", "to_unicode", "to_latex", "declarations_of", "TextPrinter", "UnicodePrinter",
           "LatexPrinter"]


def _bounded(text: str) -> str:
    check_output(len(text))
    return text


def tree_size(node: Node, chars: bool = False) -> int:
    """How many nodes the printed tree of ``node`` has: a shared subexpression counts once per use.

    Linear in the DAG (children first, iteratively). With ``chars=True``, a lower bound on the characters
    of any printed form instead (every name written out at each use, a separator between operands), so a
    result that cannot fit the output limit is refused before it is printed."""
    size: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, ready = stack.pop()
        if id(n) in size:
            continue
        if ready:
            kids = n.children
            own = len(n.name) if chars and isinstance(n, Symbol) else 1
            size[id(n)] = own + sum(size[id(c)] for c in kids) + (max(len(kids) - 1, 0) if chars else 0)
            continue
        stack.append((n, True))
        stack.extend((c, False) for c in n.children if id(c) not in size)
    return size[id(node)]


def _fits(node: Node, named: bool = False) -> None:
    """Refuse at once a node whose printed form would exceed the output limit (see :func:`tree_size`).

    With named parts the text is not the unshared tree, so only the finished text is measured."""
    if not isinstance(node, Node):
        raise MatcalcError(f"the printers take a parsed expression (matcalc.parse(...)), not "
                           f"{type(node).__name__}")
    if named:
        return
    size = tree_size(node, chars=True)
    limit = current_limits().output
    if limit is not None and size > limit:
        check_output(size)


def declarations_of(node: Node) -> dict[str, str]:
    """The declaration of every symbol of ``node``, as strings ``parse`` accepts (``"matrix(m, n)"``)."""
    out: dict[str, str] = {}
    for s in symbols_of(node):
        shape = s.shape
        if shape == ():
            out[s.name] = "scalar"
        elif s.symmetric:
            out[s.name] = f"symmetric({shape[0]})"
        elif shape[1] == 1:
            out[s.name] = f"vector({shape[0]})"
        else:
            out[s.name] = f"matrix({shape[0]}, {shape[1]})"
    return out


def _where_clause(decls: dict[str, str]) -> str:
    groups: dict[str, list[str]] = {}
    for name, kind in decls.items():
        groups.setdefault(kind, []).append(name)
    return ", ".join(f"{', '.join(names)}: {kind}" for kind, names in groups.items())


def _taken(node: Node) -> frozenset:
    return frozenset(s.name for s in symbols_of(node))


def _printer(cls, node: Node, **options):
    """A printer for ``node`` that knows its variables' names; ``aliases`` are its named parts."""
    taken = _taken(node)

    def make(aliases: dict):
        p = cls(**options)
        p.aliases, p.taken = aliases, taken
        return p
    return make


@budgeted("printing")
def to_text(node: Node, declarations: bool = False, named: bool = False) -> str:
    """The input-language text of ``node``.

    With ``declarations=True`` a ``where`` clause is added when the bare text would not parse back to
    the same node (a name declared against the naming convention, or dimensions that inference would
    name differently), so that ``parse(to_text(e, True)) == e`` always holds. With ``named=True`` the
    repeated parts are named (``… where s = softmax(…)``, see :mod:`.names`): for reading, not parsing.
    """
    from ..recursion import deep_recursion

    _fits(node, named)
    with deep_recursion():
        if named:
            return _bounded(print_named(node, _printer(TextPrinter, node), "text", " where ",
                                        _printer(UnicodePrinter, node)))
        body = _bounded(TextPrinter().doprint(node))
        if not declarations:
            return body
        return _declared(node, body)


def _declared(node: Node, body: str) -> str:
    """``body``, the explicit-sizes text, or that text with a ``where`` clause: the first that parses back
    to ``node``, decided from the node (:func:`.readback.reads_back`), or by parsing where that cannot
    tell (rare: see :data:`.readback.STATS`)."""
    answer = reads_back(node, body)
    if answer is None:
        return _reparsed(node, body)
    if answer == "body":
        return body
    explicit = TextPrinter(explicit_sizes=True).doprint(node) if explicit_differs(node) else body
    if answer == "explicit":
        return explicit
    decls = declarations_of(node)
    return f"{explicit} where {_where_clause(decls)}" if decls else explicit


def _reparsed(node: Node, body: str) -> str:
    """The same choice made by parsing the texts (the fallback of :func:`_declared`)."""
    from ..typecheck import typecheck

    # ``I`` and ``ones(n)'`` read back as an identity of inferred size and a transposed column;
    # when that differs from the node, print sizes explicitly (``eye(m)``, ``ones(1, n)``).
    explicit = TextPrinter(explicit_sizes=True).doprint(node)
    for candidate in dict.fromkeys((body, explicit)):
        try:
            if typecheck(candidate) is node:
                return candidate
        except MatcalcError:
            pass
    decls = declarations_of(node)
    return f"{explicit} where {_where_clause(decls)}" if decls else explicit


@budgeted("printing")
def to_unicode(node: Node, named: bool = False) -> str:
    """The notation of the texts; ``named=True`` names the repeated parts (``… where s = …``)."""
    from ..recursion import deep_recursion

    _fits(node, named)
    with deep_recursion():
        make = _printer(UnicodePrinter, node)
        return _bounded(print_named(node, make, "unicode", " where ") if named else make({}).doprint(node))


@budgeted("printing")
def to_latex(node: Node, named: bool = False) -> str:
    """LaTeX; ``named=True`` names the repeated parts (``… \\quad\\text{where } s = …``)."""
    from ..recursion import deep_recursion

    _fits(node, named)
    with deep_recursion():
        make = _printer(LatexPrinter, node)
        if named:
            return _bounded(print_named(node, make, "latex", " \\quad\\text{where } ",
                                        _printer(UnicodePrinter, node)))
        return _bounded(make({}).doprint(node))


PRINTERS.update(text=to_text, latex=to_latex)  # str(node) and the notebook display (see nodes.PRINTERS)
