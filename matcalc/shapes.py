"""Shapes and symbolic dimensions.

A shape is a tuple: ``()`` for a scalar, ``(n, 1)`` for a column vector, ``(1, n)`` for a row vector and
``(m, n)`` for a matrix. Each entry is an ``int`` or a :class:`Dim`, a symbolic dimension whose ``str()``
is its name. Dimensions compare by name, so two parses of the same text give equal shapes.
"""

from __future__ import annotations

from collections.abc import Mapping


class Dim:
    """A symbolic dimension such as ``n``; compares and hashes by name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)

    def __setattr__(self, key, value):  # pragma: no cover - immutability guard
        raise AttributeError("Dim is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dim) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Dim", self.name))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Dim({self.name!r})"


class DimProduct:
    """The product of dimensions, for the shape of a Kronecker product (``m*p``)."""

    __slots__ = ("factors",)

    def __init__(self, factors: tuple):
        object.__setattr__(self, "factors", tuple(factors))

    def __setattr__(self, key, value):  # pragma: no cover - immutability guard
        raise AttributeError("DimProduct is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DimProduct) and other.factors == self.factors

    def __hash__(self) -> int:
        return hash(("DimProduct", self.factors))

    def __str__(self) -> str:
        return "*".join(str(f) for f in self.factors)

    __repr__ = __str__


DimLike = int | Dim | DimProduct
Shape = tuple


def dim_product(a: DimLike, b: DimLike) -> DimLike:
    """``a * b`` as a dimension, folding integers."""
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    factors: list = []
    for d in (a, b):
        factors.extend(d.factors if isinstance(d, DimProduct) else (d,))
    ints = [f for f in factors if isinstance(f, int)]
    syms = [f for f in factors if not isinstance(f, int)]
    coeff = 1
    for i in ints:
        coeff *= i
    return DimProduct(tuple(([coeff] if coeff != 1 else []) + syms))


def is_scalar(shape: Shape) -> bool:
    return shape == ()


def is_column(shape: Shape) -> bool:
    """A column vector ``(n, 1)`` (a 1x1 shape is never produced: it is the scalar ``()``)."""
    return len(shape) == 2 and shape[1] == 1 and shape[0] != 1


def is_row(shape: Shape) -> bool:
    return len(shape) == 2 and shape[0] == 1 and shape[1] != 1


def is_vector(shape: Shape) -> bool:
    return is_column(shape) or is_row(shape)


def is_matrix(shape: Shape) -> bool:
    return len(shape) == 2 and not is_vector(shape)


def is_square(shape: Shape) -> bool:
    return len(shape) == 2 and shape[0] == shape[1]


def vector_length(shape: Shape) -> DimLike:
    """The length of a row or column vector."""
    return shape[0] if is_column(shape) else shape[1]


def transpose_shape(shape: Shape) -> Shape:
    return shape if len(shape) < 2 else (shape[1], shape[0])


def describe(shape: Shape) -> str:
    """A shape in words, for error messages: ``scalar``, ``vector(n)``, ``row vector(n)``, ``matrix(m, n)``."""
    if is_scalar(shape):
        return "scalar"
    if is_column(shape):
        return f"vector({shape[0]})"
    if is_row(shape):
        return f"row vector(1, {shape[1]})"
    return f"matrix({shape[0]}, {shape[1]})"


def concrete(shape: Shape, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape with every symbolic dimension replaced by its size in ``sizes`` (a name -> int map)."""

    def size(d: DimLike) -> int:
        if isinstance(d, int):
            return d
        if isinstance(d, DimProduct):
            out = 1
            for f in d.factors:
                out *= size(f)
            return out
        if d.name not in sizes:
            raise KeyError(d.name)
        return int(sizes[d.name])

    return tuple(size(d) for d in shape)


def dims_of(shape: Shape) -> list[Dim]:
    """The symbolic dimensions that occur in a shape, in order."""
    out: list[Dim] = []
    for d in shape:
        for f in d.factors if isinstance(d, DimProduct) else (d,):
            if isinstance(f, Dim) and f not in out:
                out.append(f)
    return out
