"""The raw tree to the typed AST: kinds, shape inference by unification, and positioned errors.

Four passes over the raw tree from :mod:`matcalc.parser`:

1. *kinds*: each name is a scalar, vector or matrix by declaration, else by the usage that forces one
   (the divisor of ``/`` and exponents are scalars, the operands of ``·`` are vectors, ...), else by the
   naming convention of matrixcalculus.org (``a``-``g`` and Greek scalars, ``h``-``z`` vectors, capitals
   matrices). An expression written as scalar algebra (``3x^2 y``: a name the convention makes a vector
   is forced scalar, and nothing forces a vector or a matrix) makes all its undeclared names scalars, as
   in the calculus texts.
2. *shapes*: every subexpression gets a shape whose dimensions are unification variables; operators
   unify them and report a :class:`~matcalc.errors.ShapeError` naming both operands.
3. *naming*: the dimensions left symbolic are named (declared names first, then ``n, m, k, ...``).
4. *building*: the typed, immutable nodes of :mod:`matcalc.nodes`.
"""

from __future__ import annotations

import math

from . import axes, ops
from . import nodes as N
from .assumed import Assumption, Assumptions, split_name
from .conventions import (  # noqa: F401  (GREEK, CONSTANTS, convention_kind: re-exported)
    CONSTANTS,
    DIM_NAMES,
    GREEK,
    MATRIX,
    SCALAR,
    SYMMETRIC,
    VECTOR,
    convention_kind,
)
from .conventions import convention_reason as _convention_reason
from .errors import (
    AssumptionWarning,
    DeclarationError,
    DivisionByZeroError,
    MatcalcError,
    ShapeError,
    UnknownFunctionError,
)
from .names import MAX_SIZE, check_name, check_size
from .parser import Raw, number_value, parse_kind, parse_raw
from .recursion import deep_recursion
from .shapes import Dim
from .unify import Unifier, Var

KINDS = (SCALAR, VECTOR, MATRIX, SYMMETRIC)
_POWER_BASE = "the base of ^, a power of a scalar"

#: Every spelling of an element-wise function -> its canonical name (from the catalogue, matcalc.ops).
ELEMENTWISE_ALIASES = {s: name for s, name in ops.ALIASES.items() if name in ops.ELEMENTWISE}
FUNCTIONS = sorted(ops.FUNCTION_NAMES)
#: The calls rewritten into relu at build time, and the role of each argument (None: the operand).
_PIECEWISE = {"leaky_relu": (None, "slope"), "clip": (None, "lower bound", "upper bound")}
_MATRIX_ARG = {s for s, name in ops.ALIASES.items() if name in ops.FUNCTIONS and ops.FUNCTIONS[name].matrix_arg}
_VECTOR_FORCING = {s for s, name in ops.ALIASES.items()
                   if name in ops.FUNCTIONS and ops.FUNCTIONS[name].forces_vector}
#: The spellings of the calls that take ``axis=`` (docs/language.md, "Axes and broadcasting").
_AXIS_CALLS = {s for s, name in ops.ALIASES.items() if name in ops.FUNCTIONS and ops.FUNCTIONS[name].axis}
_AXIS_HELP = "axis=1 or axis=-1 (along each row), axis=0 (down each column)"


#: what a one-column literal may hold besides scalars (a Jacobian printed as its stacked rows)
_STACKED = " (or row vectors of one length, one per row: [x'; y'] stacks them)"

class Declaration:
    """``name: kind(dims)``; ``dims`` holds ints, dimension names, or None where left to inference.

    Immutable, compared by value (a plain class: the dataclasses module costs the command line ~6 ms).
    """

    __slots__ = ("kind", "dims", "position")

    def __init__(self, kind: str, dims: tuple, position: int | None = None):
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "dims", tuple(dims))
        object.__setattr__(self, "position", position)

    def __setattr__(self, key, value):
        raise AttributeError("Declaration is immutable")

    def __eq__(self, other) -> bool:
        return isinstance(other, Declaration) and (self.kind, self.dims, self.position) == (
            other.kind, other.dims, other.position)

    def __hash__(self) -> int:
        return hash((self.kind, self.dims, self.position))

    def __repr__(self) -> str:
        return f"Declaration(kind={self.kind!r}, dims={self.dims!r}, position={self.position!r})"

    def describe(self) -> str:
        if self.kind == SCALAR:
            return SCALAR
        return f"{self.kind}({', '.join('?' if d is None else str(d) for d in self.dims)})"


# --- declarations -----------------------------------------------------------------------------------
def _kind_from_parts(kname: str, kpos: int, dims, source: str) -> Declaration:
    kname_l = kname.lower()
    aliases = {"real": SCALAR, "number": SCALAR, "vec": VECTOR, "mat": MATRIX, "sym": SYMMETRIC}
    kname_l = aliases.get(kname_l, kname_l)
    if kname_l not in KINDS:
        from difflib import get_close_matches  # only for messages: not imported at start-up

        close = get_close_matches(kname_l, KINDS, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; the kinds are {', '.join(KINDS)}"
        raise DeclarationError(f"unknown kind {kname!r}{hint}", kpos, source)
    values = []
    for text, pos in dims:
        if text[0].isdigit() or text[0] == ".":
            value = number_value(text)
            if value is None or value.denominator != 1 or value < 1 or value > MAX_SIZE:
                raise DeclarationError(f"a dimension must be a positive integer or a name, not {text}",
                                       pos, source)
            values.append(int(value))
        else:
            values.append(check_name(text, "dimension", pos, source, reserved=False))
    want = {SCALAR: (0,), VECTOR: (0, 1), MATRIX: (0, 1, 2), SYMMETRIC: (0, 1)}[kname_l]
    if len(values) not in want:
        raise DeclarationError(
            f"{kname_l} takes {' or '.join(str(w) for w in want)} dimensions, not {len(values)}", kpos, source)
    if kname_l == SCALAR:
        return Declaration(SCALAR, (), kpos)
    if kname_l == VECTOR:
        return Declaration(VECTOR, (values[0] if values else None,), kpos)
    if kname_l == SYMMETRIC:
        d = values[0] if values else None
        return Declaration(SYMMETRIC, (d, d), kpos)
    if len(values) == 1:  # matrix(n) is square, as in MATLAB's zeros(n)
        return Declaration(MATRIX, (values[0], values[0]), kpos)
    if not values:
        return Declaration(MATRIX, (None, None), kpos)
    return Declaration(MATRIX, tuple(values), kpos)


def parse_declaration(value, name: str = "?") -> Declaration:
    """A Python-side declaration: ``"matrix(n, n)"``, ``"scalar"``, or a shape tuple like ``("n", 1)``."""
    if isinstance(value, Declaration):
        return value
    if isinstance(value, str):
        try:
            kname, kpos, dims = parse_kind(value)
            return _kind_from_parts(kname, kpos, dims, value)
        except DeclarationError as exc:  # say whose declaration it is: the caret shows only the kind
            exc.message = f"in the declaration of {name}: {exc.message}"
            exc.args = (exc.message,)
            raise
    if isinstance(value, tuple | list):
        if len(value) > 2:
            raise DeclarationError(f"the shape of {name} has {len(value)} axes, but matcalc handles scalars, "
                                   "vectors and matrices")
        dims = tuple(check_size(d, name) for d in value)
        if dims == ():
            return Declaration(SCALAR, ())
        if len(dims) == 1 or (len(dims) == 2 and dims[1] == 1):
            return Declaration(VECTOR, (dims[0],))
        if len(dims) == 2:
            return Declaration(MATRIX, dims)
        raise DeclarationError(f"the shape of {name} is {value!r}, but matcalc handles scalars, vectors and "
                               "matrices")
    raise DeclarationError(f"cannot read the declaration of {name}: {value!r} "
                           "(use e.g. \"scalar\", \"vector(n)\", \"matrix(m, n)\", \"symmetric(n)\")")


# --- unification --------------------------------------------------------------------------------------
def _describe(shape, u: Unifier) -> str:
    def dim(d):
        d = u.find(d)
        if isinstance(d, int):
            return str(d)
        if d.name:
            return d.name
        pool = "nmkpqrst"
        return pool[d.index] if d.index < len(pool) else f"n{d.index}"

    if shape == ():
        return "scalar"
    r, c = shape
    if u.find(c) == 1 and u.find(r) != 1:
        return f"vector({dim(r)})"
    if u.find(r) == 1 and u.find(c) != 1:
        return f"row vector(1, {dim(c)})"
    return f"matrix({dim(r)}, {dim(c)})"


# --- the checker --------------------------------------------------------------------------------------
#: Raw operators that build one node class from their built operand.
_UNARY = {"neg": N.Neg, "transpose": N.Transpose}


class _Checker:
    def __init__(self, source: str, decls: dict[str, Declaration]):
        self.source = source
        self.decls = decls
        self.u = Unifier()
        self.kinds: dict[str, str] = {}
        self.first_pos: dict[str, int] = {}
        self.forced: dict[str, str] = {}
        self.symbol_shapes: dict[str, tuple] = {}
        self.order: list[str] = []
        self.shapes: dict[int, tuple] = {}  # id(raw) -> shape with variables
        self.identities: dict[int, Var] = {}
        self.fills: dict[int, tuple] = {}
        self.decided: dict[int, object] = {}  # id(raw) -> extra decisions (diag kind, max form ...)
        self.axes: dict[int, int | None] = {}  # id(raw) of a call -> its axis keyword (0, 1 or None)
        self.origin: dict[str, tuple[str, str]] = {}  # name -> (declaration | usage | convention, reason)
        self.why: dict[str, str] = {}  # name -> the usage that forced its kind
        self.notes: list = []  # (position, render) pairs, rendered by assumptions()
        self.noted: set = set()
        self.vector_forcing = False
        self.early = 0

    def text(self, raw: Raw) -> str:
        t = self.source[raw.start:raw.end]
        return t if len(t) <= 40 else t[:37] + "..."

    def shape_error(self, msg: str, pos: int) -> ShapeError:
        return ShapeError(msg, pos, self.source)

    # --- pass 1: kinds ---------------------------------------------------------------------------
    def collect(self, root: Raw):
        stack = [root]
        vector_forcing = False
        while stack:
            r = stack.pop()
            k = r.kind
            if k == "name":
                if r.items in CONSTANTS and r.items not in self.decls:
                    continue
                if r.items not in self.first_pos:  # a dict lookup: O(1) even with 20,000 names
                    self.first_pos[r.items] = r.start
                    self.order.append(r.items)
                continue
            vector_forcing = self.collect_operator(r, stack) or vector_forcing
        self.vector_forcing = vector_forcing
        self.decide_kinds()
        self.note_collected()
        self.early = len(self.notes)  # notes that need only the kinds: shown with a shape error too

    def collect_operator(self, r: Raw, stack: list) -> bool:
        """Push the operands of ``r`` on ``stack`` and note what the operator tells about the kinds of its
        bare-name operands; True if it makes the expression vector-forcing."""
        k = r.kind
        forcing = False
        if k == "num":
            pass
        elif k in ("add",):
            stack.extend(reversed([t for _, t, _ in r.items]))
        elif k in ("mul", "hadamard"):
            stack.extend(reversed([t for t, _ in r.items]))
        elif k in ("elemdiv", "div", "power", "elempower"):
            stack.extend(reversed(r.items))
            if k == "div":
                self.demand_scalar(r.items[1], why="the divisor of /")
            elif k in ("power", "elempower"):
                self.demand_scalar(r.items[1], why="an exponent")
                if k == "power":
                    self.demand_scalar(r.items[0], only_vector_convention=True, why=_POWER_BASE)
        elif k == "dot":
            stack.extend(reversed(r.items))
            forcing = True
            for side in r.items:
                self.force_bare(side, VECTOR, "an operand of ·")
        elif k in ("neg", "transpose"):
            stack.append(r.items)
            if k == "transpose":
                forcing = True
        elif k == "call":
            stack.extend(reversed(r.items[1]))
            forcing = self.collect_call(r)
        elif k == "norm":
            stack.append(r.items[0])
            forcing = True
        elif k == "literal":
            for row in r.items:
                for e in row:
                    stack.append(e)
                    self.demand_scalar(e, why="an entry of [...]")
        return forcing

    def decide_kinds(self):
        """Each name's kind, and where it came from: a declaration, then usage, then the convention."""
        for name in self.order:
            if name in self.decls:
                self.kinds[name] = self.decls[name].kind
                self.origin[name] = ("declaration", "")
            elif name in self.forced:
                self.kinds[name] = self.forced[name]
                self.origin[name] = ("usage", self.why.get(name, ""))
            else:
                self.kinds[name] = convention_kind(name)
                self.origin[name] = ("convention", _convention_reason(name))
        # scalar algebra: a name the convention makes a vector is forced scalar (``x^2``, ``a / y``), and
        # nothing needs a vector or a matrix. A forced scalar that is a scalar by convention anyway
        # (``x / a``, ``x .^ a``) says nothing about the other names, so ``x`` stays a vector there.
        if any(v == SCALAR and convention_kind(n) != SCALAR for n, v in self.forced.items()) \
                and not self.vector_forcing:
            if all(self.kinds[n] in (SCALAR, VECTOR) or n in ("I",) for n in self.order if n not in self.decls):
                for n in self.order:
                    if n not in self.decls and self.kinds[n] == VECTOR:
                        self.kinds[n] = SCALAR
                        self.origin[n] = ("usage", "scalar algebra: nothing needs a vector or a matrix")

    def force_bare(self, raw: Raw, kind: str, why: str = ""):
        if raw.kind == "name" and raw.items not in self.decls:
            self.forced.setdefault(raw.items, kind)
            self.why.setdefault(raw.items, why)

    def demand_scalar(self, raw: Raw, only_vector_convention: bool = False, why: str = ""):
        """Names whose value must be a scalar here become scalars (``x^2``, ``a / s``, ``[e1, e2]``)."""
        stack = [raw]
        while stack:
            r = stack.pop()
            k = r.kind
            if k == "name":
                name = r.items
                if name in self.decls:
                    continue
                if convention_kind(name) == VECTOR or not only_vector_convention:
                    if convention_kind(name) != MATRIX or not only_vector_convention:
                        self.forced.setdefault(name, SCALAR)
                        self.why.setdefault(name, why)
            elif k == "add":
                stack.extend(t for _, t, _ in r.items)
            elif k in ("mul", "hadamard"):
                factors = [t for t, _ in r.items]
                # `(X w - y)^2`: a product with a matrix is not scalar algebra; w stays a vector, and the
                # power of a vector is an error that suggests .^
                if not any(f.kind == "transpose" or only_vector_convention and self.matrix_name(f)
                           for f in factors):
                    stack.extend(factors)
            elif k in ("elemdiv",):
                stack.extend(r.items)
            elif k in ("div", "power", "elempower"):
                stack.append(r.items[0])
            elif k == "neg":
                stack.append(r.items)
            elif k == "call":
                fname, args = r.items
                if fname in ELEMENTWISE_ALIASES and len(args) == 1:
                    stack.append(args[0])
                elif fname in ("max", "min") or fname in _PIECEWISE:
                    stack.extend(args)

    # --- assumptions and the notes about them -----------------------------------------------------
    def note(self, position: int, render, key=None) -> None:
        """Queue a note; ``render()`` builds its text once the dimensions have their final names. Of the
        notes with one ``key`` (a name and what is said about it) only the first is kept."""
        if key is not None:
            if key in self.noted:
                return
            self.noted.add(key)
        self.notes.append((position, render))

    def final(self, shape) -> str:
        """A shape in declaration syntax with its final dimension names (``vector(m)``)."""
        from .shapes import describe

        return describe(self.resolve_shape(shape)) if shape != () else SCALAR

    def matrix_name(self, raw: Raw) -> bool:
        """A bare name that is a matrix by declaration or by the convention (``X`` in ``(X w - y)^2``)."""
        if raw.kind != "name":
            return False
        decl = self.decls.get(raw.items)
        if decl is not None:
            return decl.kind in (MATRIX, SYMMETRIC)
        return raw.items != "I" and convention_kind(raw.items) == MATRIX and raw.items not in FUNCTIONS

    def assumed_scalars(self, raw: Raw) -> list[str]:
        """The undeclared scalar names that make ``raw`` a scalar (``b1``, ``2 mu``, ``-λ``), else []."""
        if raw.kind == "name":
            name = raw.items
            undeclared = name not in self.decls and name not in CONSTANTS and name in self.kinds
            return [name] if undeclared and self.kinds[name] == SCALAR else []
        if raw.kind == "neg":
            return self.assumed_scalars(raw.items)
        if raw.kind == "mul":
            out = []
            for factor, _ in raw.items:
                names = [] if factor.kind == "num" else self.assumed_scalars(factor)
                if not names and factor.kind != "num":
                    return []
                out += names
            return out
        return []

    def why_scalar(self, name: str) -> str:
        source, reason = self.origin.get(name, ("convention", ""))
        if source == "convention":
            return f"by the letter convention: {reason}"
        return f"because it is {reason}" if reason else "from its use"

    def note_collected(self) -> None:
        """Notes that need only the kinds: ``Ax`` read as one name; a vector name forced scalar by ^."""
        known = set(self.order) | set(self.decls)
        for name in self.order:
            if name in self.decls or name in GREEK or name in FUNCTIONS or name in CONSTANTS:
                continue
            parts = split_name(name, known)
            if parts:
                product = " ".join(parts)
                self.note(self.first_pos[name], lambda name=name, product=product: (
                    f"{name} is read as one name, a {self.kinds[name]} by the letter convention; if you meant "
                    f"the product {product}, write it with spaces ('{product}'); declare {name} "
                    f"(where {name}: ...) to keep one name"))
            if (self.vector_forcing and self.origin[name] == ("usage", _POWER_BASE)
                    and convention_kind(name) == VECTOR):
                self.note(self.first_pos[name], lambda name=name: (
                    f"{name} is taken to be a scalar because it is {_POWER_BASE}; if {name} is a vector, "
                    f"write .^ (or **) for an element-wise power, or declare {name} (where {name}: vector(n))"))

    def assumptions(self) -> Assumptions:
        """One record per name (declared names that do not occur included) and the rendered notes."""
        items = []
        for name in self.order:
            if name not in self.symbol_shapes:  # `I` as the identity
                continue
            source, reason = self.origin[name]
            shape = self.resolve_shape(self.symbol_shapes[name])
            items.append(Assumption(name, self.kinds[name], shape, source, reason))
        used = {str(d) for a in items for d in a.shape} | {v.name for v in self.u.vars if v.name}
        for name, decl in self.decls.items():
            if name not in self.first_pos:
                items.append(Assumption(name, decl.kind, _absent_shape(decl, used), "declaration", "",
                                        occurs=False))
        notes = tuple(AssumptionWarning(render(), pos, self.source) for pos, render in self.notes)
        return Assumptions(tuple(items), notes)

    # --- pass 2: shapes --------------------------------------------------------------------------
    def symbol_shape(self, name: str):
        if name in self.symbol_shapes:
            return self.symbol_shapes[name]
        if name in CONSTANTS and name not in self.decls:
            return ()
        kind = self.kinds[name]
        decl = self.decls.get(name)

        def dim(d):
            if d is None:
                return self.u.fresh()
            if isinstance(d, int):
                return d
            return self.u.named_dim(d)

        if kind == SCALAR:
            shape = ()
        elif kind == VECTOR:
            shape = (dim(decl.dims[0]) if decl else self.u.fresh(), 1)
        elif kind == SYMMETRIC:
            d = dim(decl.dims[0]) if decl else self.u.fresh()
            shape = (d, d)
        else:
            shape = (dim(decl.dims[0]), dim(decl.dims[1])) if decl else (self.u.fresh(), self.u.fresh())
        self.symbol_shapes[name] = shape
        return shape

    def unify_or_fail(self, a, b, message, pos):
        if not self.u.unify(a, b):
            raise self.shape_error(message, pos)

    def is_scalar(self, shape) -> bool:
        return shape == ()

    def col_like(self, shape) -> bool:
        return shape != () and self.u.find(shape[1]) == 1 and self.u.find(shape[0]) != 1

    def row_like(self, shape) -> bool:
        return shape != () and self.u.find(shape[0]) == 1 and self.u.find(shape[1]) != 1

    def vec_like(self, shape) -> bool:
        return self.col_like(shape) or self.row_like(shape)

    def normalise(self, shape):
        if shape != () and self.u.find(shape[0]) == 1 and self.u.find(shape[1]) == 1:
            return ()
        return shape

    def check(self, r: Raw):
        if r.kind in ("div", "elemdiv"):
            self.refuse_zero_divisor(r.items[1], r.op)
        elif r.kind in ("power", "elempower"):
            self.refuse_zero_divisor(r.items[0], r.op, negative_power=r.items[1])
        shape = self._check(r)
        shape = self.normalise(shape)
        self.shapes[id(r)] = shape
        if r.kind in _INSPECTED:
            _INSPECTED[r.kind](self, r, shape)
        return shape

    def broadcast(self, a, b, ra: Raw, rb: Raw, op: str, pos: int):
        """The shape of an element-wise operation: a scalar is expanded, a row vector is repeated over the
        rows of a matrix and a column over its columns (NumPy's broadcasting), two vectors of different
        orientations are refused (NumPy would make a matrix of them, which users rarely mean)."""
        if a == ():
            return b
        if b == ():
            return a
        if self.vec_like(a) != self.vec_like(b):
            (m, rm), (v, rv) = ((a, ra), (b, rb)) if self.vec_like(b) else ((b, rb), (a, ra))
            axis = 1 if self.row_like(v) else 0
            if self.u.unify(m[axis], v[axis]):
                return m
        elif self.col_like(a) and self.row_like(b) or self.row_like(a) and self.col_like(b):
            (col, rc), (row, rr) = ((a, ra), (b, rb)) if self.col_like(a) else ((b, rb), (a, ra))
            m, n = (_describe((d, 1), self.u)[len("vector("):-1] for d in (col[0], row[1]))
            c = rc.items if rc.kind == "name" else "u"
            r = rr.items.items if rr.kind == "transpose" and rr.items.kind == "name" else "v"
            raise self.shape_error(
                f"cannot {op} {self.text(ra)} ({_describe(a, self.u)}) and {self.text(rb)} "
                f"({_describe(b, self.u)}): matcalc never broadcasts two vectors into a matrix; for the matrix "
                f"of all pairs write outer({c}, {r}), or {c} ones({n})' + ones({m}) {r}' for the sums", pos)
        ok = self.u.unify(a[0], b[0]) and self.u.unify(a[1], b[1])
        if not ok:
            raise self.shape_error(
                f"cannot {op} {self.text(ra)} ({_describe(a, self.u)}) and {self.text(rb)} "
                f"({_describe(b, self.u)}): their shapes differ", pos)
        return a

    def collect_call(self, r: Raw) -> bool:
        """What a call tells about the kinds of its bare-name arguments; True if it makes the expression
        vector-forcing (see ``_VECTOR_FORCING``)."""
        fname, args = r.items
        if fname in _MATRIX_ARG and args:
            self.force_bare(args[0], MATRIX, f"the argument of {fname}()")
        if fname in ("dot", "outer"):  # outer(a, b) takes two vectors, like dot(a, b)
            for a in args:
                self.force_bare(a, VECTOR, f"an argument of {fname}()")
        # softmax(X) of a matrix is row-wise: only a name that is not a capital is forced to be a vector
        if fname in ("softmax", "log_softmax") and args and not self.matrix_name(args[0]):
            self.force_bare(args[0], VECTOR, f"the argument of {fname}()")
        if fname in ("vector", "matrix") and args:
            self.demand_scalar(args[0], why=f"the fill value of {fname}()")
        for i, role in enumerate(_PIECEWISE.get(fname, ())[:len(args)]):
            if role:  # leaky_relu's slope, clip's bounds: scalars (a name by the convention a vector too)
                self.demand_scalar(args[i], why=f"the {role} of {fname}()")
        return fname in _VECTOR_FORCING

    def _check(self, r: Raw):
        """The shape of ``r`` (dimensions are unifier variables): one ``_shape_<kind>`` method per kind of
        raw node."""
        method = getattr(self, "_shape_" + r.kind, None)
        if method is None:  # pragma: no cover
            raise MatcalcError(f"internal: unknown raw node {r.kind}", r.start, self.source)
        return method(r)

    def _shape_num(self, r: Raw):
        return ()

    def _shape_name(self, r: Raw):
        u = self.u
        name = r.items
        if name == "I" and name not in self.decls or name == "eye" and name not in self.decls:
            v = self.identities.setdefault(id(r), u.fresh())
            return (v, v)
        if name in FUNCTIONS and name not in self.decls:
            raise UnknownFunctionError(f"{name} is a function; call it with an argument: {name}(...)",
                                       r.start, self.source)
        return self.symbol_shape(name)

    def _shape_add(self, r: Raw):
        shape = None
        first = None
        for _sign, term, pos in r.items:
            s = self.check(term)
            if shape is None:
                shape, first = s, term
                continue
            shape = self.broadcast(shape, s, first, term, "add" if _sign > 0 else "subtract", pos)
            if first is not None and shape == s:
                first = term if s != () else first
        return shape

    def _shape_neg(self, r: Raw):
        return self.check(r.items)

    def _shape_mul(self, r: Raw):
        return self.check_product(r)

    def _shape_hadamard(self, r: Raw):
        shape = ()
        acc = r.items[0][0]
        for term, pos in r.items:
            s = self.check(term)
            shape = self.broadcast(shape, s, acc, term, "multiply element-wise", pos or term.start)
            acc = term
        return shape

    def _shape_elemdiv(self, r: Raw):
        a, b = r.items
        return self.broadcast(self.check(a), self.check(b), a, b, "divide element-wise", r.op)

    def _shape_div(self, r: Raw):
        u = self.u
        a, b = r.items
        sa, sb = self.check(a), self.check(b)
        if sb != ():
            raise self.shape_error(
                f"cannot divide {self.text(a)} ({_describe(sa, u)}) by {self.text(b)} "
                f"({_describe(sb, u)}): the divisor of / must be a scalar; use ./ for element-wise "
                "division or inv() for a matrix inverse", r.op)
        return sa

    def _shape_dot(self, r: Raw):
        a, b = r.items
        sa, sb = self.check(a), self.check(b)
        self.require_dot(sa, sb, a, b, r.op)
        return ()

    def _shape_power(self, r: Raw):
        u = self.u
        k = r.kind
        base, exp = r.items
        sb, se = self.check(base), self.check(exp)
        if se != ():
            raise self.shape_error(f"the exponent {self.text(exp)} must be a scalar, "
                                   f"not {_describe(se, u)}", exp.start)
        if k == "elempower" or sb == ():
            return sb
        if self.vec_like(sb):
            raise self.shape_error(
                f"cannot raise {self.text(base)} ({_describe(sb, u)}) to a power with ^: "
                "it is not a square matrix; use .^ for an element-wise power", r.op)
        self.unify_or_fail(sb[0], sb[1], f"a matrix power needs a square matrix, and {self.text(base)} "
                           f"is {_describe(sb, u)}", r.op)
        value = self.constant(exp)
        if value is None or value.denominator != 1:
            raise self.shape_error("the power of a matrix must be an integer constant; "
                                   "use .^ for an element-wise power", exp.start)
        return sb

    _shape_elempower = _shape_power

    def _shape_transpose(self, r: Raw):
        s = self.check(r.items)
        return s if s == () else (s[1], s[0])

    def _shape_norm(self, r: Raw):
        inner, sub = r.items
        s = self.check(inner)
        if sub in ("_2", "_1") and s != () and not self.vec_like(s):
            raise self.shape_error(
                f"||{self.text(inner)}||{sub} of a matrix is an operator norm, which matcalc does not "
                "support; use ||A||_F (Frobenius) or norm1(A) (sum of absolute entries)", r.start)
        return ()

    def _shape_literal(self, r: Raw):
        u = self.u
        rows = r.items
        width = len(rows[0])
        if width == 1 and len(rows) > 1:
            stacked = self.stacked_rows_shape(rows)
            if stacked is not None:
                return stacked
        for row in rows:
            if len(row) != width:
                raise self.shape_error(f"the rows of this matrix have {width} and {len(row)} entries",
                                       row[0].start)
            for e in row:
                s = self.check(e)
                if s != ():
                    raise self.shape_error(
                        f"the entries of [...] must be scalars{_STACKED if width == 1 else ''}; "
                        f"{self.text(e)} is {_describe(s, u)}",
                        e.start)
        if len(rows) == 1:
            return () if width == 1 else (width, 1)
        return (len(rows), width)

    def stacked_rows_shape(self, rows):
        """``[r₁; r₂; …]`` with row vectors ``rᵢ`` of one length (a Jacobian as printed, one gradient per
        row): a matrix with those rows, as MATLAB stacks them; None when the entries are not all rows."""
        shapes = [self.check(row[0]) for row in rows]
        if not all(self.row_like(sh) for sh in shapes):
            return None
        for row, sh in zip(rows, shapes, strict=True):
            self.unify_or_fail(sh[1], shapes[0][1], f"the rows of this matrix have different lengths "
                               f"({self.text(rows[0][0])} and {self.text(row[0])})", row[0].start)
        return (len(rows), shapes[0][1])

    def _shape_call(self, r: Raw):
        return self.check_call(r)

    def refuse_zero_divisor(self, divisor: Raw, pos: int, negative_power: Raw | None = None) -> None:
        """A literal zero divisor (``1/0``, ``(a/0)^2``, ``0/0``, ``x ./ 0``, ``0^-1``) has no value: it is
        refused here, with a caret at the division, rather than folded into a constant the derivative drops.
        With ``negative_power`` (an exponent), ``divisor`` is a base, refused when the exponent is negative."""
        if negative_power is not None and not ((self.constant(negative_power) or 0) < 0):
            return
        if self.constant(divisor) == 0:
            what = "" if divisor.kind == "num" else f" ({self.text(divisor)} is 0)"
            raise DivisionByZeroError(f"division by zero{what}: a literal zero divisor has no value", pos,
                                      self.source)

    def constant(self, r: Raw):
        """The value of a constant numeric expression, or None."""
        if r.kind == "num":
            return r.items
        if r.kind == "neg":
            v = self.constant(r.items)
            return None if v is None else -v
        if r.kind == "div":
            a, b = (self.constant(x) for x in r.items)
            return None if a is None or b is None or b == 0 else a / b
        return None

    def require_dot(self, sa, sb, a, b, pos):
        u = self.u
        if not (self.vec_like(sa) and self.vec_like(sb)):
            raise self.shape_error(
                f"the dot product needs two vectors; {self.text(a)} is {_describe(sa, u)} and "
                f"{self.text(b)} is {_describe(sb, u)}", pos)
        la = sa[0] if self.col_like(sa) else sa[1]
        lb = sb[0] if self.col_like(sb) else sb[1]
        self.unify_or_fail(la, lb, f"the dot product of {self.text(a)} ({_describe(sa, u)}) and "
                           f"{self.text(b)} ({_describe(sb, u)}) needs vectors of one length", pos)

    def check_product(self, r: Raw):
        u = self.u
        shape = ()
        start = r.items[0][0].start
        prev_end = r.items[0][0].end
        for i, (factor, pos) in enumerate(r.items):
            s = self.check(factor)
            if i > 0 and pos is not None and r.items[i - 1][0].kind == "name":  # `f(x)`, `f(x) .* y`
                self.maybe_unknown_function(r.items[i - 1][0], factor)
            if s == ():
                prev_end = factor.end
                continue
            if shape == ():
                shape = s
                prev_end = factor.end
                continue
            left_text = self.source[start:prev_end]
            left_text = left_text if len(left_text) <= 40 else left_text[:37] + "..."
            if not u.unify(shape[1], s[0]):
                raise self.shape_error(
                    f"cannot multiply {left_text} ({_describe(shape, u)}) by {self.text(factor)} "
                    f"({_describe(s, u)}): {self._inner_hint(shape, s)}", pos if pos is not None else factor.start)
            shape = self.normalise((shape[0], s[1]))
            prev_end = factor.end
        return shape

    def _inner_hint(self, a, b) -> str:
        if self.col_like(a) and self.col_like(b):
            return "two column vectors; transpose one (x' y) or use dot(x, y) or .* for element-wise"
        return "the inner dimensions differ"

    def check_square_arg(self, r: Raw, s):
        """``tr``, ``det``, ``logdet``, ``inv`` take a square matrix; ``tr`` of a scalar (the trace trick on a
        1 x 1 product, ``tr(x' A x)``) is that scalar."""
        fname, (arg,) = r.items
        if s == () and fname in ("tr", "trace"):
            self.decided[id(r)] = "scalar"
            return ()
        message = f"{fname}() needs a square matrix; {self.text(arg)} is {_describe(s, self.u)}"
        if s == () or self.vec_like(s):
            raise self.shape_error(message, arg.start)
        self.unify_or_fail(s[0], s[1], message, arg.start)
        return s if ops.FUNCTIONS[ops.ALIASES[fname]].infer == "same" else ()  # inv

    def maybe_unknown_function(self, name_raw: Raw, group: Raw):
        """``sine(x)``, ``f(x)``, ``expm1(x)``: an undeclared name right before '(' that reads as a call.

        A small letter (or a multi-letter name) touching '(' is a function call in every text, and matcalc
        has no user-defined functions, so it is an error rather than a product the user did not mean. A
        capital (``A(x + y)``, ``W1(x)``) multiplies, as a matrix does in the texts; so does a name
        declared or followed by a space, and a Greek scalar (``λ(x + y)``).
        """
        name = name_raw.items
        if name == "sigma" and name not in self.decls and self.source.startswith("(", name_raw.end):
            self.note(name_raw.start, lambda: (
                "sigma(...) is read as the scalar sigma (a Greek name) times the parenthesis; for the sigmoid "
                "function write sigmoid(...) or σ(...), or declare sigma: scalar to keep this reading"),
                ("sigma", "call"))
        if name in self.decls or name in GREEK or name in CONSTANTS or "\u0370" <= name[0] <= "\u03ff":
            return
        after = self.source[name_raw.end:group.start]
        if after.strip() != "(":
            return
        from difflib import get_close_matches

        close = get_close_matches(name.lower(), FUNCTIONS, n=1, cutoff=0.6)  # EXP(x) -> exp
        call_like = after == "(" and name[0].islower()
        if not call_like and (len(name) < 2 or not name.isalpha() and not close):  # `W1(x + y)`: a product
            return
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UnknownFunctionError(
            f"unknown function {name!r}{hint} (matcalc has no user-defined functions; to multiply {name} by "
            f"the parenthesis, write {name} * (...))", name_raw.start, self.source)

    def arity(self, r: Raw, *allowed: int) -> None:
        """Refuse a call with a number of arguments not in ``allowed``."""
        fname, args = r.items
        if len(args) not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise self.shape_error(f"{fname}() takes {want} argument{'s' if allowed != (1,) else ''}, "
                                   f"not {len(args)}", r.start)

    def check_call(self, r: Raw):
        """The shape of a call: sized constants, then the functions of one shape rule each."""
        fname, args = r.items
        self.call_axis(r)
        if fname in ("ones", "zeros", "eye"):
            return self.check_sized(r)
        shapes = [self.check(a) for a in args]
        shape = self.axis_call_shape(r, shapes) if fname in _AXIS_CALLS else None
        if shape is None:
            shape = self.simple_call_shape(r, shapes)
        if shape is None:
            shape = self.structured_call_shape(r, shapes)
        if shape is None:  # pragma: no cover
            raise UnknownFunctionError(f"unknown function {fname!r}", r.start, self.source)
        return shape

    def check_sized(self, r: Raw):
        """``ones(m, n)``, ``zeros(n)``, ``eye(n)``: sizes are numbers or dimension names."""
        u = self.u
        fname, args = r.items
        self.arity(r, 0, 1, 2) if fname != "eye" else self.arity(r, 0, 1)
        dims = []
        for a in args:
            if a.kind == "num" and a.items.denominator == 1 and a.items >= 1:
                dims.append(int(a.items))
            elif a.kind == "name":
                dims.append(u.named_dim(a.items))
            else:
                raise self.shape_error(f"the size in {fname}() must be a number or a dimension name",
                                       a.start)
        if fname == "eye":
            v = dims[0] if dims else u.fresh()
            self.identities[id(r)] = v
            return (v, v)
        if not dims:
            dims = [u.fresh()]
        shape = (dims[0], 1) if len(dims) == 1 else (dims[0], dims[1])
        self.fills[id(r)] = shape
        return self.normalise(shape)

    def call_axis(self, r: Raw) -> None:
        """Read a call's keyword arguments: ``axis=0|1|-1`` (``dim=`` as PyTorch spells it) and
        ``keepdims=True`` (the reduced axis is always kept); anything else is refused at its position."""
        fname, args = r.items
        axis = None
        for key, value, pos in r.keywords:
            if fname not in _AXIS_CALLS:
                raise self.shape_error(f"{fname}() takes no keyword arguments ({key}= is not accepted); the "
                                       f"calls that take axis= are {', '.join(sorted(_AXIS_CALLS))}", pos)
            if key in ("axis", "dim"):
                v = self.constant(value)
                if axis is not None or v not in (0, 1, -1):
                    what = "a second axis" if axis is not None else f"{key}={self.text(value)}"
                    raise self.shape_error(f"{fname}() takes one axis, {_AXIS_HELP}; not {what} (matcalc's "
                                           "values have at most two axes)", value.start)
                axis = 1 if v == -1 else int(v)
            elif key == "keepdims":
                if not (value.kind == "name" and value.items == "True"):
                    raise self.shape_error(f"keepdims={self.text(value)} is not supported: matcalc always keeps "
                                           "the reduced axis (as keepdims=True); leave it out", value.start)
            else:
                raise self.shape_error(f"{fname}() takes the keywords axis= ({_AXIS_HELP}), dim= (the same) "
                                       f"and keepdims=True, not {key}=", pos)
        if axis is not None and fname in ("max", "min") and len(args) == 2:
            raise self.shape_error(f"{fname}(a, b) is element-wise and takes no axis; {fname}(e, axis=1) "
                                   "reduces one argument", r.keywords[0][2])
        self.axes[id(r)] = axis

    def axis_call_shape(self, r: Raw, shapes: list):
        """The calls that take ``axis=``: the reduced axis is kept (m x n -> m x 1 along the rows, 1 x n down
        the columns); a positional axis is refused with the keyword form. None for ``max(a, b)``."""
        fname, args = r.items
        name = ops.ALIASES[fname]
        if name in ("max", "min") and len(args) == 2:
            return None
        if len(args) == 2:
            first = self.text(args[0])
            raise self.shape_error(
                f"{fname}() takes its axis as a keyword: {fname}({first}, axis=1) along each row, {fname}({first}, "
                "axis=0) down each column (MATLAB's dimension 2 is axis=1, dimension 1 is axis=0)", args[1].start)
        self.arity(r, 1)
        s, axis = shapes[0], self.axes[id(r)]
        if name in ("softmax", "log_softmax", "maxmask"):
            if s == ():
                raise self.shape_error(f"{fname}() needs a vector or a matrix; {self.text(args[0])} is a scalar",
                                       args[0].start)
            return s
        if axis is None:
            return ()
        if s == ():
            raise self.shape_error(f"{fname}(..., axis={axis}) needs a vector or a matrix; {self.text(args[0])} "
                                   "is a scalar", args[0].start)
        return self.normalise((s[0], 1) if axis == 1 else (1, s[1]))

    def simple_call_shape(self, r: Raw, shapes: list):
        """Element-wise functions, max/min, reductions, dot, the square-matrix functions; else None."""
        fname, args = r.items
        if fname in ELEMENTWISE_ALIASES:
            self.arity(r, 1)
            return shapes[0]
        if fname in _PIECEWISE:
            return self.piecewise_call_shape(r, shapes)
        if fname in ("max", "min"):
            self.arity(r, 2)
            return self.broadcast(shapes[0], shapes[1], args[0], args[1], f"take the {fname} of", r.start)
        if ops.FUNCTIONS[ops.ALIASES[fname]].infer == "scalar" and fname not in _MATRIX_ARG:  # numel, norm1
            self.arity(r, 1)
            return ()
        if fname == "dot":
            self.arity(r, 2)
            self.require_dot(shapes[0], shapes[1], args[0], args[1], r.start)
            return ()
        if fname in _MATRIX_ARG:
            self.arity(r, 1)
            return self.check_square_arg(r, shapes[0])
        return None

    def piecewise_call_shape(self, r: Raw, shapes: list):
        """``leaky_relu(e, a)``, ``clip(e, lo, hi)``: element-wise in ``e``, with scalar parameters."""
        fname, args = r.items
        roles = _PIECEWISE[fname]
        self.arity(r, len(roles))
        for a, s, role in zip(args[1:], shapes[1:], roles[1:], strict=True):
            if s != ():
                raise self.shape_error(f"the {role} of {fname}() must be a scalar; {self.text(a)} is "
                                       f"{_describe(s, self.u)}", a.start)
        return shapes[0]

    def structured_call_shape(self, r: Raw, shapes: list):
        """diag, softmax, outer, kron and the fills vector(c), matrix(c); else None."""
        u = self.u
        fname, args = r.items
        if fname == "diag":
            self.arity(r, 1)
            s = shapes[0]
            if self.col_like(s):
                self.decided[id(r)] = "mat"
                return (s[0], s[0])
            if s != () and not self.row_like(s):
                self.unify_or_fail(s[0], s[1], f"diag() needs a vector or a square matrix; "
                                   f"{self.text(args[0])} is {_describe(s, u)}", args[0].start)
                self.decided[id(r)] = "vec"
                return (s[0], 1)
            raise self.shape_error(f"diag() needs a column vector or a square matrix; {self.text(args[0])} is "
                                   f"{_describe(s, u)}", args[0].start)
        if fname == "outer":
            self.arity(r, 2)
            for a, s in zip(args, shapes, strict=True):
                if not self.col_like(s):
                    raise self.shape_error(f"outer() needs two column vectors; {self.text(a)} is "
                                           f"{_describe(s, u)}", a.start)
            return (shapes[0][0], shapes[1][0])
        if fname == "kron":
            self.arity(r, 2)
            for a, s in zip(args, shapes, strict=True):
                if s == ():
                    raise self.shape_error(f"kron() needs vectors or matrices; {self.text(a)} is a scalar",
                                           a.start)
            # Products of dimensions are not unified: the Kronecker product's sides stay free here and the
            # node computes its exact shape (m*p, n*q) when it is built.
            return (u.fresh(), u.fresh())
        if fname in ("vector", "matrix"):
            self.arity(r, 1)
            if shapes[0] != ():
                raise self.shape_error(f"{fname}(c) fills a {fname} with the scalar c; {self.text(args[0])} "
                                       f"is {_describe(shapes[0], u)}", args[0].start)
            shape = (u.fresh(), 1) if fname == "vector" else (u.fresh(), u.fresh())
            self.fills[id(r)] = shape
            return shape
        return None


    # --- passes 3 and 4: naming and building -----------------------------------------------------
    def name_dims(self):
        used = {v.name for v in self.u.vars if v.name is not None}
        pool = [p for p in DIM_NAMES if p not in used]
        counter = iter(range(10**9))
        self.dim_names: dict[int, object] = {}

        def next_name():
            if pool:
                return pool.pop(0)
            while True:
                cand = f"n{next(counter) + 1}"
                if cand not in used:
                    return cand

        def visit(d):
            rep = self.u.find(d)
            if isinstance(rep, int):
                return
            if rep.index not in self.dim_names:
                self.dim_names[rep.index] = Dim(rep.name) if rep.name is not None else Dim(next_name())

        for name in self.order:
            if name in self.symbol_shapes:
                for d in self.symbol_shapes[name]:
                    visit(d)
        for v in self.u.vars:
            visit(v)

    def resolve(self, d):
        rep = self.u.find(d)
        if isinstance(rep, int):
            return rep
        return self.dim_names[rep.index]

    def resolve_shape(self, shape):
        return tuple(self.resolve(d) for d in shape)

    def build(self, r: Raw) -> N.Node:
        node = self._build(r)
        return node

    def _build(self, r: Raw) -> N.Node:
        """The typed node of ``r``: the operators of one node class each by table, the others by their
        ``_build_<kind>`` method."""
        k, b = r.kind, self.build
        if k in _UNARY:
            return _UNARY[k](b(r.items))
        if k == "mul":
            return N.MatMul(*[b(t) for t, _ in r.items])
        if k == "hadamard":
            return N.Hadamard(*axes.broadcast([b(t) for t, _ in r.items]))
        if k == "elemdiv":
            return axes.quotient(b(r.items[0]), b(r.items[1]))  # a written-out softmax is softmax
        if k == "dot":
            return N.Dot(b(r.items[0]), b(r.items[1]))
        method = getattr(self, "_build_" + k, None)
        if method is None:  # pragma: no cover
            raise MatcalcError(f"internal: unknown raw node {k}", r.start, self.source)
        return method(r)

    def _build_num(self, r: Raw) -> N.Node:
        return N.Number(r.items)

    def _build_name(self, r: Raw) -> N.Node:
        name = r.items
        if id(r) in self.identities:
            return self.identity(self.identities[id(r)])
        if name in CONSTANTS and name not in self.decls:
            return N.Pi()
        shape = self.resolve_shape(self.symbol_shapes[name])
        decl = self.decls.get(name)
        return N.Symbol(name, shape, bool(decl and decl.kind == SYMMETRIC))

    def _build_add(self, r: Raw) -> N.Node:
        terms = []
        for sign, t, _ in r.items:
            node = self.build(t)
            terms.append(node if sign > 0 else N.Neg(node))
        return N.Add(*axes.broadcast(terms))

    def _build_div(self, r: Raw) -> N.Node:
        x, s = self.build(r.items[0]), self.build(r.items[1])
        if isinstance(x, N.Number) and isinstance(s, N.Number) and s.value != 0:
            return N.Number(x.value / s.value)
        return N.Div(x, s)

    def _build_power(self, r: Raw) -> N.Node:
        base, exp = self.build(r.items[0]), self.build(r.items[1])
        if base.shape != () and isinstance(exp, N.Number) and exp.value == -1:
            return N.Inv(base)
        return N.Power(base, exp)

    def _build_elempower(self, r: Raw) -> N.Node:
        base, exp = self.build(r.items[0]), self.build(r.items[1])
        if base.shape == exp.shape == () and self.source.startswith("**", r.op):  # NumPy's ** of a scalar is a ^ p
            return N.Power(base, exp)
        return N.ElemPower(base, exp)

    def _build_norm(self, r: Raw) -> N.Node:
        inner, sub = r.items
        return N.Norm(self.build(inner), 1 if sub == "_1" else 2)

    def _build_literal(self, r: Raw) -> N.Node:
        rows = [[self.build(e) for e in row] for row in r.items]
        if len(rows) == 1:
            return rows[0][0] if len(rows[0]) == 1 else N.VectorLit(*rows[0])
        if len(rows[0]) == 1 and rows[0][0].shape != ():  # stacked rows: Σ eᵢ rᵢ, as the printers show it
            k = len(rows)
            units = [N.VectorLit(*[N.Number(1 if j == i else 0) for j in range(k)]) for i in range(k)]
            return N.Add(*[N.MatMul(e, row[0]) for e, row in zip(units, rows, strict=True)])
        return N.MatrixLit(rows)

    def _build_call(self, r: Raw) -> N.Node:
        return self.build_call(r)

    def identity(self, var) -> N.Node:
        """``I`` or ``eye(k)``; a 1x1 identity is the scalar 1 (as ``ones(1)`` is), never a 1x1 matrix."""
        size = self.resolve(var)
        return N.Number(1) if size == 1 else N.Identity(size)

    def build_call(self, r: Raw) -> N.Node:
        fname, args = r.items
        if fname in ("ones", "zeros"):
            shape = self.resolve_shape(self.fills[id(r)])
            return (N.Ones if fname == "ones" else N.Zeros)(shape) if shape != (1, 1) else N.Number(
                1 if fname == "ones" else 0)
        if fname == "eye":
            return self.identity(self.identities[id(r)])
        a = [self.build(x) for x in args]
        if self.decided.get(id(r)) == "scalar":  # tr(s) = s
            return a[0]
        if fname in ELEMENTWISE_ALIASES or fname in _PIECEWISE:
            return self.build_elementwise(r, a)
        if fname in _AXIS_CALLS and not (fname in ("max", "min") and len(a) == 2):
            return axes.BUILDERS[ops.ALIASES[fname]](a[0], self.axes.get(id(r)))
        if fname in ("max", "min"):
            x, y = axes.broadcast(a)
            zero_x = isinstance(x, N.Number) and x.value == 0
            zero_y = isinstance(y, N.Number) and y.value == 0
            if fname == "max":
                if zero_x or zero_y:
                    return N.Apply("relu", y if zero_x else x)
                return N.Add(y, N.Apply("relu", N.Add(x, N.Neg(y))))  # max(a, b) = b + relu(a - b)
            if zero_x or zero_y:
                e = y if zero_x else x
                return N.Neg(N.Apply("relu", N.Neg(e)))  # min(0, e) = -relu(-e)
            return N.Add(x, N.Neg(N.Apply("relu", N.Add(x, N.Neg(y)))))  # min(a, b) = a - relu(a - b)
        op = ops.FUNCTIONS[ops.ALIASES[fname]]
        if op.has_rules and op.node != "DiagMat":  # a call node over its arguments (det, dot, kron ...)
            return getattr(N, op.node)(*a)
        if fname == "norm1":
            return N.Norm(a[0], 1)
        if fname == "diag":
            return N.DiagMat(a[0]) if self.decided[id(r)] == "mat" else N.DiagVec(a[0])
        if fname == "outer":
            return N.MatMul(a[0], N.Transpose(a[1]))
        if fname in ("vector", "matrix"):
            return N.Fill(a[0], self.resolve_shape(self.fills[id(r)]))
        raise MatcalcError(f"internal: unknown function {fname}", r.start, self.source)  # pragma: no cover


    def build_elementwise(self, r: Raw, a: list[N.Node]) -> N.Node:
        """An element-wise function of the catalogue; ``leaky_relu`` and ``clip`` as exact identities in
        relu, as ``max(a, b) = b + relu(a - b)``: their derivatives, code and verification are relu's (a
        step at each kink)."""
        fname, args = r.items
        e = a[0]
        if fname in ELEMENTWISE_ALIASES:
            return N.Apply(ELEMENTWISE_ALIASES[fname], e)
        if fname == "leaky_relu":  # relu(e) - a relu(-e)
            return N.Add(N.Apply("relu", e), N.Neg(N.MatMul(a[1], N.Apply("relu", N.Neg(e)))))
        lo, hi = a[1], a[2]
        low, high = _constant_value(lo), _constant_value(hi)
        if low is not None and high is not None and low > high:
            raise MatcalcError(f"clip() needs its lower bound at most its upper bound; {self.text(args[1])} > "
                               f"{self.text(args[2])}", args[1].start, self.source)
        # clip(e, lo, hi) = lo + relu(e - lo) - relu(e - hi), for lo <= hi
        return N.Add(lo, N.Apply("relu", _minus(e, lo)), N.Neg(N.Apply("relu", _minus(e, hi))))


def _minus(e: N.Node, c: N.Node) -> N.Node:
    """``e - c`` as it reads: ``x + 1`` for c = -1, not ``x - -1``."""
    positive = _negated(c)
    return N.Add(e, positive) if positive is not None else N.Add(e, N.Neg(c))


def _negated(c: N.Node) -> N.Node | None:
    """``-c`` without a minus sign when ``c`` is written with one in front (``-1``, ``-pi/2``), else None."""
    if isinstance(c, N.Number):
        return N.Number(-c.value) if c.value < 0 else None
    if isinstance(c, N.Neg):
        return c.args[0]
    if isinstance(c, (N.Div, N.MatMul)):
        first = _negated(c.args[0])
        return type(c)(first, *c.args[1:]) if first is not None else None
    return None


def _constant_value(node: N.Node) -> float | None:
    """The value of a constant scalar built from numbers and π (``-1``, ``pi/2``), else None."""
    if isinstance(node, N.Number):
        return float(node.value)
    if isinstance(node, N.Pi):
        return math.pi
    parts = [_constant_value(c) for c in node.children] if isinstance(node, (N.Neg, N.MatMul, N.Div)) else [None]
    if None in parts:
        return None
    if isinstance(node, N.Neg):
        return -parts[0]
    if isinstance(node, N.Div):
        return parts[0] / parts[1] if parts[1] else None
    return math.prod(parts)


def _absent_shape(decl: Declaration, used: set) -> tuple:
    """The shape of a declared name that does not occur; a dimension left open gets an unused name."""
    fresh = (p for p in DIM_NAMES if p not in used)
    dims = []
    for d in decl.dims:
        if d is None:
            d = next(fresh, "n0")
            used.add(d)
        dims.append(d if isinstance(d, int) else Dim(d))
    if decl.kind == SCALAR:
        return ()
    return (dims[0], 1) if decl.kind == VECTOR else tuple(dims)


def _inspect_broadcast(c: _Checker, r: Raw, shape) -> None:
    """``W1 x + b1``, ``mu .* x``, ``X' X + λ``: an assumed scalar spread over every entry of a vector or a
    matrix is noted, because users who write it usually mean a vector (or ``λ I``)."""
    if shape == ():
        return
    terms = [t for _, t, _ in r.items] if r.kind == "add" else [t for t, _ in r.items] \
        if r.kind == "hadamard" else list(r.items)
    signs = [sign for sign, _, _ in r.items] if r.kind == "add" else [1] * len(terms)
    verbs = {"add": "added to", "hadamard": "multiplied with", "elemdiv": "spread entry by entry over"}
    for term, sign in zip(terms, signs, strict=True):
        if c.shapes.get(id(term)) != ():
            continue
        verb = verbs[r.kind] if sign > 0 else "subtracted from"
        for name in c.assumed_scalars(term):
            def render(name=name, term=term, verb=verb):
                whole = c.final(shape)
                kind = whole.split("(")[0]
                ridge = f"; for {name} times the identity write '{name} I'" if kind == "matrix" and \
                    r.kind == "add" else ""
                return (f"{name} is taken to be a scalar ({c.why_scalar(name)}) and is {verb} every entry of "
                        f"{c.text(r)}, a {whole}; if {name} is a {kind}, declare it (where {name}: {whole})"
                        f"{ridge}; declare {name}: scalar to keep this reading")
            c.note(term.start, render, (name, "broadcast"))


def _inspect_transpose(c: _Checker, r: Raw, shape) -> None:
    """``beta' x``: transposing a scalar does nothing, so the user probably meant a vector."""
    inner = r.items
    if shape != () or inner.kind == "num":
        return
    names = c.assumed_scalars(inner)
    if inner.kind == "name" and names:
        name = names[0]
        c.note(r.op, lambda: (f"{name} is taken to be a scalar ({c.why_scalar(name)}), and transposing a scalar "
                              f"does nothing; if {name} is a vector, declare it (where {name}: vector(n))"),
               (name, "transpose"))
    elif not _all_declared(c, inner):
        c.note(r.op, lambda: f"{c.text(inner)} is a scalar, and transposing a scalar does nothing")


def _all_declared(c: _Checker, raw: Raw) -> bool:
    stack, seen = [raw], True
    while stack:
        x = stack.pop()
        if isinstance(x, Raw):
            if x.kind == "name":
                seen = seen and (x.items in c.decls or x.items in CONSTANTS)
            elif x.kind != "num":
                stack.append(x.items)
        elif isinstance(x, tuple | list):
            stack.extend(x)
    return seen


def _inspect_power(c: _Checker, r: Raw, shape) -> None:
    """``e^x``: an undeclared ``e`` is an ordinary name (spec, "Constants"), not Euler's number."""
    base, exponent = r.items
    if base.kind == "name" and base.items == "e" and "e" not in c.decls:
        shown = c.text(exponent)
        c.note(base.start, lambda: (
            f"e^{shown} reads e as a variable (a scalar by the letter convention), not Euler's number; write "
            f"exp({shown}) for the exponential function, or declare e (where e: scalar) to keep the variable"))


def _inspect_product(c: _Checker, r: Raw, shape) -> None:
    """``X beta``, ``X θ``: an assumed scalar right after a matrix only scales it, but the texts write a
    scaling factor first; after a matrix the name is almost always a coefficient vector."""
    seen_matrix = None
    for factor, _ in r.items:
        s = c.shapes.get(id(factor))
        if s is not None and s != ():
            seen_matrix = None if c.vec_like(s) else factor  # `A x b`: b scales the vector A x
        elif seen_matrix is not None and factor.kind == "name" and c.assumed_scalars(factor):
            name, matrix = factor.items, seen_matrix

            def render(name=name, matrix=matrix):
                cols = c.final((c.shapes[id(matrix)][1], 1))
                return (f"{name} is taken to be a scalar ({c.why_scalar(name)}), so {c.text(matrix)} {name} scales "
                        f"the matrix {c.text(matrix)}; if {name} is a vector ({c.text(matrix)} times a vector), "
                        f"declare it (where {name}: {cols})")
            c.note(factor.start, render, (name, "scales"))


_INSPECTED = {"add": _inspect_broadcast, "mul": _inspect_product, "hadamard": _inspect_broadcast,
              "elemdiv": _inspect_broadcast, "transpose": _inspect_transpose, "power": _inspect_power,
              "elempower": _inspect_power}


def _scalar_hints(c: _Checker, message: str) -> list[str]:
    """For a shape error: which names in it are scalars only by assumption (``y - X beta`` fails because
    the letter convention makes the Greek beta a scalar)."""
    import re

    hints = []
    for name in c.order:
        if name in c.decls or name in CONSTANTS or c.kinds.get(name) != SCALAR:
            continue
        if re.search(rf"(?<![\w\u0370-\u03ff]){re.escape(name)}(?![\w\u0370-\u03ff])", message):
            hints.append(f"{name} is taken to be a scalar ({c.why_scalar(name)}); if it is a vector or a matrix, "
                         f"declare it (where {name}: vector(n))")
    return hints


def _merge_declarations(source: str, where, python: dict) -> dict[str, Declaration]:
    decls: dict[str, Declaration] = {}
    for name, value in python.items():
        check_name(name)
        decls[name] = parse_declaration(value, name)
    for names, (kname, kpos, dims) in where:
        decl = _kind_from_parts(kname, kpos, dims, source)
        for name, pos in names:
            check_name(name, position=pos, source=source)
            old = decls.get(name)
            if old is not None and (old.kind, old.dims) != (decl.kind, decl.dims):
                raise DeclarationError(
                    f"{name} is declared twice: as {old.describe()} and as {decl.describe()}", pos, source)
            decls[name] = Declaration(decl.kind, decl.dims, pos)
    return decls


def typecheck(source: str, **declarations) -> N.Node:
    """Parse ``source`` and return its typed AST, silently (printers use it to test a round trip)."""
    return analyse(source, declarations)[0]


def analyse(source: str, declarations: dict) -> tuple[N.Node, Assumptions]:
    """Parse ``source``: its typed AST and what was assumed about its names (the implementation of
    :func:`matcalc.parse`; the notes in the assumptions are not issued as warnings here)."""
    with deep_recursion():
        raw, where = parse_raw(source)
        decls = _merge_declarations(source, where, declarations)
        checker = _Checker(source, decls)
        checker.collect(raw)
        try:
            checker.check(raw)
            checker.name_dims()
            return checker.build(raw), checker.assumptions()
        except ShapeError as exc:
            # `x'Ax + x` fails on shapes because Ax is one name: say so in the error
            early = [render() for _, render in checker.notes[:checker.early]] + _scalar_hints(checker, exc.message)
            if early:
                exc.message += "; note: " + "; ".join(early)
                exc.args = (exc.message,)
            raise exc.located(raw.start, source) from None
        except RecursionError:  # pragma: no cover - guarded by MAX_DEPTH
            from .errors import NestingError

            raise NestingError("the expression is nested too deeply", raw.start, source) from None
