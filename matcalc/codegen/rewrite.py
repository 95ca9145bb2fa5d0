"""Rewrites that make an expression cheaper to *evaluate* than its textbook form.

The simplifier prints ``(A + Aᵀ) x``, which reads well, but evaluating it builds the n x n matrix
``A + Aᵀ`` (O(n²) memory traffic, and under JAX a transposed copy); ``A x + Aᵀ x`` needs only two
matrix-vector products. Likewise ``2 u vᵀ`` should scale the vector, not the outer product. These
rewrites apply only to the generated code; what matcalc prints is untouched.
"""

from __future__ import annotations

from .. import nodes as N
from ..nodes import Node
from ..shapes import is_column, is_row


def _product_shape(factors: list[Node]):
    nonscalar = [f for f in factors if f.shape != ()]
    if not nonscalar:
        return ()
    return N.MatMul(*factors).shape if len(factors) > 1 else factors[0].shape


def _distribute(n: N.MatMul) -> Node | None:
    """``M (A + B) v -> M A v + M B v`` when the sum is a matrix multiplied into a vector."""
    args = list(n.args)
    for i, f in enumerate(args):
        if not (isinstance(f, N.Add) and len(f.shape) == 2 and not is_column(f.shape) and not is_row(f.shape)):
            continue
        if any(t.shape == () for t in f.args):
            continue  # a broadcast scalar term: not a plain matrix sum
        right, left = args[i + 1:], args[:i]
        if (right and is_column(_product_shape(right))) or (left and is_row(_product_shape(left))):
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
        return n.function in ("exp", "sigmoid", "relu", "softplus", "sqrt", "abs", "step")
    if isinstance(n, N.Softmax | N.Ones):
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


def _gram(n: N.MatMul) -> Node | None:
    """``Aᵀ diag(w) A -> Bᵀ B`` with ``B = diag(sqrt(w)) A`` when ``w >= 0``: NumPy computes ``t.T @ t`` with
    a symmetric rank-k update, half the work of a general product (Hessians of logistic regression, sums
    of exponentials)."""
    args = list(n.args)
    for i in range(len(args) - 2):
        t, dg, a = args[i:i + 3]
        if isinstance(t, N.Transpose) and isinstance(dg, N.DiagMat) and t.args[0] is a and _nonnegative(dg.args[0]):
            root = N.MatMul(N.DiagMat(N.Apply("sqrt", dg.args[0])), a)
            rest = args[:i] + [N.Transpose(root), root] + args[i + 3:]
            return rest[0] if len(rest) == 1 else N.MatMul(*rest)
    return None


def for_evaluation(expr: Node) -> Node:
    """``expr`` rewritten for cheap evaluation (memoised over the shared DAG, so sharing survives)."""
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
                new = N.Add(*[for_evaluation(t) if isinstance(t, N.MatMul) and t is not new else t
                              for t in better.args])
            else:
                new = _gram(new) or _scale_vector(new) or new
        memo[node] = new
    return memo[expr]
