"""Rewrites that make an expression cheaper to *evaluate* than its textbook form.

The simplifier prints ``(A + Aᵀ) x``, which reads well, but evaluating it builds the n x n matrix
``A + Aᵀ`` (O(n²) memory traffic, and under JAX a transposed copy); ``A x + Aᵀ x`` needs only two
matrix-vector products. Likewise ``2 u vᵀ`` should scale the vector, not the outer product. These
rewrites apply only to the generated code; what matcalc prints is untouched.
"""

from __future__ import annotations

from fractions import Fraction
from math import prod

from .. import nodes as N
from .. import ops
from ..nodes import Node
from ..shapes import is_column, is_row
from .broadcast import broadcast_parts, hadamard_factors, is_ones, product, product_shape, rebroadcast


def _distribute(n: N.MatMul) -> Node | None:
    """``M (A + B) v -> M A v + M B v`` when the sum is a matrix multiplied into a vector."""
    args = list(n.args)
    for i, f in enumerate(args):
        if not (isinstance(f, N.Add) and len(f.shape) == 2 and not is_column(f.shape) and not is_row(f.shape)):
            continue
        if any(t.shape == () for t in f.args):
            continue  # a broadcast scalar term: not a plain matrix sum
        right, left = args[i + 1:], args[:i]
        if (right and is_column(product_shape(right))) or (left and is_row(product_shape(left))):
            return N.Add(*[N.MatMul(*left, t, *right) for t in f.args])
    return None


def _scale_vector(n: N.MatMul) -> Node | None:
    """``c u vᵀ -> (c u) vᵀ``: scalars multiply the vector of an outer product, not the matrix."""
    scalars = [f for f in n.args if f.shape == ()]
    rest = [f for f in n.args if f.shape != ()]
    if not scalars or len(rest) < 2 or not (len(n.shape) == 2 and not is_column(n.shape) and not is_row(n.shape)):
        return None
    for i, f in enumerate(rest):
        if is_column(f.shape) and i + 1 < len(rest) and is_row(rest[i + 1].shape):
            rest[i] = N.MatMul(*scalars, f)
            return N.MatMul(*rest)
    return None


def _nonnegative(n: Node) -> bool:
    """Entries that are provably >= 0 (exp, sigmoid, 1 - sigmoid, squares, products of such)."""
    if isinstance(n, N.Number):
        return n.value >= 0
    if isinstance(n, N.Apply):
        return ops.ELEMENTWISE[n.function].nonnegative
    if isinstance(n, N.Ones) or isinstance(n, N.Call) and n.record.nonnegative:  # softmax, maxmask
        return True
    if (isinstance(n, N.ElemPower) or isinstance(n, N.Power) and n.shape == ()) and isinstance(n.args[1], N.Number):
        p = n.args[1].value  # entry-wise powers only: an even power of a matrix can be negative
        return (p.denominator == 1 and p.numerator % 2 == 0) or _nonnegative(n.args[0])
    if isinstance(n, N.Hadamard | N.MatMul) and (isinstance(n, N.Hadamard) or n.shape == ()):
        return all(_nonnegative(a) for a in n.args)
    if isinstance(n, N.Add) and len(n.args) == 2:  # 1 - σ(u) >= 0
        a, b = n.args
        return (isinstance(a, N.Number) and a.value >= 1 and isinstance(b, N.Neg)
                and isinstance(b.args[0], N.Apply) and b.args[0].function == "sigmoid")
    return False


class WeightedGram(N.Node):
    """``Xᵀ diag(w) X`` (code generation only, NumPy target), computed with symmetric products.

    NumPy evaluates ``B.T @ B`` with a symmetric rank-k update, half the multiplications of a general
    product. With ``nonnegative`` weights, ``B = sqrt(w) ⊙ X`` (row-wise); with weights of either sign the
    rows are split, ``Xᵀ diag(w) X = Pᵀ P - Qᵀ Q`` with ``P`` the rows where ``w > 0`` scaled by ``sqrt(w)``
    and ``Q`` the others scaled by ``sqrt(-w)``. Small matrices use the general product ``Xᵀ (w ⊙ X)``,
    whose fixed cost is lower (the printer emits both, chosen by size at run time).
    """

    __slots__ = ()

    @staticmethod
    def _check(w, x, nonnegative):
        if not (is_column(w.shape) and len(x.shape) == 2 and w.shape[0] == x.shape[0]):
            raise TypeError(f"WeightedGram: weights {w.shape} do not fit rows of {x.shape}")
        return (x.shape[1], x.shape[1])

    @property
    def children(self) -> tuple[Node, ...]:
        return self.args[:2]

    def with_children(self, children) -> Node:
        return WeightedGram(*children, self.args[2])


def _transpose_of(f: Node) -> Node:
    if isinstance(f, N.Transpose):
        return f.args[0]
    if isinstance(f, N.DiagMat | N.Identity) or (isinstance(f, N.Symbol) and f.args[2]):
        return f  # symmetric
    return N.Transpose(f)


def _factors(node: Node, scalars: list[Node], factors: list[Node]) -> None:
    """Scalar and matrix factors of ``node``, products opened, negations as ``-1``, identities dropped and
    neighbouring diagonal matrices merged (``diag(a) diag(b) = diag(a ⊙ b)``)."""
    if node.shape == ():
        scalars.append(node)  # a scalar-valued product (``xᵀ x``) is one scalar, never opened into vectors
    elif isinstance(node, N.Neg):
        scalars.append(N.Number(-1))
        _factors(node.args[0], scalars, factors)
    elif isinstance(node, N.MatMul):
        for f in node.args:
            _factors(f, scalars, factors)
    elif isinstance(node, N.Transpose) and isinstance(node.args[0], N.MatMul):  # (W2 u)ᵀ = uᵀ W2ᵀ, so an
        for f in reversed(node.args[0].args):  # inner Gram product W1ᵀ (W2 u)ᵀ (W2 u) W1 is seen whole
            _factors(_transpose_of(f) if f.shape != () else f, scalars, factors)
    elif isinstance(node, N.Identity):
        pass
    elif factors and isinstance(node, N.DiagMat) and isinstance(factors[-1], N.DiagMat):
        factors[-1] = N.DiagMat(N.Hadamard(factors[-1].args[0], node.args[0]))
    else:
        factors.append(node)


def _gram_form(factors: list[Node], numpy: bool) -> Node | None:
    """``Xᵀ X`` or ``Xᵀ diag(w) X`` for a product that reads the same transposed (a palindrome:
    the i-th factor is the transpose of the i-th from the end), written so that NumPy computes it with
    symmetric rank-k updates; None when the product is not of that form."""
    k = len(factors)
    half = k // 2
    if half == 0 or any(factors[i] is not _transpose_of(factors[k - 1 - i]) for i in range(half)):
        return None
    if k % 2 == 0:
        root = product(factors[half:])
        return N.MatMul(N.Transpose(root), root)
    middle = factors[half]
    if not isinstance(middle, N.DiagMat):
        return None
    w, x = middle.args[0], product(factors[half + 1:])
    if numpy:
        return WeightedGram(w, x, _nonnegative(w))
    return N.MatMul(N.Transpose(x), middle, x)  # the general product, but x (shared) computed once


def _with_scalars(scalars: list[Node], node: Node) -> Node:
    """``c node`` with the numeric factors of ``c`` multiplied out (a negative one as ``Neg``)."""
    number = Fraction(1)
    rest = []
    for f in scalars:
        if isinstance(f, N.Number):
            number *= f.value
        else:
            rest.append(f)
    if number == 0:
        return N.Zeros(node.shape)
    if abs(number) != 1:
        rest.insert(0, N.Number(abs(number)))
    out = N.MatMul(*rest, node) if rest else node
    return N.Neg(out) if number < 0 else out


def _scaled_gram(scalars: list[Node], form: Node) -> Node:
    """``c Xᵀ diag(w) X`` as ``Xᵀ diag(c w) X`` when ``c`` is a number: n multiplications, not n²."""
    if isinstance(form, WeightedGram) and scalars and all(isinstance(f, N.Number) for f in scalars):
        c = N.Number(prod((f.value for f in scalars), start=Fraction(1)))
        w, x, nonnegative = form.args
        return WeightedGram(N.MatMul(c, w), x, nonnegative and c.value > 0)
    return _with_scalars(scalars, form)


def _sandwich(n: N.MatMul, numpy: bool) -> Node | None:
    """``c Lᵀ (P + Q) L``-type products whose every term, multiplied out, is a Gram form: distribute, so
    each term is a symmetric product (the Gauss-Newton term of a network's Hessian, ``(W2 S W1)ᵀ (W2 S W1)``,
    costs O(k n²) instead of the O(n³) of multiplying the whole sum into ``W1``)."""
    if len(n.shape) != 2 or n.shape[0] != n.shape[1] or is_column(n.shape):
        return None
    scalars: list[Node] = []
    factors: list[Node] = []
    _factors(n, scalars, factors)
    whole = _gram_form(factors, numpy)
    if whole is not None:
        return _scaled_gram(scalars, whole)
    for i, f in enumerate(factors):
        if not (isinstance(f, N.Add) and len(f.shape) == 2) or any(t.shape == () for t in f.args):
            continue
        terms = []
        for t in f.args:
            t_scalars: list[Node] = []
            t_factors: list[Node] = list(factors[:i])
            _factors(t, t_scalars, t_factors)
            for g in factors[i + 1:]:
                _factors(g, t_scalars, t_factors)
            form = _gram_form(t_factors, numpy)
            if form is None:
                break
            terms.append(_scaled_gram(scalars + t_scalars, form))
        else:
            return N.Add(*terms)
    return None


def _gram(n: N.MatMul) -> Node | None:
    """``Aᵀ diag(w) A`` inside a longer product, with ``w >= 0``: a :class:`WeightedGram` (NumPy)."""
    args = list(n.args)
    for i in range(len(args) - 2):
        t, dg, a = args[i:i + 3]
        if isinstance(t, N.Transpose) and isinstance(dg, N.DiagMat) and t.args[0] is a and _nonnegative(dg.args[0]):
            rest = args[:i] + [WeightedGram(dg.args[0], a, True)] + args[i + 3:]
            return rest[0] if len(rest) == 1 else N.MatMul(*rest)
    return None


def _reciprocal(n: N.ElemDiv) -> Node | None:
    """``A ⊘ (v 𝟙ᵀ) -> A ⊙ ((1 ⊘ v) 𝟙ᵀ)`` (and ``𝟙 vᵀ``): a row- or column-wise divisor (a norm's σ, a
    softmax's sum) divides once per row, not once per entry. Division costs several multiplications, and
    XLA and torch do not make the exchange themselves (it changes the last bit, within the rounding of the
    division itself); the reciprocal is one node, so all its divisions share it."""
    a, b = n.args
    if a.shape == b.shape and (is_column(b.shape) or is_row(b.shape)) and not _is_one(a):
        return N.Hadamard(a, _inverse(b))  # a vector divisor: its reciprocal is shared with the others
    parts = broadcast_parts(b)
    if parts is None or a.shape != b.shape:
        return None
    v, ones, left = parts
    return N.Hadamard(a, rebroadcast(_inverse(v), ones, left))


def _is_one(n: Node) -> bool:
    return isinstance(n, N.Number) and n.value == 1


def _inverse(v: Node) -> Node:
    """``1 ⊘ v``, and ``(1 ⊘ v).^p`` for ``1 ⊘ v.^p`` (p a positive integer): one reciprocal, whatever
    power of the divisor a term divides by (layer norm's gradient divides by σ and by σ²)."""
    if isinstance(v, N.ElemPower) and isinstance(v.args[1], N.Number):
        p = v.args[1].value
        if p.denominator == 1 and p > 0:
            return N.ElemPower(N.ElemDiv(N.Number(1), v.args[0]), v.args[1])
    return N.ElemDiv(N.Number(1), v)


def _through_broadcast(n: Node) -> Node | None:
    """``(v 𝟙ᵀ).^p -> (v.^p) 𝟙ᵀ`` and ``f(v 𝟙ᵀ) -> f(v) 𝟙ᵀ``: an element-wise function of a repeated vector is
    computed on the vector (m values, not m x n)."""
    if isinstance(n, N.ElemPower) and n.args[1].shape == ():
        parts = broadcast_parts(n.args[0])
        return parts and rebroadcast(N.ElemPower(parts[0], n.args[1]), parts[1], parts[2])
    if isinstance(n, N.Apply):
        parts = broadcast_parts(n.args[1])
        return parts and rebroadcast(n.with_children((parts[0],)), parts[1], parts[2])
    if isinstance(n, N.Div):  # (v 𝟙ᵀ) / c: divide the m entries of v, not the m x n of the matrix
        parts = broadcast_parts(n.args[0])
        return parts and rebroadcast(N.Div(parts[0], n.args[1]), parts[1], parts[2])
    return None


def _pull_out(h: Node, left: bool) -> tuple[list[Node], Node] | None:
    """The vectors repeated along the summed axis among the factors of ``h``, and the product of the
    others (None when there are none of either)."""
    vectors, rest = [], []
    for f in hadamard_factors(h):
        parts = broadcast_parts(f)
        if parts is not None and parts[2] == left:
            vectors.append(parts[0])
        else:
            rest.append(f)
    if not vectors or not any(len(f.shape) == 2 for f in rest):
        return None
    return vectors, rest[0] if len(rest) == 1 else N.Hadamard(*rest)


def _sum_out(n: N.MatMul) -> Node | None:
    """``(A ⊙ (v 𝟙ᵀ)) 𝟙 -> v ⊙ (A 𝟙)`` and ``𝟙ᵀ (A ⊙ (𝟙 w)) -> w ⊙ (𝟙ᵀ A)``: a factor that is constant
    along the summed axis multiplies the m sums, not the m x n entries (layer norm's 1/σ in its gradient's
    row sums). The sum then no longer waits for the factor, and XLA fuses it with its neighbours."""
    args = list(n.args)
    for i in range(len(args) - 1):
        h, o = args[i], args[i + 1]
        if isinstance(h, N.Hadamard) and isinstance(o, N.Ones) and is_column(o.shape) and _matrix(h):
            pulled = _pull_out(h, True)
            if pulled is not None:
                return product(args[:i] + [N.Hadamard(*pulled[0], N.MatMul(pulled[1], o))] + args[i + 2:])
        if isinstance(o, N.Hadamard) and is_ones(h) and is_row(h.shape) and _matrix(o):
            pulled = _pull_out(o, False)
            if pulled is not None:
                return product(args[:i] + [N.Hadamard(*pulled[0], N.MatMul(h, pulled[1]))] + args[i + 2:])
    return None


def _matrix(n: Node) -> bool:
    return len(n.shape) == 2 and not is_column(n.shape) and not is_row(n.shape)


def for_evaluation(expr: Node, numpy: bool = False) -> Node:
    """``expr`` rewritten for cheap evaluation (memoised over the shared DAG, so sharing survives).

    ``numpy`` allows :class:`WeightedGram` nodes: NumPy computes ``B.T @ B`` with a symmetric product and
    can select rows by a mask; XLA and torch compute every product as a general one (and under ``jax.jit``
    a shape may not depend on values), so there the plain product costs less.
    """
    memo: dict[Node, Node] = {}
    from .plan import topological

    for node in topological([expr]):
        kids = node.children
        new = node
        if kids and any(memo[k] is not k for k in kids):
            new = node.with_children(tuple(memo[k] for k in kids))
        if isinstance(new, N.MatMul):
            better = _distribute(new)
            if better is not None:
                new = N.Add(*[for_evaluation(t, numpy) if isinstance(t, N.MatMul) and t is not new else t
                              for t in better.args])
            else:
                new = (_sandwich(new, numpy) or (numpy and _gram(new)) or _scale_vector(new) or _sum_out(new)
                       or new)
        elif isinstance(new, N.ElemDiv):
            new = _reciprocal(new) or new
        elif isinstance(new, N.ElemPower | N.Apply | N.Div):
            new = _through_broadcast(new) or new
        memo[node] = new
    return memo[expr]
