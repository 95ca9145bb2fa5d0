"""What the type checker reads back from a node's text, decided from the node itself.

``str(node)`` must parse back to the node (``parse(str(e)) == e``), so :func:`~matcalc.printing.to_text`
with ``declarations=True`` adds a ``where`` clause when the bare text would be read otherwise: a name
against the letter convention, dimensions that inference would name differently or leave free. Deciding
that by parsing the printed text made ``str`` several times slower than printing and tied the
printers to the parser; :func:`reads_back` decides it from the node instead, by running the type
checker's inference (:mod:`matcalc.typecheck`) on the raw tree the text printer would write, read off the
node, with no text and no parser:

1. *kinds*: each name's first appearance, in the order the checker's walk meets it; the kinds usage forces
   (the divisor of ``/``, exponents, ``dot``, ``tr``, ``softmax``, literal entries ...), then the letter
   convention (:mod:`matcalc.conventions`), then the checker's "scalar algebra" rule;
2. *shapes*: the same unification of dimension variables, operator by operator, with the same broadcasting
   and the same refusals (a shape error, a literal zero divisor);
3. *naming*: the dimensions left free get ``n, m, k, ...`` in the checker's order;
4. the text reads back to the node exactly when every symbol, identity, ``ones``/``zeros`` and fill gets
   the node's own shape, and no construct is rebuilt otherwise (``1 / 3`` folds to a number, ``A^-1`` is
   ``inv(A)``, ``softmax`` of a row is the transposed column softmax ...).

Where the prediction is not exact (a stacked-rows literal, a variable or dimension named ``where``, an
identity or fill in a one-column literal, texts near the parser's limits) the answer is None and the
caller parses the texts as before; :data:`STATS` counts how often (0.02% of the nodes of the test tables).
The reading mirrors :mod:`matcalc.typecheck` rule for rule: a change to the checker's inference must be
made here too, and ``tests/test_readback.py`` (the old implementation as an oracle) fails until it is.
"""

from __future__ import annotations

from fractions import Fraction

from .. import nodes as N
from .. import ops
from ..budget import checkpoint
from ..conventions import CONSTANTS, DIM_NAMES, MATRIX, SCALAR, VECTOR, convention_kind, is_greek
from ..names import NAME, RESERVED_NAMES
from ..shapes import Dim
from ..unify import Unifier
from ..visit import find_method
from .base import HAD, stacked_rows
from .names import _post_order
from .text import AXIS_NODES, TextPrinter

__all__ = ["reads_back", "explicit_differs", "STATS"]

#: How often :func:`reads_back` decided (``decided``) and how often it left the text to the parser
#: (``unsure``); the figures of docs/design.md and bench/bench_str.py.
STATS = {"decided": 0, "unsure": 0}

_VECTOR_FORCING = {s for s, f in ops.ALIASES.items() if f in ops.FUNCTIONS and ops.FUNCTIONS[f].forces_vector}
_MATRIX_ARG = {s for s, f in ops.ALIASES.items() if f in ops.FUNCTIONS and ops.FUNCTIONS[f].matrix_arg}
_ELEMENTWISE = {s for s, f in ops.ALIASES.items() if f in ops.ELEMENTWISE}
_FUNCTIONS = set(ops.FUNCTION_NAMES)
#: The parser's limits (:mod:`matcalc.parser`): nesting depth and length; a node near them is left to it.
_MAX_DEPTH, _MAX_LENGTH = 2500 - 20, 1_000_000


class _Fail(Exception):
    """The text does not read back to the node (a shape error, a rewritten construct, other shapes)."""


class _Unsure(Exception):
    """The prediction is not exact for this node: the caller parses the text."""


class RawViews:
    """The raw tree the text printer writes for each node class, ``_view_<Class>(node, explicit)``:

    ``("name", name)``, ``("num", value)``, ``("pi",)``, ``(op, operands)`` for the operators
    (``add``, ``mul``, ``hadamard``, ``elemdiv``, ``div``, ``power``, ``elempower``, ``neg``, ``transpose``),
    ``("call", name, args, axis)``, ``("sized", name, dims)`` (``ones(m, n)``, ``eye(n)``) and
    ``("literal", rows)``. A node whose text does not read back whatever its shapes raises _Fail; one the
    prediction does not cover raises _Unsure."""

    def view(self, n: N.Node, explicit: bool):
        method = _VIEW_METHODS.get(type(n))
        if method is None:
            method = _VIEW_METHODS[type(n)] = find_method(self, "_view_", type(n))
            if method is None:
                raise _Unsure(type(n).__name__)
        return method(n, explicit)

    def _view_Symbol(self, n, explicit):
        name = n.name
        if name == "where":  # the keyword reads as a name where no where clause can start
            raise _Unsure(name)
        if not NAME.match(name) or name in RESERVED_NAMES or name in CONSTANTS or name in _FUNCTIONS:
            raise _Fail(f"{name} never reads as a variable")  # the identity, a constant, a function, an error
        return ("name", name)

    def _view_Differential(self, n, explicit):
        raise _Fail("dX reads as a variable named dX")

    def _view_Number(self, n, explicit):
        return ("num", n.value)

    def _view_Pi(self, n, explicit):
        return ("pi",)

    def _view_Identity(self, n, explicit):
        if n.size == 1:
            raise _Fail("a 1 x 1 identity reads as 1")
        if explicit and isinstance(n.size, int | Dim):
            return ("sized", "eye", (_dim_arg(n.size),))
        return ("name", "I")

    def _view_Commutation(self, n, explicit):
        raise _Fail("commutation(m, n) is not a call of the language")

    def _sized(self, n, explicit, name):
        r, c = n.args[0]
        if (r, c) == (1, 1) or (r == 1 and not explicit):
            raise _Fail("a row of ones reads as a transposed column")
        return ("sized", name, (_dim_arg(r),) if c == 1 else (_dim_arg(r), _dim_arg(c)))

    def _view_Ones(self, n, explicit):
        return self._sized(n, explicit, "ones")

    def _view_Zeros(self, n, explicit):
        return self._sized(n, explicit, "zeros")

    def _view_Fill(self, n, explicit):
        return ("call", "vector" if n.shape[1] == 1 else "matrix", (n.value,), None)

    def _view_Add(self, n, explicit):
        if stacked_rows(n) is not None:
            raise _Unsure("stacked rows")
        return ("add", n.args)

    def _view_Neg(self, n, explicit):
        return ("neg", n.args[0])

    def _view_MatMul(self, n, explicit):
        return ("mul", n.args)

    def _view_Hadamard(self, n, explicit):
        return ("hadamard", n.args)

    def _view_ElemDiv(self, n, explicit):
        return ("elemdiv", n.args)

    def _view_Div(self, n, explicit):
        if isinstance(n.args[0], N.Number) and isinstance(n.args[1], N.Number):
            raise _Fail("a quotient of numbers reads as a number")
        return ("div", n.args)

    def _view_Power(self, n, explicit):
        base, exponent = n.args
        if base.shape != () and isinstance(exponent, N.Number) and exponent.value == -1:
            raise _Fail("A^-1 reads as inv(A)")
        return ("power", n.args)

    def _view_ElemPower(self, n, explicit):
        return ("elempower", n.args)

    def _view_Transpose(self, n, explicit):
        x = n.args[0]
        if type(x) in AXIS_NODES and isinstance(x.args[0], N.Transpose) and 1 not in x.args[0].args[0].shape:
            return ("call", AXIS_NODES[type(x)], (x.args[0].args[0],), 0)  # softmax(X, axis=0)
        return ("transpose", x)

    def _view_Apply(self, n, explicit):
        return ("call", n.function, (n.args[1],), None)

    def _call(self, name, n):
        return ("call", name, (n.args[0],), None)

    def _view_Call(self, n, explicit):
        """A call as the text printer writes it by default, ``name(args)`` (its record's name)."""
        return ("call", n.record.name, n.children, None)

    def _view_Norm(self, n, explicit):
        return self._call("norm" if n.order == 2 else "norm1", n)

    def _view_Trace(self, n, explicit):
        if n.args[0].shape == ():
            raise _Fail("tr(s) of a scalar reads as s")
        return self._call("tr", n)

    def _view_SoftmaxRows(self, n, explicit):
        if 1 in n.shape:
            raise _Fail("softmax of a vector reads as the vector's softmax")
        return self._call("softmax", n)

    def _view_LogSumExpRows(self, n, explicit):
        if 1 in n.args[0].shape:
            raise _Fail("logsumexp(v, axis=1) of a vector reads as another node")
        return ("call", "logsumexp", (n.args[0],), 1)

    def _view_MaxRows(self, n, explicit):
        x = n.args[0]
        if n.shape == ():  # max(x) of a vector
            return self._call("max", x if isinstance(x, N.Transpose) and x.args[0].shape[1] == 1 else n)
        if x.shape[1] == 1:
            raise _Fail("max(v, axis=1) of a column reads as v")
        return ("call", "max", (x,), 1)

    def _view_MaxRowsMask(self, n, explicit):
        if n.shape[1] == 1:
            raise _Fail("maxmask(v, axis=1) of a column reads as ones")
        return ("call", "maxmask", (n.args[0],), 1)

    def _view_VectorLit(self, n, explicit):
        if len(n.args) == 1:
            raise _Fail("[e] reads as e")
        return ("literal", (n.args,))

    def _view_MatrixLit(self, n, explicit):
        rows = n.rows
        if len(rows) == 1:
            raise _Fail("a one-row literal reads as a column")
        return ("literal", rows)


def _close_to_a_function(name: str) -> bool:
    """The checker's test: a name difflib finds close to a function's (``EXP`` to ``exp``)."""
    from difflib import get_close_matches  # only here: not imported at start-up

    return bool(get_close_matches(name.lower(), sorted(_FUNCTIONS), n=1, cutoff=0.6))


def _dim_arg(d):
    """A size as ``ones``/``eye`` print it: an int, or a dimension name the parser reads as a name (any name
    token, even a function's, since no ``(`` follows it). Anything else (``ones(n*n)``) is refused by the
    checker (a size must be a number or a name) or read as another number."""
    if isinstance(d, int) and d >= 1:
        return d
    if isinstance(d, Dim) and d.name == "where":
        raise _Unsure("a dimension named where")
    if isinstance(d, Dim) and NAME.match(d.name):
        return d.name
    raise _Fail(f"the size {d} is not a number or a name")


_VIEWER = RawViews()
_VIEW_METHODS: dict[type, object] = {}
_AXIS_CALLS = {s for s, f in ops.ALIASES.items() if f in ops.FUNCTIONS and ops.FUNCTIONS[f].axis}
_OPERATORS = ("add", "mul", "hadamard", "elemdiv", "div", "power", "elempower")


class _Reading:
    """One reading of one text (the bare one, or with explicit sizes): the checker's four passes."""

    def __init__(self, explicit: bool):
        self.explicit = explicit
        self.views: dict[N.Node, tuple] = {}  # nodes hash by identity (they are hash-consed)
        self.u = Unifier()
        self.order: list[str] = []
        self.met: set[str] = set()
        self.forced: dict[str, str] = {}
        self.vector_forcing = False
        self.kinds: dict[str, str] = {}
        self.symbols: list[N.Symbol] = []
        self.symbol_shapes: dict[str, tuple] = {}
        self.leaves: list[tuple[N.Node, object]] = []  # identities and fills with their inferred shapes
        self.memo: dict[N.Node, tuple] = {}
        self.fresh_leaves = 0

    def view(self, n: N.Node) -> tuple:
        v = self.views.get(n)
        if v is None:
            v = self.views[n] = _VIEWER.view(n, self.explicit)
        return v

    # --- pass 1: kinds ---------------------------------------------------------------------------
    def meet(self, name: str) -> None:
        if name not in self.met and name not in CONSTANTS:
            self.met.add(name)
            self.order.append(name)

    def collect(self, root: N.Node) -> None:
        """The checker's walk (parents first, left to right; a literal's entries right to left), each
        node of the DAG once: a repeated subtree adds no name and forces nothing new."""
        stack, seen = [root], set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            checkpoint()
            v = self.view(n)
            kind = v[0]
            if kind == "name":
                self.meet(v[1])
                if isinstance(n, N.Symbol):
                    self.symbols.append(n)
            elif kind == "sized":
                self.vector_forcing = self.vector_forcing or v[1] in _VECTOR_FORCING
                for d in v[2]:
                    if isinstance(d, str):
                        self.meet(d)
            elif kind == "literal":
                for row in v[1]:
                    for e in row:
                        stack.append(e)
                        self.demand_scalar(e)
            elif kind == "call":
                stack.extend(reversed(v[2]))
                self.collect_call(v[1], v[2])
            elif kind not in ("num", "pi"):
                self.collect_operator(v, stack)
        self.decide_kinds()

    def collect_operator(self, v: tuple, stack: list) -> None:
        kind = v[0]
        operands = v[1] if kind in _OPERATORS else (v[1],)
        stack.extend(reversed(operands))
        if kind == "div":
            self.demand_scalar(operands[1])
        elif kind in ("power", "elempower"):
            self.demand_scalar(operands[1])
            if kind == "power":
                self.demand_scalar(operands[0], only_vector_convention=True)
        elif kind == "transpose":
            self.vector_forcing = True

    def collect_call(self, fname: str, args: tuple) -> None:
        if fname in _MATRIX_ARG and args:
            self.force_bare(args[0], MATRIX)
        if fname in ("dot", "outer"):
            for a in args:
                self.force_bare(a, VECTOR)
        if fname in ("softmax", "log_softmax") and args and not self.matrix_name(args[0]):
            self.force_bare(args[0], VECTOR)
        if fname in ("vector", "matrix") and args:
            self.demand_scalar(args[0])
        self.vector_forcing = self.vector_forcing or fname in _VECTOR_FORCING

    def force_bare(self, n: N.Node, kind: str) -> None:
        v = self.view(n)
        if v[0] == "name":
            self.forced.setdefault(v[1], kind)

    def matrix_name(self, n: N.Node) -> bool:
        v = self.view(n)
        return v[0] == "name" and v[1] != "I" and convention_kind(v[1]) == MATRIX and v[1] not in _FUNCTIONS

    def demand_scalar(self, n: N.Node, only_vector_convention: bool = False) -> None:
        """Names whose value must be a scalar here become scalars (the checker's ``demand_scalar``)."""
        stack, seen = [n], set()
        while stack:
            x = stack.pop()
            if id(x) in seen:
                continue
            seen.add(id(x))
            v = self.view(x)
            k = v[0]
            if k == "name":
                conv = convention_kind(v[1])
                if (conv == VECTOR or not only_vector_convention) and (conv != MATRIX or not only_vector_convention):
                    self.forced.setdefault(v[1], SCALAR)
            elif k in ("add", "elemdiv"):
                stack.extend(v[1])
            elif k in ("mul", "hadamard"):
                if not any(self.view(f)[0] == "transpose" or only_vector_convention and self.matrix_name(f)
                           for f in v[1]):
                    stack.extend(v[1])
            elif k in ("div", "power", "elempower"):
                stack.append(v[1][0])
            elif k == "neg":
                stack.append(v[1])
            elif k == "call" and (v[1] in _ELEMENTWISE and len(v[2]) == 1 or v[1] in ("max", "min")):
                stack.extend(v[2])

    def decide_kinds(self) -> None:
        """A forced kind, else the convention; then the checker's scalar-algebra rule."""
        for name in self.order:
            self.kinds[name] = self.forced.get(name) or convention_kind(name)
        if any(v == SCALAR and convention_kind(n) != SCALAR for n, v in self.forced.items()) \
                and not self.vector_forcing:
            if all(self.kinds[n] in (SCALAR, VECTOR) or n == "I" for n in self.order):
                for n in self.order:
                    if self.kinds[n] == VECTOR:
                        self.kinds[n] = SCALAR

    # --- pass 2: shapes --------------------------------------------------------------------------
    # A variable never becomes 1 (the unifier refuses it), so a size is 1 only where it is written 1: the
    # checker's ``find(d) == 1`` is ``d == 1`` here.
    @staticmethod
    def col_like(s) -> bool:
        return s != () and s[1] == 1 and s[0] != 1

    @staticmethod
    def row_like(s) -> bool:
        return s != () and s[0] == 1 and s[1] != 1

    def vec_like(self, s) -> bool:
        return self.col_like(s) or self.row_like(s)

    @staticmethod
    def normalise(s):
        return () if s == (1, 1) else s

    def unify(self, a, b) -> None:
        if not self.u.unify(a, b):
            raise _Fail("a shape error")

    def constant(self, n: N.Node) -> Fraction | None:
        """The checker's ``constant``: a number, a negated or divided constant, else None."""
        v = self.view(n)
        if v[0] == "num":
            return v[1]
        if v[0] == "neg":
            c = self.constant(v[1])
            return None if c is None else -c
        if v[0] == "div":
            a, b = (self.constant(x) for x in v[1])
            return None if a is None or b is None or b == 0 else a / b
        return None

    def check(self, n: N.Node):
        """The shape the checker gives the raw node of ``n`` (memoised where no fresh dimension is made: a
        repeated ``I`` is a new identity of its own size at each use, as in the text)."""
        hit = self.memo.get(n)
        if hit is not None:
            return hit
        mark = self.fresh_leaves
        v = self.view(n)
        shape = _SHAPE_METHODS[v[0]](self, n, v)
        if shape == (1, 1):
            shape = ()
        if self.fresh_leaves == mark:
            self.memo[n] = shape
        return shape

    def symbol_shape(self, name: str):
        shape = self.symbol_shapes.get(name)
        if shape is None:
            kind = self.kinds[name]
            u = self.u
            shape = () if kind == SCALAR else (u.fresh(), 1) if kind == VECTOR else (u.fresh(), u.fresh())
            self.symbol_shapes[name] = shape
        return shape

    def _shape_name(self, n, v):
        if v[1] == "I":
            var = self.u.fresh()
            self.fresh_leaves += 1
            self.leaves.append((n, var))
            return (var, var)
        return self.symbol_shape(v[1])

    def _shape_num(self, n, v):
        return ()

    _shape_pi = _shape_num

    def _shape_sized(self, n, v):
        dims = [d if isinstance(d, int) else self.u.named_dim(d) for d in v[2]]
        if v[1] == "eye":
            self.leaves.append((n, dims[0]))
            return (dims[0], dims[0])
        shape = (dims[0], 1) if len(dims) == 1 else (dims[0], dims[1])
        self.leaves.append((n, shape))
        return shape

    def broadcast(self, a, b):
        """The checker's ``broadcast``: a scalar expands, a vector repeats along a matrix's other axis, two
        vectors of different orientations and different shapes are errors."""
        if a == ():
            return b
        if b == ():
            return a
        if self.vec_like(a) != self.vec_like(b):
            m, vec = (a, b) if self.vec_like(b) else (b, a)
            axis = 1 if self.row_like(vec) else 0
            if self.u.unify(m[axis], vec[axis]):
                return m
        elif self.col_like(a) and self.row_like(b) or self.row_like(a) and self.col_like(b):
            raise _Fail("two vectors of different orientations")
        self.unify(a[0], b[0])
        self.unify(a[1], b[1])
        return a

    def _shape_add(self, n, v):
        shape = None
        for t in v[1]:
            s = self.check(t)
            shape = s if shape is None else self.broadcast(shape, s)
        return shape

    def _shape_hadamard(self, n, v):
        shape = ()
        for t in v[1]:
            shape = self.broadcast(shape, self.check(t))
        return shape

    def _shape_neg(self, n, v):
        return self.check(v[1])

    def refuse_zero_divisor(self, divisor: N.Node, negative_power: N.Node | None = None) -> None:
        if negative_power is not None and not ((self.constant(negative_power) or 0) < 0):
            return
        if self.constant(divisor) == 0:
            raise _Fail("a literal zero divisor")

    def _shape_elemdiv(self, n, v):
        a, b = v[1]
        self.refuse_zero_divisor(b)
        return self.broadcast(self.check(a), self.check(b))

    def _shape_div(self, n, v):
        a, b = v[1]
        self.refuse_zero_divisor(b)
        sa, sb = self.check(a), self.check(b)
        if sb != ():
            raise _Fail("a divisor that is not a scalar")
        return sa

    def _shape_power(self, n, v):
        base, exponent = v[1]
        self.refuse_zero_divisor(base, negative_power=exponent)
        sb, se = self.check(base), self.check(exponent)
        if se != ():
            raise _Fail("an exponent that is not a scalar")
        if v[0] == "elempower" or sb == ():
            return sb
        if self.vec_like(sb):
            raise _Fail("a power of a vector")
        self.unify(sb[0], sb[1])
        value = self.constant(exponent)
        if value is None or value.denominator != 1:
            raise _Fail("a matrix power that is not an integer")
        return sb

    _shape_elempower = _shape_power

    def _shape_transpose(self, n, v):
        s = self.check(v[1])
        return s if s == () else (s[1], s[0])

    def _shape_mul(self, n, v):
        shape = ()
        factors = v[1]
        for i, f in enumerate(factors):
            s = self.check(f)
            if i > 0:
                self.not_a_call(factors[i - 1], f)
            if s == ():
                continue
            if shape == ():
                shape = s
                continue
            self.unify(shape[1], s[0])
            shape = self.normalise((shape[0], s[1]))
        return shape

    def not_a_call(self, prev: N.Node, f: N.Node) -> None:
        """``xy (a + b)``: the checker takes a name of two letters or more (or one close to a function's) right
        before a parenthesis for a call of an unknown function, and refuses the text. The parenthesis is
        where the next factor's raw node starts, after its first ``(`` (one, not two: ``xy ((a + b) c)``)."""
        pv = self.view(prev)
        if pv[0] != "name" or len(pv[1]) < 2 or is_greek(pv[1]):
            return
        k = self.view(f)[0]
        if k in ("name", "sized", "call", "literal", "pi", "num"):  # texts that start without a parenthesis
            if k != "num" or not isinstance(f, N.Number) or f.value >= 0 and f.value.denominator == 1:
                return
        text = TextPrinter(explicit_sizes=self.explicit).factor(f, HAD)
        if not (text.startswith("(") and not text.startswith("((")):
            return
        name = pv[1]
        if name.isalpha() or _close_to_a_function(name):
            raise _Fail(f"{name} (...) reads as a call of an unknown function")

    def _shape_literal(self, n, v):
        rows = v[1]
        if len(rows[0]) == 1:  # [a; b]: the checker tries the rows as stacked row vectors first
            mark = self.fresh_leaves
            for row in rows:
                self.check(row[0])
            if self.fresh_leaves != mark:
                raise _Unsure("an identity or a fill checked twice in a one-column literal")
        for row in rows:
            for e in row:
                if self.check(e) != ():
                    raise _Fail("a literal entry that is not a scalar")
        return (len(rows[0]), 1) if len(rows) == 1 else (len(rows), len(rows[0]))

    def _shape_call(self, n, v):
        _, fname, args, axis = v
        shapes = [self.check(a) for a in args]
        s = shapes[0]
        if fname in _AXIS_CALLS:
            if fname in ("softmax", "maxmask"):
                if s == ():
                    raise _Fail("softmax of a scalar")
                return s
            if axis is None:
                return ()
            if s == ():
                raise _Fail("a reduction along an axis of a scalar")
            return self.normalise((s[0], 1) if axis == 1 else (1, s[1]))
        if fname in _ELEMENTWISE:
            return s
        op = ops.lookup(fname)
        if op.infer == "scalar" and fname not in _MATRIX_ARG:  # numel, norm1: as the checker, from the record
            return ()
        if fname == "dot":
            return self.dot(*shapes)
        if fname in _MATRIX_ARG:
            if s == () or self.vec_like(s):
                raise _Fail(f"{fname} of a scalar or a vector")
            self.unify(s[0], s[1])
            return s if op.infer == "same" else ()  # inv
        if fname == "diag":
            return self.diag(s)
        if fname == "kron":
            return self.kron(shapes)
        if s != ():  # vector(c), matrix(c)
            raise _Fail("a fill value that is not a scalar")
        u = self.u
        shape = (u.fresh(), 1) if fname == "vector" else (u.fresh(), u.fresh())
        self.fresh_leaves += 1
        self.leaves.append((n, shape))
        return shape

    def dot(self, sa, sb):
        if not (self.vec_like(sa) and self.vec_like(sb)):
            raise _Fail("a dot product of non-vectors")
        self.unify(sa[0] if self.col_like(sa) else sa[1], sb[0] if self.col_like(sb) else sb[1])
        return ()

    def kron(self, shapes):
        """Products of dimensions are not unified: the checker leaves both sides free."""
        if () in shapes:
            raise _Fail("kron of a scalar")
        self.fresh_leaves += 1
        return (self.u.fresh(), self.u.fresh())

    def diag(self, s):
        if self.col_like(s):
            return (s[0], s[0])
        if s != () and not self.row_like(s):
            self.unify(s[0], s[1])
            return (s[0], 1)
        raise _Fail("diag of a row or a scalar")

    # --- passes 3 and 4: naming, and the comparison with the node --------------------------------
    def name_dims(self) -> dict[int, object]:
        """The checker's naming: the symbols' dimensions in the order the names appear, then every other
        variable in the order it was made; declared names first, then ``n, m, k, ...``, then ``n1, n2 ...``."""
        used = {v.name for v in self.u.vars if v.name is not None}
        pool = [p for p in DIM_NAMES if p not in used]
        counter = iter(range(10**9))
        names: dict[int, object] = {}

        def next_name():
            if pool:
                return pool.pop(0)
            while True:
                cand = f"n{next(counter) + 1}"
                if cand not in used:
                    return cand

        def visit(d):
            rep = self.u.find(d)
            if not isinstance(rep, int) and rep.index not in names:
                names[rep.index] = Dim(rep.name) if rep.name is not None else Dim(next_name())

        for name in self.order:
            for d in self.symbol_shapes.get(name, ()):
                visit(d)
        for v in self.u.vars:
            visit(v)
        return names

    def agrees(self) -> bool:
        """Every symbol, identity, ``ones``/``zeros`` and fill has the node's own shape once named."""
        names = self.name_dims()

        def resolve(d):
            rep = self.u.find(d)
            return rep if isinstance(rep, int) else names[rep.index]

        for s in self.symbols:
            if s.symmetric or tuple(resolve(d) for d in self.symbol_shapes[s.name]) != s.shape:
                return False
        for n, inferred in self.leaves:
            if isinstance(n, N.Identity):
                if resolve(inferred) != n.size:
                    return False
                continue
            shape = tuple(resolve(d) for d in inferred)
            if shape == (1, 1) or shape != n.args[-1]:
                return False
        return True


#: the shape rule of each kind of raw node (``_shape_<kind>``)
_SHAPE_METHODS = {name[len("_shape_"):]: f for name, f in vars(_Reading).items() if name.startswith("_shape_")}


def _reads(node: N.Node, explicit: bool) -> bool:
    """Whether the text of ``node`` (with explicit sizes or not) type-checks back to ``node``; raises
    _Unsure where the prediction is not exact."""
    reading = _Reading(explicit)
    try:
        reading.collect(node)
        reading.check(node)
    except _Fail:
        return False
    return reading.agrees()


def explicit_differs(node: N.Node) -> bool:
    """Whether the explicit-sizes text differs from the bare one (``eye(n)``, ``ones(1, n)``)."""
    for n in N.walk(node):
        if isinstance(n, N.Identity) and isinstance(n.size, int | Dim):
            return True
        if isinstance(n, N.Ones | N.Zeros) and n.args[0][0] == 1:
            return True
    return False


def _depth(node: N.Node) -> int:
    """The depth of the node DAG (its raw tree is at most two levels deeper)."""
    depth: dict[N.Node, int] = {}
    for n in _post_order(node):
        depth[n] = 1 + max((depth[c] for c in n.children), default=0)
    return depth[node]


def reads_back(node: N.Node, body: str) -> str | None:
    """Which text of ``node`` parses back to it: ``"body"`` (the bare text ``body``), ``"explicit"`` (the
    text with explicit sizes) or ``"where"`` (neither: declarations are needed); None when the prediction
    is not exact for this node (the caller then parses the texts, as before)."""
    try:
        if len(body) > _MAX_LENGTH // 2 or (len(body) > _MAX_DEPTH and _depth(node) > _MAX_DEPTH):
            raise _Unsure("near the parser's limits")
        if _reads(node, False):
            answer = "body"
        elif explicit_differs(node) and _reads(node, True):
            answer = "explicit"
        else:
            answer = "where"
    except _Unsure:
        STATS["unsure"] += 1
        return None
    STATS["decided"] += 1
    return answer
