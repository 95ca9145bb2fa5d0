"""One visitor and one transformer over the hash-consed node DAG, dispatching along the class's MRO.

Why: matcalc had eight hand-written dispatchers (``getattr(self, "_eval_" + type(n).__name__)`` and the
like) and two copies each of the same two loops: the children-first memoised evaluation
(``NumpyEvaluator.eval``, ``ExplicitBuilder.build``) and the memoised rebuild (``simplify.simplify``,
``diff.linear.substitute``). They now share this module, as Python's ``ast`` has one ``NodeVisitor`` and
one ``NodeTransformer`` and SymPy's printers dispatch on the MRO with a fallback.

* :func:`find_method` - the method ``<prefix><Class>`` of an object for a node class, looked up along the
  class's MRO (a subclass without its own method uses its base's), cached per (object type, prefix,
  node class). Every dispatcher (printers, evaluators, the differentiation and transposition rules, code
  generation) uses it.
* :class:`Visitor` - computes one value per node, children first, each node of the DAG once (memoised by
  identity, which is equality for hash-consed nodes), iteratively (deep trees do not recurse).
* :class:`Transformer` - a visitor whose value is a node: rebuilds an expression bottom-up, a node whose
  children did not change staying itself; ``seed`` fixes replacements (substitution).

This module imports nothing of matcalc: it sits at the bottom of the import graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_METHODS: dict[tuple[type, str, type], str | None] = {}


def find_method(owner: Any, prefix: str, node_type: type) -> Callable | None:
    """``owner``'s bound method ``<prefix><Class>`` for the first class of ``node_type``'s MRO that has
    one, or None."""
    key = (type(owner), prefix, node_type)
    name = _METHODS.get(key, False)
    if name is False:
        name = next((prefix + k.__name__ for k in node_type.__mro__ if hasattr(owner, prefix + k.__name__)),
                    None)
        _METHODS[key] = name
    return getattr(owner, name) if name is not None else None


class Visitor:
    """One value per node of a DAG, children first, memoised by identity; iterative.

    Subclasses define ``<prefix><Class>(node)`` methods (found along the MRO) or override :meth:`apply`
    (the value of one node whose children are done, read with :meth:`value`); a node class without a
    method goes to :meth:`fallback`.
    """

    prefix = "visit_"

    def __init__(self) -> None:
        #: id(node) -> (node, value); the node is kept so that its id is not reused while memoised
        self._memo: dict[int, tuple[Any, Any]] = {}

    def step(self) -> None:
        """Called once per node taken from the work stack (a budget checkpoint where one is wanted)."""

    def visit(self, root: Any) -> Any:
        """The value of ``root``, computing each node of its DAG once, children before parents."""
        memo = self._memo
        if id(root) in memo:
            return memo[id(root)][1]
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            n, ready = stack.pop()
            self.step()
            if id(n) in memo:
                continue
            if ready:
                memo[id(n)] = (n, self.apply(n))
                continue
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(n.children) if id(c) not in memo)
        return memo[id(root)][1]

    def value(self, node: Any) -> Any:
        """The memoised value of a node already visited (a child, inside :meth:`apply`)."""
        return self._memo[id(node)][1]

    def apply(self, node: Any) -> Any:
        method = find_method(self, self.prefix, type(node))
        return method(node) if method is not None else self.fallback(node)

    def fallback(self, node: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no method for {type(node).__name__}")


class Transformer(Visitor):
    """Rebuilds an expression bottom-up: ``<prefix><Class>(node, children)`` gets the node and its
    transformed children; without a method, :meth:`fallback` keeps the node if no child changed and
    otherwise rebuilds it with :meth:`Node.with_children`."""

    prefix = "transform_"

    def seed(self, replacements: Iterable[tuple[Any, Any]]) -> Transformer:
        """Fix the result for some nodes (substitution): their subtrees are not visited."""
        for old, new in replacements:
            self._memo[id(old)] = (old, new)
        return self

    def apply(self, node: Any) -> Any:
        kids = node.children
        new = tuple(self.value(k) for k in kids)
        method = find_method(self, self.prefix, type(node))
        if method is not None:
            return method(node, new)
        return self.fallback(node, new)

    def fallback(self, node: Any, children: tuple = ()) -> Any:  # type: ignore[override]
        if all(a is b for a, b in zip(children, node.children, strict=True)):
            return node
        return node.with_children(children)
