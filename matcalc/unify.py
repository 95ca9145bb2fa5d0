"""The unification of dimensions: the typechecker's inference of sizes, and readback's prediction of it.

Why a module of its own: :mod:`matcalc.typecheck` infers the sizes of a text and
:mod:`matcalc.printing.readback` predicts that inference from a node; both must unify by the very same
rules, so both use this one unifier. It imports nothing of matcalc.
"""

from __future__ import annotations

__all__ = ["Var", "Unifier"]


class Var:
    """A dimension unification variable."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str | None = None):
        self.index = index
        self.name = name  # a declared dimension name, if any

    def __repr__(self) -> str:  # pragma: no cover
        return f"?{self.index}"


class Unifier:
    """Union-find over dimension variables and sizes: a variable never becomes 1 (a vector's length or a
    matrix side is never inferred to be 1), a named one takes a size, and of two variables the named one,
    else the older one, represents both."""

    def __init__(self):
        self.parent: dict[int, object] = {}
        self.vars: list[Var] = []
        self.named: dict[str, Var] = {}

    def fresh(self) -> Var:
        v = Var(len(self.vars))
        self.vars.append(v)
        return v

    def named_dim(self, name: str) -> Var:
        if name not in self.named:
            self.named[name] = v = self.fresh()
            v.name = name
        return self.named[name]

    def find(self, d):
        while isinstance(d, Var) and d.index in self.parent:
            d = self.parent[d.index]
        return d

    def unify(self, a, b) -> bool:
        a, b = self.find(a), self.find(b)
        if a is b or (isinstance(a, int) and isinstance(b, int) and a == b):
            return True
        if isinstance(a, int) and isinstance(b, int):
            return False
        if isinstance(a, int):
            a, b = b, a
        # a is a variable now
        if isinstance(b, int):
            if b == 1:
                return False
            self.parent[a.index] = b  # a declared symbolic dimension equal to a concrete size takes it
            return True
        # both variables: keep a declared name, else the older variable, as representative
        if b.name is not None and a.name is None:
            a, b = b, a
        elif a.name is not None and b.name is not None:
            if a.name != b.name:
                return False
        elif b.index < a.index and b.name is None and a.name is None:
            a, b = b, a
        self.parent[b.index] = a
        return True
