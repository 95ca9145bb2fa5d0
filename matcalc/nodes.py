"""The typed AST: immutable, hash-consed expression nodes.

Every node is built through its class (``Add(a, b)``, ``MatMul(A, x)``), which checks the operands' shapes
and computes ``node.shape``. Nodes are *interned*: building the same node twice returns the same object.
That makes equality an identity test, lets every later stage memoise on nodes, and keeps shared
subexpressions shared, which is what stops derivatives of deep networks from swelling.

The nodes know nothing about parsing, printing or calculus; those stages live in their own modules and
dispatch on the node class (one method per node type, like SymPy's printers).
"""

from __future__ import annotations

import os
import threading
import weakref
from fractions import Fraction

from . import ops
from .budget import checkpoint
from .errors import ShapeError
from .shapes import (
    Dim,
    DimLike,
    Shape,
    describe,
    dim_product,
    is_square,
    transpose_shape,
)

#: The element-wise functions of the language, by canonical name (their records are in :mod:`matcalc.ops`).
ELEMENTWISE = tuple(ops.ELEMENTWISE)

_TABLE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
#: Guards the insertion into ``_TABLE``: without it two threads building the same node could each make
#: one, and identity (equality) would fail between them. Lookups of existing nodes take no lock.
_TABLE_LOCK = threading.RLock()


def _fresh_lock_in_child() -> None:
    """A forked child (``check()`` forks its worker) has one thread: a lock another thread of the parent
    held at the fork would never be released there, so the child starts with a new one."""
    global _TABLE_LOCK
    _TABLE_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


class Node:
    """Base class of all expression nodes.

    ``args`` holds what identifies the node (children and parameters); ``shape`` is computed once.
    """

    __slots__ = ("args", "shape", "__weakref__")

    def __new__(cls, *args):
        checkpoint()
        key = (cls, args)
        node = _TABLE.get(key)
        if node is not None:
            return node
        shape = cls._check(*args)  # outside the lock: it may raise, and it may build other nodes
        with _TABLE_LOCK:
            node = _TABLE.get(key)  # another thread may have built it meanwhile: that one is the node
            if node is None:
                node = object.__new__(cls)
                object.__setattr__(node, "args", args)
                object.__setattr__(node, "shape", shape)
                _TABLE[key] = node
        return node

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} nodes are immutable")

    def __reduce__(self):
        return (type(self), self.args)

    @staticmethod
    def _check(*args) -> Shape:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    # --- structure -------------------------------------------------------------------------------
    @property
    def children(self) -> tuple[Node, ...]:
        """The sub-expressions, in order."""
        return self.args

    def with_children(self, children) -> Node:
        """The same kind of node over new children (same order as :attr:`children`)."""
        return type(self)(*children)

    def __str__(self) -> str:
        return PRINTERS["text"](self, declarations=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    # --- rich display ----------------------------------------------------------------------------
    def _repr_latex_(self) -> str:
        return f"${PRINTERS['latex'](self)}$"

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()


#: The printers behind ``str(node)`` and the notebook display, ``"text"`` and ``"latex"``: set by
#: :mod:`matcalc.printing` when it loads (``import matcalc`` loads it). It imports this module, so this
#: module names them here instead of importing them: the import graph stays acyclic.
PRINTERS: dict = {}


def _fail(message: str):
    raise ShapeError(message)


def _same_or_broadcast(op: str, operands) -> Shape:
    """Element-wise operations: every non-scalar operand has one shape; scalars are expanded."""
    shape: Shape = ()
    for term in operands:
        if not isinstance(term, Node):
            raise TypeError(f"{op} expects nodes, got {term!r}")
        if term.shape == ():
            continue
        if shape == ():
            shape = term.shape
        elif term.shape != shape:
            _fail(f"{op}: shapes {describe(shape)} and {describe(term.shape)} differ")
    return shape


def _matmul_shape(factors) -> Shape:
    shape: Shape = ()
    for f in factors:
        if f.shape == ():
            continue
        if shape == ():
            shape = f.shape
            continue
        if shape[1] != f.shape[0]:
            _fail(f"matrix product: {describe(shape)} times {describe(f.shape)}")
        shape = (shape[0], f.shape[1])
    if shape == (1, 1):
        return ()
    return shape


# --- leaves -----------------------------------------------------------------------------------------
class Symbol(Node):
    """A named variable with a declared or inferred shape; ``symmetric`` marks a symmetric matrix."""

    __slots__ = ()

    def __new__(cls, name: str, shape: Shape, symmetric: bool = False):
        return super().__new__(cls, name, tuple(shape), bool(symmetric))

    @staticmethod
    def _check(name, shape, symmetric) -> Shape:
        if symmetric and not is_square(shape):
            _fail(f"symmetric matrix {name} must be square, not {describe(shape)}")
        return shape

    @property
    def name(self) -> str:
        return self.args[0]

    @property
    def symmetric(self) -> bool:
        return self.args[2]

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Differential(Node):
    """``dX``: the perturbation of a variable, the unknown a differential is linear in."""

    __slots__ = ()

    @staticmethod
    def _check(symbol) -> Shape:
        return symbol.shape

    @property
    def symbol(self) -> Symbol:
        return self.args[0]

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Number(Node):
    """An exact rational constant (decimals are kept exactly as fractions)."""

    __slots__ = ()

    def __new__(cls, value):
        return super().__new__(cls, Fraction(value))

    @staticmethod
    def _check(value) -> Shape:
        return ()

    @property
    def value(self) -> Fraction:
        return self.args[0]

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Pi(Node):
    """The number π (``pi``, ``π``): a scalar constant, like a Number, that no rational holds exactly."""

    __slots__ = ()

    @staticmethod
    def _check() -> Shape:
        return ()

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Identity(Node):
    """The identity matrix of size ``n`` (``I``, ``eye(n)``)."""

    __slots__ = ()

    @staticmethod
    def _check(n) -> Shape:
        return (n, n)

    @property
    def size(self) -> DimLike:
        return self.args[0]

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Commutation(Node):
    """The commutation matrix ``K(m, n)`` (mn x mn): ``K vec(A) = vec(Aᵀ)`` for an m x n matrix ``A``.

    Its rows are indexed like ``vec(Aᵀ)`` and its columns like ``vec(A)``, hence the shape
    ``(m*n, n*m)`` (the same size, written in the order a Kronecker product of the factors gives it)."""

    __slots__ = ()

    @staticmethod
    def _check(m, n) -> Shape:
        return (dim_product(m, n), dim_product(n, m))

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Ones(Node):
    """A vector or matrix of ones (``ones(n)``, the 𝟙 of the literature)."""

    __slots__ = ()

    def __new__(cls, shape: Shape):
        return super().__new__(cls, tuple(shape))

    @staticmethod
    def _check(shape) -> Shape:
        if len(shape) != 2:
            _fail("ones() needs a vector or matrix shape")
        return () if shape == (1, 1) else shape

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Zeros(Node):
    """A vector or matrix of zeros."""

    __slots__ = ()

    def __new__(cls, shape: Shape):
        return super().__new__(cls, tuple(shape))

    @staticmethod
    def _check(shape) -> Shape:
        if len(shape) != 2:
            _fail("zeros() needs a vector or matrix shape")
        return () if shape == (1, 1) else shape

    @property
    def children(self):
        return ()

    def with_children(self, children):
        return self


class Fill(Node):
    """A vector or matrix every entry of which is the scalar ``value`` (``vector(c)``, ``matrix(c)``)."""

    __slots__ = ()

    def __new__(cls, value: Node, shape: Shape):
        return super().__new__(cls, value, tuple(shape))

    @staticmethod
    def _check(value, shape) -> Shape:
        if value.shape != ():
            _fail(f"the fill value of vector()/matrix() must be a scalar, not {describe(value.shape)}")
        return shape

    @property
    def value(self) -> Node:
        return self.args[0]

    @property
    def children(self):
        return (self.args[0],)

    def with_children(self, children):
        return Fill(children[0], self.shape)


# --- arithmetic -------------------------------------------------------------------------------------
class Add(Node):
    """A sum of terms; scalar terms are expanded to the other terms' shape (scalar expansion)."""

    __slots__ = ()

    @staticmethod
    def _check(*terms) -> Shape:
        if len(terms) < 2:
            _fail("a sum needs two terms")
        return _same_or_broadcast("sum", terms)


class Neg(Node):
    __slots__ = ()

    @staticmethod
    def _check(x) -> Shape:
        return x.shape


class MatMul(Node):
    """A matrix product; scalar factors scale (``2 A x``, ``x' A x``). A 1x1 result is a scalar."""

    __slots__ = ()

    @staticmethod
    def _check(*factors) -> Shape:
        if len(factors) < 2:
            _fail("a product needs two factors")
        return _matmul_shape(factors)


class Div(Node):
    """``x / s``: division by a scalar."""

    __slots__ = ()

    @staticmethod
    def _check(x, s) -> Shape:
        if s.shape != ():
            _fail(f"the divisor of / must be a scalar, not {describe(s.shape)}; use ./ or inv()")
        return x.shape


class Hadamard(Node):
    """The element-wise (Hadamard) product ``a ⊙ b``, with scalar expansion."""

    __slots__ = ()

    @staticmethod
    def _check(*factors) -> Shape:
        if len(factors) < 2:
            _fail("an element-wise product needs two factors")
        return _same_or_broadcast("element-wise product", factors)


class ElemDiv(Node):
    """Element-wise division ``a ⊘ b``, with scalar expansion."""

    __slots__ = ()

    @staticmethod
    def _check(a, b) -> Shape:
        return _same_or_broadcast("element-wise division", (a, b))


class Call(Node):
    """A call of the language that is not element-wise (``det``, ``softmax``, ``kron`` ...).

    Everything matcalc knows about one, from its shape rule to its generated code, is its record in the
    operation catalogue (``matcalc.ops.BY_NODE``); the class only names the node."""

    __slots__ = ()

    @classmethod
    def _check(cls, *args) -> Shape:
        return ops.BY_NODE[cls.__name__].shape(*args)

    @property
    def record(self) -> ops.Function:
        """This node's record in the operation catalogue."""
        return ops.BY_NODE[type(self).__name__]


class Dot(Call):
    """The dot product ``a · b`` of two vectors of one length."""

    __slots__ = ()


class Power(Node):
    """``a ^ p``: a scalar power, or an integer power of a square matrix."""

    __slots__ = ()

    @staticmethod
    def _check(base, exponent) -> Shape:
        if exponent.shape != ():
            _fail(f"an exponent must be a scalar, not {describe(exponent.shape)}")
        if base.shape == ():
            return ()
        if not is_square(base.shape):
            _fail(f"^ needs a scalar or a square matrix, not {describe(base.shape)}; use .^ for element-wise")
        if not (isinstance(exponent, Number) and exponent.value.denominator == 1):
            _fail("a matrix power needs an integer exponent")
        return base.shape


class ElemPower(Node):
    """``a .^ p``: element-wise power by a scalar exponent."""

    __slots__ = ()

    @staticmethod
    def _check(base, exponent) -> Shape:
        if exponent.shape != ():
            _fail(f"an element-wise exponent must be a scalar, not {describe(exponent.shape)}")
        return base.shape


class Transpose(Node):
    __slots__ = ()

    @staticmethod
    def _check(x) -> Shape:
        return transpose_shape(x.shape)


# --- functions --------------------------------------------------------------------------------------
class Apply(Node):
    """An element-wise function (``exp``, ``tanh``, ``relu``, ``step`` ...) applied to every entry."""

    __slots__ = ()

    @staticmethod
    def _check(function, x) -> Shape:
        if function not in ELEMENTWISE:
            _fail(f"unknown element-wise function {function}")
        return x.shape

    @property
    def function(self) -> str:
        return self.args[0]

    @property
    def children(self):
        return (self.args[1],)

    def with_children(self, children):
        return Apply(self.args[0], children[0])


class Sum(Call):
    """``sum(e)``: the sum of all entries."""

    __slots__ = ()


class Mean(Call):
    """``mean(e)``: the mean of all entries."""

    __slots__ = ()


class Numel(Call):
    """``numel(e)``: the number of entries of ``e`` (a constant); used to print ``mean`` derivatives."""

    __slots__ = ()


class LogSumExp(Call):
    """``logsumexp(e) = log(sum(exp(e)))``."""

    __slots__ = ()


class Norm(Call):
    """``norm(e)`` (ord 2: Euclidean for a vector, Frobenius for a matrix) and ``norm1(e)`` (ord 1)."""

    __slots__ = ()

    @property
    def order(self) -> int:
        return self.args[1]

    @property
    def children(self):
        return (self.args[0],)

    def with_children(self, children):
        return Norm(children[0], self.args[1])


class Trace(Call):
    """``tr(A)``."""

    __slots__ = ()


class Det(Call):
    """``det(A)``."""

    __slots__ = ()


class LogDet(Call):
    """``logdet(A) = log(det(A))``."""

    __slots__ = ()


class Inv(Call):
    """``inv(A)``, printed ``A⁻¹``."""

    __slots__ = ()


class Softmax(Call):
    """``softmax(v) = exp(v) / sum(exp(v))`` of a column vector."""

    __slots__ = ()


class SoftmaxRows(Call):
    """``softmax(X)`` of a matrix: each row ``exp(x) / sum(exp(x))``, a distribution (as attention uses it)."""

    __slots__ = ()


class MaxRowsMask(Call):
    """The derivative weights of ``max(X, axis=1)``: ``1/t`` on the ``t`` entries of a row that tie for its
    largest value, 0 elsewhere (ties split evenly, as PyTorch's ``amax`` and JAX's ``max`` do). Piecewise
    constant: its own derivative is 0, like ``step``."""

    __slots__ = ()


class LogSumExpRows(Call):
    """``logsumexp(X, axis=1)``: ``log(sum(exp(x)))`` of each row, the row-wise log-normaliser."""

    __slots__ = ()


class MaxRows(Call):
    """``max(X, axis=1)``: the largest entry of each row."""

    __slots__ = ()


class DiagMat(Call):
    """``diag(v)``: the diagonal matrix with the column vector ``v`` on its diagonal."""

    __slots__ = ()


class DiagVec(Call):
    """``diag(A)``: the diagonal of a square matrix, as a column vector."""

    __slots__ = ()


class Kron(Call):
    """The Kronecker product ``kron(A, B)``."""

    __slots__ = ()


class VectorLit(Node):
    """``[e1, e2, ...]``: a column vector of scalar expressions."""

    __slots__ = ()

    @staticmethod
    def _check(*entries) -> Shape:
        if not entries:
            _fail("an empty vector literal")
        for e in entries:
            if e.shape != ():
                _fail(f"the entries of a vector literal must be scalars, not {describe(e.shape)}")
        return () if len(entries) == 1 else (len(entries), 1)


class MatrixLit(Node):
    """``[a, b; c, d]``: a matrix of scalar expressions, stored as a tuple of rows."""

    __slots__ = ()

    def __new__(cls, rows):
        return super().__new__(cls, tuple(tuple(r) for r in rows))

    @staticmethod
    def _check(rows) -> Shape:
        if not rows or not rows[0]:
            _fail("an empty matrix literal")
        width = len(rows[0])
        for r in rows:
            if len(r) != width:
                _fail(f"the rows of a matrix literal have {width} and {len(r)} entries")
            for e in r:
                if e.shape != ():
                    _fail(f"the entries of a matrix literal must be scalars, not {describe(e.shape)}")
        shape = (len(rows), width)
        return () if shape == (1, 1) else shape

    @property
    def rows(self):
        return self.args[0]

    @property
    def children(self):
        return tuple(e for r in self.args[0] for e in r)

    def with_children(self, children):
        it = iter(children)
        return MatrixLit(tuple(tuple(next(it) for _ in r) for r in self.args[0]))


# --- helpers ----------------------------------------------------------------------------------------
def walk(root: Node):
    """Every node of the DAG once, parents before children, left to right (iterative: safe on deep trees)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        checkpoint()
        yield n
        stack.extend(reversed(n.children))


def symbols_of(node: Node) -> list[Symbol]:
    """The symbols in an expression, in order of first appearance."""
    return [n for n in walk(node) if isinstance(n, Symbol)]


def dims_in(node: Node) -> list[Dim]:
    """The symbolic dimensions used anywhere in an expression, in order of first appearance."""
    from .shapes import dims_of

    out: dict[Dim, None] = {}
    for n in walk(node):
        out.update(dict.fromkeys(dims_of(n.shape)))
        if isinstance(n, Identity):
            out.update(dict.fromkeys(dims_of((n.size,))))
    return list(out)


def count_nodes(node: Node) -> int:
    """The size of an expression, counting shared subexpressions once."""
    return sum(1 for _ in walk(node))
