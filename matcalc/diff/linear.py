"""Reading matrix forms off a differential: transposition (reverse) and batched tangents (forward).

A differential ``dF`` is a linear map of ``dX``. This module turns it into the matrices of the texts:

- :func:`pullback` transposes the map, one rule per linear node type (JAX's transpose rules, done
  symbolically): seeded with 1 it gives the gradient of a scalar ``F`` in ``X``'s own shape
  (``d tr(AX) = tr(A dX)`` -> ``Aᵀ``).
- :func:`forward_jacobian` pushes the identity through the map, one rule per node type, giving the
  Jacobian of a vector ``F`` with respect to a vector ``x`` in numerator layout, the way Parr and Howard
  chain it (``∂(w ⊙ x)/∂x = diag(w)``, ``∂sum(u)/∂u = 1ᵀ``).
- :func:`substitute` sets ``dx = 1`` for a scalar variable (the ordinary derivative).

Matrices that depend on the tangent inside a forward Jacobian are read through the contraction rules of
:mod:`.contract`. What no rule covers raises :class:`~matcalc.errors.NoMatrixFormError` saying that
matcalc could not find the matrix form (the derivative has one: it has at most two axes); derivatives
with three or four axes never come here (see :mod:`.tensor`).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import nodes as N
from .. import simplify as S
from ..errors import DerivativeError, NoMatrixFormError
from ..nodes import Node
from ..printing import to_unicode
from ..shapes import is_column, is_row
from ..visit import Transformer, find_method
from .contract import Contraction, Dependence, entry, kron_blocks, not_found, unit
from .rules import ew_mul, inner


def dependents(root: Node, leaf: Node) -> tuple[list[Node], set[Node]]:
    """Nodes of ``root`` that depend on ``leaf``, children before parents."""
    order: list[Node] = []
    dep: dict[Node, bool] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        n, expanded = stack.pop()
        if n in dep and not expanded:
            continue
        if expanded:
            d = n is leaf or any(dep.get(c, False) for c in n.children)
            dep[n] = d
            if d:
                order.append(n)
            continue
        if n is leaf:
            dep[n] = True
            order.append(n)
            continue
        stack.append((n, True))
        for c in n.children:
            if c not in dep:
                stack.append((c, False))
    return order, {n for n, d in dep.items() if d}


def _inner(a: Node, b: Node) -> Node:
    """⟨a, b⟩, written ‖a‖² when both are the same and tr(a) when b is the identity."""
    ca, a_core = S.split_coeff(a)
    cb, b_core = S.split_coeff(b)
    if a_core is None or b_core is None or a.shape == ():
        return inner(a, b)
    if a_core is b_core:
        return S.scale(ca * cb, S.power(N.Norm(a_core, 2), N.Number(2)))
    if isinstance(b_core, N.Identity) or isinstance(a_core, N.Identity):
        return S.scale(ca * cb, S.trace(a_core if isinstance(b_core, N.Identity) else b_core))
    return inner(a, b)


def _one_dependent(n: Node, deps: set[Node]) -> int:
    idx = [i for i, c in enumerate(n.args) if isinstance(c, Node) and c in deps]
    if len(idx) != 1:
        raise DerivativeError(f"internal: {to_unicode(n)} is not linear in the differential")
    return idx[0]


def _kron_as_product(n: N.Kron, deps: set[Node], what: str) -> tuple[Node, Node]:
    """``(v, K)`` with ``kron(a, v) = (a ⊗ I) v`` or ``kron(v, b) = (I ⊗ b) v`` for the one column vector
    ``v`` that carries the differential; Kronecker products of anything else have no matrix form."""
    i = _one_dependent(n, deps)
    f, other = n.args[i], n.args[1 - i]
    if not (is_column(f.shape) and is_column(other.shape)):
        raise not_found(n)
    eye = N.Identity(f.shape[0])
    return f, (N.Kron(other, eye) if i == 1 else N.Kron(eye, other))


class _LinearRules:
    """What the catalogue's transpose and forward rules of a linear call get (matcalc.ops: ``t.S``,
    ``t.one_dependent(n)`` ...); ``deps`` are the nodes that depend on the differential."""

    S = S
    N = N
    deps: set[Node]

    def one_dependent(self, n: Node) -> int:
        """The index of the one argument of ``n`` that carries the differential."""
        return _one_dependent(n, self.deps)

    def kron_as_product(self, n: N.Kron, what: str) -> tuple[Node, Node]:
        return _kron_as_product(n, self.deps, what)

    def call_rule(self, n: Node, which: str) -> Callable:
        """The record's ``transpose`` or ``forward`` rule of a call; a call without one is not linear."""
        rule = getattr(n.record, which)
        if rule is None:
            raise not_found(n)
        return rule


# --- reverse: transposition ------------------------------------------------------------------------------------
class _Pullback(_LinearRules):
    """Transpose rules: given the cotangent ``c`` of a linear node, the cotangents of its children."""

    inner = staticmethod(_inner)
    kron_blocks = staticmethod(kron_blocks)
    not_found = staticmethod(not_found)

    def __init__(self, deps: set[Node]):
        self.deps = deps

    def t_Call(self, n, c):
        """A linear call (sum, tr, diag, kron ...): its record's transpose rule."""
        return self.call_rule(n, "transpose")(self, n, c)

    def rule(self, n: Node, c: Node) -> list[tuple[Node, Node]]:
        method = find_method(self, "t_", type(n))
        if method is None:
            raise not_found(n)
        return method(n, c)

    def t_Add(self, n, c):
        return [(t, c if t.shape == n.shape else S.ssum(c)) for t in n.args if t in self.deps]

    def t_Neg(self, n, c):
        return [(n.args[0], S.neg(c))]

    def t_MatMul(self, n, c):
        i = _one_dependent(n, self.deps)
        f = n.args[i]
        if f.shape == ():
            others = S.mul(*(n.args[:i] + n.args[i + 1:]))
            return [(f, inner(c, others))]
        left = S.mul(*n.args[:i])
        right = S.mul(*n.args[i + 1:])
        return [(f, S.mul(S.transpose(left), c, S.transpose(right)))]

    def t_Div(self, n, c):
        x, s = n.args
        if s in self.deps:
            raise DerivativeError("internal: a differential in a divisor")
        return [(x, S.div(c, s))]

    def t_Hadamard(self, n, c):
        i = _one_dependent(n, self.deps)
        f = n.args[i]
        others = S.had(*(n.args[:i] + n.args[i + 1:]))
        if f.shape == n.shape:
            return [(f, ew_mul(others, c))]
        return [(f, inner(c, others))]

    def t_ElemDiv(self, n, c):
        a, b = n.args
        if b in self.deps:
            raise DerivativeError("internal: a differential in a divisor")
        q = S.ediv(c, b)
        return [(a, q if a.shape == n.shape else S.ssum(q))]

    def t_Transpose(self, n, c):
        return [(n.args[0], S.transpose(c))]

    def t_Fill(self, n, c):
        return [(n.value, S.ssum(c))]

    def t_VectorLit(self, n, c):
        return [(e, entry(c, i, len(n.args))) for i, e in enumerate(n.args) if e in self.deps]

    def t_MatrixLit(self, n, c):
        rows, cols = len(n.rows), len(n.rows[0])
        return [(e, entry(c, i, rows, j, cols)) for i, row in enumerate(n.rows) for j, e in enumerate(row)
                if e in self.deps]


def pullback(linear: Node, leaf: Node, seed: Node) -> Node:
    """The transpose of the linear map ``leaf -> linear`` applied to ``seed`` (the cotangent of ``linear``)."""
    from ..recursion import deep_recursion

    order, deps = dependents(linear, leaf)
    if leaf not in deps:
        return S.zero_like(leaf.shape)
    cot: dict[Node, list[Node]] = {linear: [seed]}
    rules = _Pullback(deps)
    with deep_recursion():
        for n in reversed(order):
            parts = cot.pop(n, None)
            if not parts:
                continue
            c = parts[0] if len(parts) == 1 else S.add(*parts)
            if n is leaf:
                return c
            for child, contribution in rules.rule(n, c):
                cot.setdefault(child, []).append(contribution)
    return S.zero_like(leaf.shape)  # pragma: no cover - the leaf is reached when it is a dependent


# --- forward: batched tangents ---------------------------------------------------------------------------------
def _vec(x: Node) -> Node:
    """A vector as a column (rows are transposed); scalars stay."""
    return S.transpose(x) if is_row(x.shape) else x


def _length(x: Node):
    if x.shape == ():
        return 1
    return x.shape[0] if is_column(x.shape) else x.shape[1]


class _Forward(_LinearRules):
    """Forward rules: the Jacobian ``T`` of a node from those of its children (numerator layout)."""

    vec = staticmethod(_vec)
    length = staticmethod(_length)

    def __init__(self, leaf: Node, deps: set[Node]):
        self.leaf = leaf
        self.deps = Dependence(leaf, deps)

    def f_Call(self, n, t):
        """A linear call: its record's forward (Jacobian) rule."""
        return self.call_rule(n, "forward")(self, n, t)

    def rule(self, n: Node, t: dict[Node, Node]) -> Node:
        if n.shape != () and not (is_column(n.shape) or is_row(n.shape)):
            return _MatrixTangent(n)  # consumed by the vector or scalar nodes above it (see contract)
        if any(isinstance(t.get(c), _MatrixTangent) for c in n.children):
            return self._through_matrix(n, t)
        method = find_method(self, "f_", type(n))
        if method is None:
            raise not_found(n)
        return method(n, t)

    def _through_matrix(self, n: Node, t: dict[Node, Node]) -> Node:
        """A vector or scalar made from a matrix that depends on the tangent: diag() and tr() of a sum of
        ``L diag(v) R`` directly, everything else by the contraction rules of :mod:`.contract`."""
        if isinstance(n, N.DiagVec | N.Trace):
            try:
                return find_method(self, "f_", type(n))(n, t)
            except NoMatrixFormError:
                pass
        return Contraction(self.deps, lambda f: self.push(f, t), _length(self.leaf)).reduce(n)

    def push(self, expr: Node, t: dict[Node, Node]) -> Node:
        """The Jacobian of ``expr``, computing the tangents of its nodes that ``t`` does not have yet."""
        if expr not in self.deps:
            return S.zero_like((_length(expr), _length(self.leaf)))
        order, _ = dependents(expr, self.leaf)
        for node in order:
            if node not in t:
                t[node] = self.rule(node, t)
        out = t[expr]
        if isinstance(out, _MatrixTangent):
            raise not_found(expr)
        return out

    def _ones_col(self, n):
        return N.Ones((_length(n), 1)) if n.shape != () else S.ONE

    def f_Add(self, n, t):
        parts = []
        for term in n.args:
            if term in self.deps:
                parts.append(t[term] if term.shape == n.shape else S.mul(self._ones_col(n), t[term]))
        return S.add(*parts)

    def f_Neg(self, n, t):
        return S.neg(t[n.args[0]])

    def f_MatMul(self, n, t):
        i = _one_dependent(n, self.deps)
        f = n.args[i]
        left = S.mul(*n.args[:i])
        right = S.mul(*n.args[i + 1:])
        if f.shape == ():
            return S.mul(_vec(S.mul(left, right)), t[f])
        if is_column(f.shape):  # L p R with R a scalar, or a row after the scalar L p
            return S.mul(S.transpose(right), left, t[f])
        # L f R with a row f: f R is a scalar (then L is a scalar or column) or L is a scalar
        return S.mul(left, S.transpose(right), t[f])

    def f_Div(self, n, t):
        return S.div(t[n.args[0]], n.args[1])

    def _scaled(self, n, f, weights, t):
        if f.shape == n.shape:
            if weights.shape == ():
                return S.mul(weights, t[f])
            return S.mul(S.diagmat(_vec(weights)), t[f])
        return S.mul(_vec(weights), t[f])

    def f_Hadamard(self, n, t):
        i = _one_dependent(n, self.deps)
        f = n.args[i]
        return self._scaled(n, f, S.had(*(n.args[:i] + n.args[i + 1:])), t)

    def f_ElemDiv(self, n, t):
        a, b = n.args
        if b in self.deps:
            raise DerivativeError("internal: a differential in a divisor")
        return self._scaled(n, a, S.ediv(S.ONE, b), t)

    def f_Transpose(self, n, t):
        return t[n.args[0]]

    def f_Fill(self, n, t):
        return S.mul(self._ones_col(n), t[n.value])

    def diag_terms(self, m: Node, sign: int = 1) -> list[tuple[int, Node, Node, Node]]:
        """``m`` (linear in the tangent) as a sum of ``± L diag(v) R`` with ``v`` a dependent vector."""
        if isinstance(m, N.Add):
            return [term for a in m.args if a in self.deps for term in self.diag_terms(a, sign)]
        if isinstance(m, N.Neg):
            return self.diag_terms(m.args[0], -sign)
        if isinstance(m, N.DiagMat):
            return [(sign, S.ONE, m.args[0], S.ONE)]
        if isinstance(m, N.MatMul):
            i = _one_dependent(m, self.deps)
            f = m.args[i]
            if isinstance(f, N.DiagMat):
                return [(sign, S.mul(*m.args[:i]), f.args[0], S.mul(*m.args[i + 1:]))]
        raise not_found(m)

    def f_VectorLit(self, n, t):
        entries = [t[e] if e in self.deps else None for e in n.args]
        if all(e is None or e.shape == () for e in entries):
            return N.VectorLit(*[S.ZERO if e is None else e for e in entries])
        # the rows stacked: J = Σ eᵢ ∂fᵢ/∂x, with eᵢ the i-th unit vector
        return S.add(*[S.mul(unit(len(entries), i), e) for i, e in enumerate(entries) if e is not None])

    def f_MatrixLit(self, n, t):
        # a one-column or one-row literal is a vector of expressions
        return self.f_VectorLit(N.VectorLit(*n.children), t)


class _MatrixTangent:
    """The (tensor) tangent of a matrix node: only diag() and tr() may consume it."""

    def __init__(self, node: Node):
        self.node = node


def forward_jacobian(linear: Node, leaf: Node) -> Node:
    """The Jacobian (numerator layout) of a vector- or scalar-valued linear map of a vector ``leaf``."""
    from ..recursion import deep_recursion

    order, deps = dependents(linear, leaf)
    n = _length(leaf)
    if leaf not in deps:
        return S.zero_like((_length(linear), n))
    rules = _Forward(leaf, deps)
    tangents: dict[Node, Node] = {leaf: N.Identity(n)}
    with deep_recursion():
        return rules.push(linear, tangents)


def substitute(expr: Node, mapping: dict[Node, Node]) -> Node:
    """``expr`` with the nodes of ``mapping`` replaced, rebuilt through the simplifier."""
    from ..recursion import deep_recursion

    with deep_recursion():
        return S.simplify(Transformer().seed(mapping.items()).visit(expr))
