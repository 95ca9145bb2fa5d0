"""Vectors repeated over a matrix (``v 𝟙ᵀ``, ``𝟙 w``) and the factors of element-wise products: the shapes
the code-generation rewrites (:mod:`.rewrite`, :mod:`.products`), the temporaries' plan and the printers
recognise alike."""

from __future__ import annotations

from .. import nodes as N
from ..nodes import Node
from ..shapes import is_column, is_row


def product_shape(factors: list[Node]):
    """The shape of the matrix product of ``factors`` (scalars scale), without building more than it."""
    nonscalar = [f for f in factors if f.shape != ()]
    if not nonscalar:
        return ()
    return N.MatMul(*factors).shape if len(factors) > 1 else factors[0].shape


def product(factors: list[Node]) -> Node:
    """The matrix product of one or more factors (one factor is itself: MatMul needs two)."""
    return factors[0] if len(factors) == 1 else N.MatMul(*factors)


def is_ones(n: Node) -> bool:
    """``𝟙`` or ``𝟙ᵀ``: the vectors whose products are sums along an axis or repetitions."""
    return isinstance(n, N.Ones) or (isinstance(n, N.Transpose) and isinstance(n.args[0], N.Ones))


def broadcast_parts(b: Node) -> tuple[Node, Node, bool] | None:
    """``(v, 𝟙ᵀ, True)`` for ``v 𝟙ᵀ`` and ``(v, 𝟙, False)`` for ``𝟙 v`` (a vector repeated over a matrix)."""
    if not (isinstance(b, N.MatMul) and len(b.shape) == 2):
        return None
    if len(b.args) > 2:  # X 𝟙 𝟙ᵀ: the row sums, repeated
        if is_ones(b.args[-1]) and is_column(product_shape(list(b.args[:-1]))):
            return product(list(b.args[:-1])), b.args[-1], True
        if is_ones(b.args[0]) and is_row(product_shape(list(b.args[1:]))):
            return product(list(b.args[1:])), b.args[0], False
        return None
    u, w = b.args
    if not (is_column(u.shape) and is_row(w.shape)):  # an outer product; X 𝟙 (a row sum) is not one
        return None
    if is_ones(w) and not is_ones(u):
        return u, w, True
    if is_ones(u) and not is_ones(w):
        return w, u, False
    return None


def rebroadcast(v: Node, ones: Node, left: bool) -> Node:
    """The inverse of :func:`broadcast_parts`: ``v`` repeated over the matrix again."""
    return N.MatMul(v, ones) if left else N.MatMul(ones, v)


def hadamard_factors(n: Node) -> list[Node]:
    """The factors of a nested element-wise product, opened: ``(a ⊙ b) ⊙ c`` is ``[a, b, c]``."""
    out: list[Node] = []
    stack = [n]
    while stack:
        f = stack.pop()
        if isinstance(f, N.Hadamard):
            stack.extend(reversed(f.args))
        else:
            out.append(f)
    return out
