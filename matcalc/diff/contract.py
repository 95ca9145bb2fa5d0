"""Moving constants out of the way of the tangent: matrix-valued intermediates of a forward Jacobian.

A differential ``dF`` of a vector ``F`` with respect to a vector ``x`` can pass through matrices that
depend on ``dx`` (``diag(dx)``, an outer product ``dx xᵀ``, ``(aᵀdx) M``, ``kron(dx, I)``, ``W ⊙ (s sᵀ dx)``
under a Hadamard product). Such a matrix ``M`` is only ever *consumed* linearly: multiplied by a constant
vector, summed, traced or read on its diagonal. Every consumer is one form,

    ``(W ⊙ M) v``  (or ``(W ⊙ M)ᵀ v``), with ``W`` a constant weight matrix (absent = all ones) and ``v`` a
    constant column,

since ``M v``, ``diag(M B) = (Bᵀ ⊙ M) 𝟙``, ``tr(M B) = 𝟙ᵀ (Bᵀ ⊙ M) 𝟙`` and ``sum(M) = 𝟙ᵀ M 𝟙``.
:class:`Contraction` rewrites that form, one rule per linear node type, until the tangent sits in a vector
again, with the textbook identities (``diag(p) v = v ⊙ p``, ``(l r) v = l (r v)``, ``(W ⊙ l r) v = l ⊙
(W (rᵀ ⊙ v))``, ``(W ⊙ L diag(p) R) v = (L ⊙ (W diag(v) Rᵀ)) p``, ``kron(p, B) v = (I ⊗ B v) p``, ...).
The forward Jacobian then reads the vector off as usual.

What it cannot rewrite (a Hadamard product with a matrix buried inside a longer product, say) raises
:class:`~matcalc.errors.NoMatrixFormError` saying that matcalc could not find the matrix form: the
derivative has one (it has two axes), matcalc does not know how to write it.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import nodes as N
from .. import simplify as S
from ..errors import NoMatrixFormError
from ..nodes import Node
from ..printing import to_unicode
from ..shapes import is_column, is_row
from ..visit import find_method

NOT_FOUND = "matcalc could not find the matrix form of the derivative through {}"


def not_found(node: Node) -> NoMatrixFormError:
    """The refusal for a derivative with at most two axes: it has a matrix form that matcalc misses."""
    return NoMatrixFormError(NOT_FOUND.format(to_unicode(node)))


class Dependence:
    """Which nodes depend on the leaf, memoised, for nodes built along the way as well."""

    def __init__(self, leaf: Node, known: set[Node]):
        self.leaf = leaf
        self.memo: dict[Node, bool] = {n: True for n in known}

    def __contains__(self, n) -> bool:
        if not isinstance(n, Node):
            return False
        found = self.memo.get(n)
        if found is None:
            found = n is self.leaf or any(c in self for c in n.children)
            self.memo[n] = found
        return found


def is_vector(n: Node) -> bool:
    return is_column(n.shape) or is_row(n.shape)


def is_matrix_valued(n: Node) -> bool:
    return n.shape != () and not is_vector(n)


def _is_identity(n: Node) -> bool:
    return S.is_number(n, 1) or isinstance(n, N.Identity)


def _had_with(left: Node, z: Node) -> Node:
    """``L ⊙ Z`` where an absent ``L`` (the number 1 of an empty product) is the identity matrix."""
    return S.diagmat(S.diagvec(z)) if _is_identity(left) else S.had(left, z)


def _t(w: Node | None, tr: bool) -> Node | None:
    return None if w is None else (S.transpose(w) if tr else w)


def _weighted(w: Node | None, m: Node) -> Node:
    return m if w is None else S.had(w, m)


class Contraction:
    """The Jacobian of ``(W ⊙ M) v`` for a matrix ``M`` linear in the tangent, rule by rule down to the
    vectors inside ``M``, whose Jacobians ``jac`` gives (the forward pass's own)."""

    def __init__(self, deps: Dependence, jac: Callable[[Node], Node], width):
        self.deps = deps
        self.jac = jac
        self.width = width

    # what the catalogue's contraction rules use (matcalc.ops: ``c.apply``, ``c.jac``, ``c.unvec`` ...)
    S = S
    N = N
    not_found = staticmethod(not_found)
    is_matrix_valued = staticmethod(is_matrix_valued)

    @staticmethod
    def constant(m: Node, v: Node, w: Node | None, tr: bool) -> Node:
        return constant(m, v, w, tr)

    @staticmethod
    def out_length(m: Node, tr: bool):
        return out_length(m, tr)

    @staticmethod
    def unvec(v: Node, rows, cols) -> Node | None:
        return unvec(v, rows, cols)

    @staticmethod
    def kron_blocks(c: Node, shape_a, shape_b):
        return kron_blocks(c, shape_a, shape_b)

    def c_Call(self, m, v, w, tr):
        """A call (diag, kron): its record's contraction rule."""
        rule = m.record.contract
        if rule is None:
            raise not_found(m)
        return rule(self, m, v, w, tr)

    def apply(self, m: Node, v: Node, w: Node | None = None, tr: bool = False) -> Node:
        """``∂((W ⊙ M) v)/∂x`` (``tr``: of ``(W ⊙ M)ᵀ v``)."""
        if m not in self.deps:
            return N.Zeros((out_length(m, tr), self.width))
        method = find_method(self, "c_", type(m))
        if method is None:
            raise not_found(m)
        return method(m, v, w, tr)

    def _broadcast(self, s: Node, m: Node, v: Node, w, tr) -> Node:
        """A dependent scalar ``s`` spread over ``m``'s shape: ``(W ⊙ s 𝟙𝟙ᵀ) v = (W v) s``."""
        if w is None:
            return S.mul(S.ssum(v), N.Ones((out_length(m, tr), 1)), self.jac(s))
        return S.mul(_t(w, tr), v, self.jac(s))

    def c_Add(self, m, v, w, tr):
        parts = []
        for term in m.args:
            if term not in self.deps:
                continue
            parts.append(self._broadcast(term, m, v, w, tr) if term.shape == () else self.apply(term, v, w, tr))
        return S.add(*parts)

    def c_Neg(self, m, v, w, tr):
        return S.neg(self.apply(m.args[0], v, w, tr))

    def c_Div(self, m, v, w, tr):
        return S.div(self.apply(m.args[0], v, w, tr), m.args[1])

    def c_Transpose(self, m, v, w, tr):
        return self.apply(m.args[0], v, _t(w, True), not tr)

    def c_Fill(self, m, v, w, tr):
        return self._broadcast(m.value, m, v, w, tr)

    def c_Hadamard(self, m, v, w, tr):
        f = next(a for a in m.args if a in self.deps)
        others = [a for a in m.args if a is not f]
        if f.shape == ():
            return S.mul(constant(S.had(*others), v, w, tr), self.jac(f))
        weights = S.had(*([w] if w is not None else []), *others)
        return self.apply(f, v, weights, tr)

    def c_ElemDiv(self, m, v, w, tr):
        a, b = m.args
        if b in self.deps:
            raise not_found(m)
        weights = S.ediv(N.Ones(m.shape) if w is None else w, b)
        if a.shape == ():
            return S.mul(constant(weights, v, None, tr), self.jac(a))
        return self.apply(a, v, weights, tr)

    def c_MatMul(self, m, v, w, tr):
        i = next(k for k, f in enumerate(m.args) if f in self.deps)
        f = m.args[i]
        if f.shape == ():
            rest = S.mul(*(m.args[:i] + m.args[i + 1:]))
            return S.mul(constant(rest, v, w, tr), self.jac(f))
        scalars = [g for g in m.args if g.shape == () and g is not f]
        if scalars:  # constant scalar factors come out: (W ⊙ c M) v = c (W ⊙ M) v
            return S.mul(*scalars, self.apply(S.mul(*[g for g in m.args if g.shape != ()]), v, w, tr))
        left, right = S.mul(*m.args[:i]), S.mul(*m.args[i + 1:])
        if is_column(f.shape):  # l = L p
            return S.mul(self._rank_one(S.mul(left, f), right, v, w, tr, True), left, self.jac(f))
        if is_row(f.shape):  # rᵀ = Rᵀ fᵀ
            return S.mul(self._rank_one(left, S.mul(f, right), v, w, tr, False), S.transpose(right), self.jac(f))
        if w is None:
            if tr:  # (L F R)ᵀ v = Rᵀ Fᵀ (Lᵀ v)
                return S.mul(S.transpose(right), self.apply(f, S.mul(S.transpose(left), v), None, True))
            return S.mul(left, self.apply(f, S.mul(right, v), None, False))
        if _is_identity(left) and _is_identity(right):
            return S.mul(left, right, self.apply(f, v, w, tr))
        return self._weighted_chain(left, f, right, v, w, tr)

    @staticmethod
    def _rank_one(col, row, v, w, tr, dependent_left):
        """``K`` with ``∂((W ⊙ l r)ᵗ v) = K ∂l`` (or ``K ∂rᵀ``): ``(W ⊙ l r) v = l ⊙ (W (rᵀ ⊙ v))``,
        ``(W ⊙ l r)ᵀ v = rᵀ ⊙ (Wᵀ (l ⊙ v))``, and without weights ``l (r v)`` and ``rᵀ (lᵀ v)``."""
        rt = S.transpose(row)
        if w is None:
            if tr:
                return S.mul(rt, S.transpose(v)) if dependent_left else S.dot(col, v)
            return S.mul(row, v) if dependent_left else S.mul(col, S.transpose(v))
        wt = _t(w, tr)
        if not tr:
            if dependent_left:
                return S.diagmat(S.mul(w, S.had(rt, v)))
            return S.mul(S.diagmat(col), w, S.diagmat(v))
        if dependent_left:
            return S.mul(S.diagmat(rt), wt, S.diagmat(v))
        return S.diagmat(S.mul(wt, S.had(col, v)))

    def _weighted_chain(self, left, f, right, v, w, tr):
        """``(W ⊙ L F R) v`` with a dependent matrix ``F``: distribute ``F``'s sum, or use ``F = diag(p)``."""
        if isinstance(f, N.Add):
            parts = [self.apply(S.mul(left, t if t.shape != () else S.mul(t, N.Ones(f.shape)), right), v, w, tr)
                     for t in f.args if t in self.deps]
            return S.add(*parts)
        if isinstance(f, N.Neg):
            return S.neg(self._weighted_chain(left, f.args[0], right, v, w, tr))
        if isinstance(f, N.Div):
            return S.div(self._weighted_chain(left, f.args[0], right, v, w, tr), f.args[1])
        if isinstance(f, N.Transpose):
            pushed = _push_transpose(f.args[0])
            if pushed is not None:
                return self.apply(S.mul(left, pushed, right), v, w, tr)
        if isinstance(f, N.DiagMat):
            # (W ⊙ L diag(p) R) v = (L ⊙ (W diag(v) Rᵀ)) p;  transposed: (Rᵀ ⊙ (Wᵀ diag(v) L)) p
            dv = S.diagmat(v)
            if tr:
                k = _had_with(S.transpose(right), S.mul(S.transpose(w), dv, left))
            else:
                k = _had_with(left, S.mul(w, dv, S.transpose(right)))
            return S.mul(k, self.jac(f.args[0]))
        if isinstance(f, N.Hadamard) or (isinstance(f, N.ElemDiv) and f.args[1] not in self.deps):
            chain = self._hadamard_as_chain(f)
            if chain is not None:
                return self.apply(S.mul(left, chain, right), v, w, tr)
        return self._weights_around(left, f, right, v, w, tr)

    def _hadamard_as_chain(self, f: N.Hadamard | N.ElemDiv) -> Node | None:
        """``C ⊙ G`` as products and sums, where ``G``'s structure allows: ``C ⊙ (l r) = diag(l) C diag(rᵀ)``,
        ``C ⊙ diag(p) = diag(diag(C) ⊙ p)``, ``C ⊙ (G₁ + G₂) = C ⊙ G₁ + C ⊙ G₂``, ``C ⊙ s D = s (C ⊙ D)``."""
        if isinstance(f, N.ElemDiv):  # a ⊘ B = (1 ⊘ B) ⊙ a
            return self._as_chain(S.ediv(N.Ones(f.shape), f.args[1]), f.args[0])
        g = next(a for a in f.args if a in self.deps)
        return self._as_chain(S.had(*[a for a in f.args if a is not g]), g)

    def _as_chain(self, c: Node, g: Node) -> Node | None:
        """``C ⊙ G`` (constant ``C``) without the Hadamard product, or None."""
        if isinstance(g, N.Hadamard):
            inner = next(a for a in g.args if a in self.deps)
            return self._as_chain(S.had(c, *[a for a in g.args if a is not inner]), inner)
        if isinstance(g, N.ElemDiv) and g.args[1] not in self.deps:
            return self._as_chain(S.ediv(c, g.args[1]), g.args[0])
        if g.shape == ():
            return S.mul(g, c)
        if isinstance(g, N.Add):  # built as is: the simplifier would factor c back out
            terms = [S.had(c, t) for t in g.args if t in self.deps]
            return terms[0] if len(terms) == 1 else N.Add(*terms)
        if isinstance(g, N.Neg):
            return S.neg(S.had(c, g.args[0]))
        if isinstance(g, N.Div):
            return S.div(S.had(c, g.args[0]), g.args[1])
        if isinstance(g, N.Transpose):
            pushed = _push_transpose(g.args[0])
            return None if pushed is None else S.had(c, pushed)
        if isinstance(g, N.DiagMat):
            return S.diagmat(S.had(S.diagvec(c), g.args[0]))
        if isinstance(g, N.MatMul):
            scalars = [h for h in g.args if h.shape == ()]
            chain = [h for h in g.args if h.shape != ()]
            i = next((k for k, h in enumerate(chain) if h in self.deps), None)
            if i is None:
                return S.mul(*scalars, S.had(c, S.mul(*chain)))
            if len(chain) == 1:  # C ⊙ (s G) = s (C ⊙ G)
                inner = self._as_chain(c, chain[0])
                return None if inner is None else S.mul(*scalars, inner)
            if isinstance(chain[i], N.DiagMat) and all(_is_diagonal(h) for h in chain if h is not chain[i]):
                # C ⊙ (D₁ diag(p) D₂) = diag(diag(C) ⊙ diag(D₁) ⊙ diag(D₂) ⊙ p) for diagonal D₁, D₂
                diagonals = [S.diagvec(h) for h in chain if h is not chain[i]]
                return S.mul(*scalars, S.diagmat(S.had(S.diagvec(c), *diagonals, chain[i].args[0])))
            if is_column(chain[i].shape) or is_row(chain[i].shape):
                cut = i + 1 if is_column(chain[i].shape) else i
                col, row = S.mul(*chain[:cut]), S.mul(*chain[cut:])
                if is_column(col.shape) and is_row(row.shape):
                    return S.mul(*scalars, S.diagmat(col), c, S.diagmat(S.transpose(row)))
        return None

    def _weights_around(self, left, f, right, v, w, tr):
        """``(W ⊙ L F R) v`` for weights that factor: a diagonal ``W`` reads ``diag(L F R)``, which is
        ``(F ⊙ Rᵀ) 𝟙`` or ``(Lᵀ ⊙ F)ᵀ 𝟙``; a rank-one ``W = a bᵀ`` gives ``a ⊙ (L F R (b ⊙ v))``; an absent
        ``L`` gives ``(F ⊙ W diag(v) Rᵀ) 𝟙``, an absent ``R`` the transposed counterpart."""
        m = S.mul(left, f, right)
        d = _diagonal_of(w)
        if d is not None:
            scale = S.diagmat(S.had(d, v))
            if _is_identity(left):
                return S.mul(scale, self.apply(f, N.Ones((f.shape[1], 1)), S.transpose(right)))
            if _is_identity(right):
                return S.mul(scale, self.apply(f, N.Ones((f.shape[0], 1)), S.transpose(left), True))
        outer = _as_outer(w)
        if outer is not None:
            a, b = outer if not tr else outer[::-1]
            return S.mul(S.diagmat(a), self.apply(m, S.had(b, v), None, tr))
        if _is_identity(left) and not tr:
            return self.apply(f, N.Ones((f.shape[1], 1)), S.mul(w, S.diagmat(v), S.transpose(right)))
        if _is_identity(right) and tr:
            return self.apply(f, N.Ones((f.shape[0], 1)), S.mul(S.transpose(left), S.diagmat(v), w), True)
        raise not_found(S.had(w, m))

    def c_MatrixLit(self, m, v, w, tr):
        rows, cols = len(m.rows), len(m.rows[0])
        parts = []
        for i, row in enumerate(m.rows):
            for j, e in enumerate(row):
                if e in self.deps:
                    out, inner = (j, i) if tr else (i, j)
                    weight = S.mul(entry(w, i, rows, j, cols), entry(v, inner, cols if not tr else rows)) \
                        if w is not None else entry(v, inner, cols if not tr else rows)
                    parts.append(S.mul(unit(cols if tr else rows, out), weight, self.jac(e)))
        return S.add(*parts)

    def reduce(self, n: Node) -> Node:
        """The Jacobian of a vector or scalar node ``n`` that consumes a dependent matrix."""
        if isinstance(n, N.MatMul):
            return self._product(n)
        m = n.args[0]
        if isinstance(n, N.DiagVec):  # diag(M) = (I ⊙ M) 𝟙
            return self.apply(m, N.Ones((m.shape[1], 1)), N.Identity(m.shape[0]))
        if isinstance(n, N.Trace):
            return S.mul(N.Ones((1, m.shape[0])), self.apply(m, N.Ones((m.shape[1], 1)), N.Identity(m.shape[0])))
        if isinstance(n, N.Sum | N.Mean):  # sum(M) = 𝟙ᵀ (M 𝟙)
            total = S.mul(N.Ones((1, m.shape[0])), self.apply(m, N.Ones((m.shape[1], 1))))
            return total if isinstance(n, N.Sum) else S.div(total, S.numel(m))
        raise not_found(n)

    def _product(self, n: N.MatMul) -> Node:
        """``L F R`` with a dependent matrix ``F``, a column, row or scalar: ``L (F R)`` or ``(Rᵀ Fᵀ Lᵀ)ᵀ``."""
        i = next(k for k, f in enumerate(n.args) if f in self.deps)
        f = n.args[i]
        left, right = S.mul(*n.args[:i]), S.mul(*n.args[i + 1:])
        if is_column(right.shape):
            return S.mul(left, self.apply(f, right))
        if is_row(left.shape):
            return S.mul(S.transpose(right), self.apply(f, S.transpose(left), None, True))
        raise not_found(n)


def _is_diagonal(n: Node) -> bool:
    """A matrix known to be diagonal: ``I``, ``diag(v)``, and sums, products and inverses of those."""
    if isinstance(n, N.Identity | N.DiagMat):
        return True
    if isinstance(n, N.Add | N.MatMul | N.Inv | N.Neg):
        return all(f.shape == () or _is_diagonal(f) for f in n.args)
    return False


def _diagonal_of(w: Node) -> Node | None:
    """``d`` when the weight matrix is ``diag(d)`` (``I``, ``diag(d)``, or ``I ⊙ C``), else None."""
    if isinstance(w, N.Identity):
        return N.Ones((w.shape[0], 1))
    if isinstance(w, N.DiagMat):
        return w.args[0]
    if isinstance(w, N.Hadamard) and any(isinstance(f, N.Identity | N.DiagMat) for f in w.args):
        return S.had(*[_diagonal_of(f) or S.diagvec(f) for f in w.args])
    return None


def _as_outer(w: Node) -> tuple[Node, Node] | None:
    """``(a, b)`` when the weight matrix is the outer product ``a bᵀ`` (``𝟙`` included), else None."""
    if isinstance(w, N.Ones):
        return N.Ones((w.shape[0], 1)), N.Ones((w.shape[1], 1))
    if isinstance(w, N.MatMul):
        chain = [f for f in w.args if f.shape != ()]
        for cut in range(1, len(chain)):
            col, row = S.mul(*chain[:cut]), S.mul(*chain[cut:])
            if is_column(col.shape) and is_row(row.shape):
                scalars = [f for f in w.args if f.shape == ()]
                return S.mul(*scalars, col), S.transpose(row)
    return None


def out_length(m: Node, tr: bool):
    return m.shape[1] if tr else m.shape[0]


def constant(m: Node, v: Node, w: Node | None, tr: bool) -> Node:
    """``(W ⊙ M) v`` (or transposed) for a constant ``M``."""
    weighted = _weighted(w, m)
    return S.mul(S.transpose(weighted) if tr else weighted, v)


def unit(size: int, i: int) -> Node:
    """The ``i``-th unit vector of length ``size`` as a vector literal."""
    return N.VectorLit(*[S.ONE if k == i else S.ZERO for k in range(size)])


def entry(c: Node, i: int, rows: int, j: int = 0, cols: int = 1) -> Node:
    """Entry ``(i, j)`` of the cotangent ``c`` of a literal: read off a literal or a constant fill,
    else ``eᵢᵀ c eⱼ`` with unit vectors."""
    if isinstance(c, N.VectorLit) and cols == 1:
        return c.args[i]
    if isinstance(c, N.MatrixLit):
        return c.rows[i][j]
    if isinstance(c, N.Ones):
        return S.ONE
    if isinstance(c, N.Fill):
        return c.value
    if c.shape == ():
        return c
    row = S.transpose(unit(rows, i)) if rows > 1 else S.ONE
    return S.mul(row, c, unit(cols, j)) if cols > 1 else S.mul(row, c)


def _push_transpose(g: Node) -> Node | None:
    """``gᵀ`` with the transpose moved inside ``g`` (onto its terms or factors), or None."""
    if isinstance(g, N.Add):
        return S.add(*[S.transpose(t) for t in g.args])
    if isinstance(g, N.Hadamard):
        return S.had(*[S.transpose(t) for t in g.args])
    if isinstance(g, N.ElemDiv):
        return S.ediv(*[S.transpose(t) for t in g.args])
    if isinstance(g, N.MatMul | N.Neg | N.Div | N.Transpose | N.DiagMat):
        return S.transpose(g)
    return None


def unvec(v: Node, rows, cols) -> Node | None:
    """The ``rows x cols`` matrix ``V`` with ``vec(V) = v`` (columns stacked), for the vectors whose
    reshaping has a closed form: ``𝟙``, ``kron(a, b) = vec(b aᵀ)``, and sums, multiples and element-wise
    functions of those; None otherwise."""
    if isinstance(v, N.Ones):
        return N.Ones((rows, cols))
    if isinstance(v, N.Zeros):
        return N.Zeros((rows, cols))
    if isinstance(v, N.Fill):
        return N.Fill(v.value, (rows, cols))
    if isinstance(v, N.Kron) and is_column(v.args[0].shape) and is_column(v.args[1].shape):
        a, b = v.args
        if a.shape[0] == cols and b.shape[0] == rows:
            return S.mul(b, S.transpose(a))
        return None
    parts = [unvec(c, rows, cols) if c.shape == v.shape else c for c in v.children]
    if any(p is None for p in parts):
        return None
    if isinstance(v, N.Add):
        return S.add(*parts)
    if isinstance(v, N.Neg):
        return S.neg(parts[0])
    if isinstance(v, N.Div):
        return S.div(*parts)
    if isinstance(v, N.Hadamard):
        return S.had(*parts)
    if isinstance(v, N.ElemDiv):
        return S.ediv(*parts)
    if isinstance(v, N.Apply):
        return N.Apply(v.function, parts[0])
    if isinstance(v, N.MatMul) and sum(c.shape != () for c in v.args) == 1:
        return S.mul(*parts)
    return None


def kron_blocks(c: Node, shape_a, shape_b) -> list[tuple[Node, Node]] | None:
    """``c = Σ kron(P, Q)`` with ``P`` of ``shape_a`` and ``Q`` of ``shape_b``, as ``[(P, Q), ...]``, for the
    matrices whose block structure has a closed form (``kron``, ``I``, ``𝟙``, sums, multiples, products and
    element-wise products of those); None otherwise."""
    if isinstance(c, N.Kron) and c.args[0].shape == shape_a and c.args[1].shape == shape_b:
        return [tuple(c.args)]
    if isinstance(c, N.Identity) and shape_a[0] == shape_a[1] and shape_b[0] == shape_b[1]:
        return [(N.Identity(shape_a[0]), N.Identity(shape_b[0]))]
    if isinstance(c, N.Ones):
        return [(N.Ones(shape_a), N.Ones(shape_b))]
    if isinstance(c, N.Zeros):
        return []
    return _kron_blocks_compound(c, shape_a, shape_b)


def _kron_blocks_compound(c: Node, shape_a, shape_b):
    if isinstance(c, N.Transpose):
        inner = kron_blocks(c.args[0], shape_a[::-1], shape_b[::-1])
        return None if inner is None else [(S.transpose(p), S.transpose(q)) for p, q in inner]
    if isinstance(c, N.Add):
        out = []
        for t in c.args:
            blocks = kron_blocks(t, shape_a, shape_b) if t.shape == c.shape else None
            if blocks is None:
                return None
            out.extend(blocks)
        return out
    if isinstance(c, N.Neg | N.Div):
        inner = kron_blocks(c.args[0], shape_a, shape_b)
        if inner is None:
            return None
        return [(S.neg(p) if isinstance(c, N.Neg) else S.div(p, c.args[1]), q) for p, q in inner]
    if isinstance(c, N.MatMul) and sum(f.shape != () for f in c.args) == 1:
        scalars = [f for f in c.args if f.shape == ()]
        inner = kron_blocks(next(f for f in c.args if f.shape != ()), shape_a, shape_b)
        return None if inner is None else [(S.mul(*scalars, p), q) for p, q in inner]
    if isinstance(c, N.MatMul) and sum(f.shape != () for f in c.args) > 1:
        return _kron_blocks_product(c, shape_a, shape_b)
    if isinstance(c, N.Inv):  # (P ⊗ Q)⁻¹ = P⁻¹ ⊗ Q⁻¹ for one square block
        inner = kron_blocks(c.args[0], shape_a, shape_b)
        if inner is None or len(inner) != 1 or shape_a[0] != shape_a[1] or shape_b[0] != shape_b[1]:
            return None
        return [(S.inv(inner[0][0]), S.inv(inner[0][1]))]
    if isinstance(c, N.Power) and isinstance(c.args[1], N.Number) and c.args[1].value.denominator == 1 \
            and 1 <= c.args[1].value <= 8:  # (P ⊗ Q)ᵏ = Pᵏ ⊗ Qᵏ
        base = kron_blocks(c.args[0], shape_a, shape_b)
        if base is None:
            return None
        out = base
        for _ in range(int(c.args[1].value) - 1):
            out = [(S.mul(p1, p2), S.mul(q1, q2)) for p1, q1 in out for p2, q2 in base]
        return out
    if isinstance(c, N.Hadamard) and all(f.shape == c.shape for f in c.args):
        out = [(N.Ones(shape_a), N.Ones(shape_b))]
        for f in c.args:
            blocks = kron_blocks(f, shape_a, shape_b)
            if blocks is None:
                return None
            out = [(S.had(p1, p2), S.had(q1, q2)) for p1, q1 in out for p2, q2 in blocks]
        return out
    return None


def _kron_split(f: Node, side: int):
    """How the rows (``side`` 0) or columns (1) of ``f`` split into a Kronecker pair, read off a
    Kronecker product (or its transpose), else None."""
    if isinstance(f, N.Kron):
        return f.args[0].shape[side], f.args[1].shape[side]
    if isinstance(f, N.Transpose) and isinstance(f.args[0], N.Kron):
        k = f.args[0]
        return k.args[0].shape[1 - side], k.args[1].shape[1 - side]
    return None


def _kron_blocks_product(c: N.MatMul, shape_a, shape_b):
    """The mixed-product rule ``(P ⊗ Q)(R ⊗ S) = (P R) ⊗ (Q S)``, summed over the blocks of each factor:
    the inner sizes are read off a neighbouring Kronecker product (``𝟙 kron(y, z)ᵀ``)."""
    scalars = [f for f in c.args if f.shape == ()]
    chain = [f for f in c.args if f.shape != ()]
    out = [(N.Number(1), N.Number(1))]
    rows = (shape_a[0], shape_b[0])
    for i, f in enumerate(chain):
        if i == len(chain) - 1:
            cols = (shape_a[1], shape_b[1])
        else:
            cols = _kron_split(f, 1) or _kron_split(chain[i + 1], 0)
        if cols is None:
            return None
        blocks = kron_blocks(f, (rows[0], cols[0]), (rows[1], cols[1]))
        if blocks is None:
            return None
        out = [(S.mul(p1, p2), S.mul(q1, q2)) for p1, q1 in out for p2, q2 in blocks]
        rows = cols
    return [(S.mul(*scalars, p), q) for p, q in out]
