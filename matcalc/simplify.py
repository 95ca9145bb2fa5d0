"""The simplifier: smart constructors that build expressions already in the form a textbook prints.

Each constructor (``add``, ``mul``, ``had``, ``transpose`` ...) builds its node in two stages, so the
differentiation rules can be written naively (``diag(f'(u)) du``) and still come out as ``f'(u) ⊙ du``;
:func:`simplify` rebuilds a whole expression through them.

1. **Canonical form**, in the constructor: a sum is flattened, zeros dropped, like terms collected over
   the whole sum (``2y + 2(-y) -> 0``) and constants folded; a product folds numbers and signs into one
   leading coefficient and puts scalar factors before the matrix chain; an element-wise product is split
   into numerator and denominator factors.
2. **Rules**, as data: ``RULES[kind]`` is the list of named :class:`Rule` s of one node type, each with a
   ``before`` and ``after`` example, and one driver (:func:`rewrite`, :func:`rewrite_all`) applies the
   first that fits until none does. tests/test_simplify.py checks each rule on its example and checks
   that it keeps the value. Print the table with ``{k: [r.name for r in v] for k, v in RULES.items()}``.

Negation is canonical as a leading negative number (``-2 Uᵀ R``), or a ``Neg`` when the factor is -1.
All constructors memoise through the hash-consed nodes, so shared subexpressions stay shared.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from . import nodes as N
from .budget import checkpoint
from .nodes import Node
from .shapes import is_column, is_row
from .visit import Transformer

ZERO = N.Number(0)
ONE = N.Number(1)


# --- the rules, as data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A named rewrite of one node type, kept in ``RULES[kind]`` in the order they are tried.

    ``fn`` receives what the constructor of ``kind`` is building (the operands of a unary node, the term
    list of a sum, an adjacent pair of a product's factors, the numerator and denominator factors of an
    element-wise product) and returns the rewritten form, or None when the rule does not apply.
    ``before`` and ``after`` are an example in the input language; tests/test_simplify.py checks each.
    """

    kind: str
    name: str
    before: str
    after: str
    fn: Callable

    def __repr__(self) -> str:
        return f"<Rule {self.kind}: {self.name}>"


#: every rewrite, one list per node type, in the order the driver tries them
RULES: dict[str, list[Rule]] = {}


def rule(kind: str, name: str, before: str, after: str):
    """Register ``fn`` as the next rule of ``kind`` (the registry is plain data: ``RULES[kind]``)."""
    def register(fn):
        RULES.setdefault(kind, []).append(Rule(kind, name, before, after, fn))
        return fn
    return register


def rewrite(kind: str, *operands):
    """The one driver: the result of the first rule of ``kind`` that applies to ``operands``, or None."""
    for r in RULES.get(kind, ()):
        out = r.fn(*operands)
        if out is not None:
            return out
    return None


def rewrite_all(kind: str, state: tuple) -> tuple:
    """Apply the rules of ``kind`` to ``state`` until none applies; a state seen before ends it too, so two
    rules that undo each other (expanding and factoring) cannot loop."""
    seen = set()
    while state not in seen:
        seen.add(state)
        out = rewrite(kind, state)
        if out is None:
            break
        state = out
    return state


# --- predicates and coefficients ----------------------------------------------------------------------
def is_zero(x: Node) -> bool:
    return isinstance(x, N.Zeros) or (isinstance(x, N.Number) and x.value == 0)


def is_number(x: Node, value=None) -> bool:
    return isinstance(x, N.Number) and (value is None or x.value == value)


def zero_like(shape) -> Node:
    return ZERO if shape == () else N.Zeros(shape)


def split_coeff(x: Node) -> tuple[Fraction, Node | None]:
    """``x = c * core`` with a rational ``c``; ``core`` is None for a pure number."""
    if isinstance(x, N.Number):
        return x.value, None
    if isinstance(x, N.Neg):
        c, core = split_coeff(x.args[0])
        return -c, core
    if isinstance(x, N.MatMul) and isinstance(x.args[0], N.Number):
        rest = x.args[1:]
        return x.args[0].value, (rest[0] if len(rest) == 1 else N.MatMul(*rest))
    return _UNIT, x


#: The coefficient of a node without one (shared: Fractions are immutable; ``c is _UNIT`` skips the
#: multiplication in the long products of deep Hessians).
_UNIT = Fraction(1)


def scale(c, core: Node | None) -> Node:
    """``c * core`` in canonical form (a leading positive number; negation outside as ``Neg``)."""
    c = Fraction(c)
    if core is None:
        return N.Number(c)
    if c == 0:
        return zero_like(core.shape)
    if c == 1:
        return core
    if c == -1:
        flipped = _flip_difference(core)
        return flipped if flipped is not None else N.Neg(core)
    if isinstance(core, N.MatMul):
        return N.MatMul(N.Number(c), *core.args)
    return N.MatMul(N.Number(c), core)


def _flip_difference(core: Node) -> Node | None:
    """``-(Xᵀ (y - s)) -> Xᵀ (s - y)``: a product negated by -1 absorbs the sign into its difference."""
    if isinstance(core, N.Div):
        top = _flip_difference(core.args[0]) if not isinstance(core.args[0], N.Add) else (
            N.Add(core.args[0].args[1].args[0], N.Neg(core.args[0].args[0]))
            if len(core.args[0].args) == 2 and isinstance(core.args[0].args[1], N.Neg)
            and not isinstance(core.args[0].args[0], N.Neg) else None)
        return None if top is None else N.Div(top, core.args[1])
    if not isinstance(core, N.MatMul):
        return None
    for i, f in enumerate(core.args):
        if sum(_row_sum(g) is f for g in core.args) > 1:  # (x - y)(x - y)ᵀ: flipping one would hide a sign
            continue
        if isinstance(f, N.Add) and len(f.args) == 2 and isinstance(f.args[1], N.Neg) \
                and not isinstance(f.args[0], N.Neg) and not (len(f.shape) == 2 and f.shape[0] == f.shape[1]
                                                              and f.shape[0] != 1 and _self_transpose(f)):
            # a symmetric difference (diag(s) - s sᵀ) keeps its orientation: flipped, it would hide that it
            # is the same matrix as the other factors and terms that contain it
            flipped = N.Add(f.args[1].args[0], N.Neg(f.args[0]))
            return N.MatMul(*core.args[:i], flipped, *core.args[i + 1:])
    return None


def neg(x: Node) -> Node:
    if isinstance(x, N.Zeros):
        return x
    c, core = split_coeff(x)
    return scale(-c, core)


# --- sums -----------------------------------------------------------------------------------------------
def _broadcast_shape(terms) -> tuple:
    shape: tuple = ()
    for t in terms:
        if t.shape != ():
            shape = t.shape
    return shape


def add(*terms: Node) -> Node:
    """A sum in canonical form: flattened, like terms collected, constants folded; then the ``Add`` rules
    (on the list of terms), then a negative term written as a subtraction."""
    checkpoint()
    shape = _broadcast_shape(terms)
    out = list(rewrite_all("Add", tuple(_collect(terms))))
    if not out:
        return zero_like(shape)
    if len(out) == 1:
        t = out[0]
        return mul(t, N.Ones(shape)) if t.shape == () and shape != () else t
    # a negative term of a sum is a Neg ("a - 2 b" reads, and parses, as written)
    out = [N.Neg(scale(-split_coeff(t)[0], split_coeff(t)[1])) if _negative_scaled(t) else t for t in out]
    # put a negated first term later when another term can lead ("-a + b" -> "b - a")
    if isinstance(out[0], N.Neg):
        for i, t in enumerate(out):
            if not isinstance(t, N.Neg):
                out.insert(0, out.pop(i))
                break
    if shape != () and all(t.shape == () for t in out):  # the non-scalar terms cancelled: keep the shape
        return mul(N.Add(*out), N.Ones(shape))
    return N.Add(*out)


def _negative_scaled(t: Node) -> bool:
    c, core = split_coeff(t)
    return core is not None and c < 0 and not isinstance(t, N.Neg)


def _flatten_terms(terms) -> list[Node]:
    """The terms of nested sums, with ``c (a + b)`` distributed and zeros dropped."""
    flat: list[Node] = []
    stack = list(reversed(terms))
    while stack:
        t = stack.pop()
        if isinstance(t, N.Add):
            stack.extend(reversed(t.args))
            continue
        c, core = split_coeff(t)
        if isinstance(core, N.Add) and c != 1:  # c (a + b) in a sum: its terms join the sum
            stack.extend(reversed([scale(c * split_coeff(a)[0], split_coeff(a)[1]) for a in core.args]))
        elif not is_zero(t):
            flat.append(t)
    return flat


def _collect(terms) -> list[Node]:
    """Like terms collected over the whole sum (``2y + 2(-y) -> 0``) and the constants folded into one."""
    constant = Fraction(0)
    coeffs: dict[Node, Fraction] = {}
    for t in _flatten_terms(terms):
        c, core = split_coeff(t)
        if core is None:
            constant += c
        else:
            coeffs[core] = coeffs.get(core, Fraction(0)) + c
    out = [scale(c, core) for core, c in coeffs.items() if c != 0]
    if constant != 0:  # "σ - 1", not "σ + -1"
        out.append(N.Number(constant) if constant > 0 or not out else N.Neg(N.Number(-constant)))
    return out


@rule("Add", "common divisor", "a / N - b / N", "(a - b) / N")
def _common_divisor(terms: tuple) -> tuple | None:
    """``a / N - b / N -> (a - b) / N``, so the numerators can cancel."""
    groups: dict[Node, list[int]] = {}
    for i, t in enumerate(terms):
        c, core = split_coeff(t)
        if isinstance(core, N.Div):
            groups.setdefault(core.args[1], []).append(i)
    for denom, members in groups.items():
        if len(members) < 2:
            continue
        nums = [scale(split_coeff(terms[i])[0], split_coeff(terms[i])[1].args[0]) for i in members]
        cs = [split_coeff(t)[0] for t in nums]
        common = cs[0] if all(abs(c) == abs(cs[0]) for c in cs) else (
            Fraction(-1) if all(c < 0 for c in cs) else Fraction(1))  # -2 (a + b) / N, not (-2 a - 2 b) / N
        nums = [scale(1 / common, t) for t in nums] if common not in (0, 1) else nums
        combined = scale(common, div(add(*nums), denom))
        rest = [t for j, t in enumerate(terms) if j not in members]
        rest.insert(members[0], combined)
        return tuple(t for t in rest if not is_zero(t))
    return None


@rule("Add", "merge diagonals", "diag(x) + 2 diag(y)", "diag(x + 2 y)")
def _merge_diagonals(terms: tuple) -> tuple | None:
    """``diag(a) + diag(b) -> diag(a + b)`` (scaled diagonals too)."""
    idx = [i for i, t in enumerate(terms) if isinstance(split_coeff(t)[1], N.DiagMat)]
    if len(idx) < 2:
        return None
    inner = add(*[scale(split_coeff(terms[i])[0], split_coeff(terms[i])[1].args[0]) for i in idx])
    merged = diagmat(inner)
    rest = [t for j, t in enumerate(terms) if j not in idx]
    rest.insert(idx[0], merged)
    return tuple(t for t in rest if not is_zero(t))


@rule("Add", "common element-wise factor", "x .* p + y .* p", "(x + y) .* p")
def _factor_hadamard(terms: tuple) -> tuple | None:
    """``a ⊙ p + b ⊙ p -> (a + b) ⊙ p`` for a common element-wise factor ``p``."""
    if len(terms) < 2:
        return None
    counts: dict[Node, list[int]] = {}
    for i, t in enumerate(terms):
        c, core = split_coeff(t)
        if isinstance(core, N.Hadamard):
            for f in dict.fromkeys(core.args):  # in order: a set of nodes iterates by address
                counts.setdefault(f, []).append(i)
    for f, members in counts.items():
        if len(members) < 2 or len(members) != len(terms) and len(members) < 2:
            continue
        rests = []
        for i in members:
            c, core = split_coeff(terms[i])
            others = list(core.args)
            others.remove(f)
            rests.append(scale(c, others[0] if len(others) == 1 else N.Hadamard(*others)))
        combined = had(add(*rests), f)
        new = [t for j, t in enumerate(terms) if j not in members]
        new.insert(members[0], combined)
        return tuple(t for t in new if not is_zero(t))
    return None


def _chain(t: Node) -> tuple[Fraction, list[Node]]:
    c, core = split_coeff(t)
    if core is None:
        return c, []
    return c, list(core.args) if isinstance(core, N.MatMul) else [core]


@rule("Add", "common matrix factor", "A x + A' x", "(A + A') x")
def _factor_common(terms: tuple) -> tuple | None:
    """Factor a common last factor (``A x + B x -> (A + B) x``), else a common first factor."""
    if len(terms) < 2:
        return None
    # a scalar term of a vector or matrix sum is broadcast, not a product with the others' shape: in
    # x + x' A x + B x, the x of x' A x is not a common right factor of B x
    full = next((t.shape for t in terms if t.shape != ()), ())
    for side in (-1, 0):
        groups: dict[Node, list[int]] = {}
        for i, t in enumerate(terms):
            c, ch = _chain(t)
            if t.shape != full:
                continue
            if len(ch) >= 2 and ch[side].shape != () and not (side == 0 and ch[0].shape == ()):
                groups.setdefault(ch[side], []).append(i)
        for key, members in groups.items():
            if len(members) < 2:
                continue
            # the smallest coefficient comes out, a positive one first: 2 (u G u - 2 D), not -4 (D - 0.5 u G u)
            c0 = min((_chain(terms[i])[0] for i in members), key=lambda c: (abs(c), c < 0))
            rests = []
            for i in members:
                c, ch = _chain(terms[i])
                rest = ch[:-1] if side == -1 else ch[1:]
                rests.append(scale(c / c0, mul(*rest)))
            if any(r.shape != () for r in rests):
                # A B + 2a B = (A + 2a I) B: next to matrices, a scalar cofactor is a multiple of I
                size = key.shape[0] if side == -1 else key.shape[1]
                rests = [mul(r, N.Identity(size)) if r.shape == () else r for r in rests]
            inner = add(*rests)
            combined = mul(inner, key) if side == -1 else mul(key, inner)
            combined = scale(c0, combined) if not is_zero(combined) else combined
            new = [t for j, t in enumerate(terms) if j not in members]
            new.insert(members[0], combined)
            new = [t for t in new if not is_zero(t)]
            if _hides_symmetry(terms, new):
                continue
            return tuple(new)
    return None


#: Set while a Hessian is written as a symmetric expression (:func:`keeping_symmetry`): only then does the
#: common-factor rule refuse to hide a symmetry. Elsewhere (the intermediate sums of a forward Jacobian)
#: factoring keeps expressions small, which matters more than their look.
_KEEP_SYMMETRY: contextvars.ContextVar[bool] = contextvars.ContextVar("keep_symmetry", default=False)


@contextlib.contextmanager
def keeping_symmetry():
    """Within this block, a symmetric sum is not factored into a product that hides its symmetry."""
    token = _KEEP_SYMMETRY.set(True)
    try:
        yield
    finally:
        _KEEP_SYMMETRY.reset(token)


def _hides_symmetry(before, after) -> bool:
    """Whether factoring would turn a sum that shows its symmetry (``2 S x xᵀ S + 2 c S``, each term its own
    transpose or paired with it) into one that hides it (``(2 S x xᵀ + 2 c I) S``): a symmetric matrix is
    printed as a symmetric expression (the Hessians of issue #16)."""
    if not _KEEP_SYMMETRY.get() or len(before) < 2 or before[0].shape == () \
            or before[0].shape[0] != before[0].shape[1] or any(t.shape != before[0].shape for t in before):
        return False
    if not _self_transpose(N.Add(*before)):
        return False
    return not _self_transpose(after[0] if len(after) == 1 else N.Add(*after))


@rule("Add", "common scalar factor", "a b A + a b A'", "a b (A + A')")
def _factor_scalars(terms: tuple) -> tuple | None:
    """``c A + c Aᵀ -> c (A + Aᵀ)`` for the same scalar factors (not numbers) of matrix or vector terms."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(terms):
        core = split_coeff(t)[1]
        if isinstance(core, N.MatMul) and core.shape != ():
            lead = tuple(f for f in core.args if f.shape == ())
            if lead:
                groups.setdefault(lead, []).append(i)
    for lead, members in groups.items():
        if len(members) < 2:
            continue
        rests = []
        for i in members:
            c, core = split_coeff(terms[i])
            rests.append(scale(c, mul(*[f for f in core.args if f.shape != ()])))
        combined = mul(*lead, add(*rests))
        rest = [t for j, t in enumerate(terms) if j not in members]
        rest.insert(members[0], combined)
        return tuple(t for t in rest if not is_zero(t))
    return None


@rule("Add", "one sum of the sums", "sum(x) - sum(y) where x, y: vector(n)", "sum(x - y) where x, y: vector(n)")
def _merge_sums(terms: tuple) -> tuple | None:
    """``sum(a) - 2 sum(b) -> sum(a - 2 b)`` for sums of one shape (the bias gradient ``sum(σ - y)``)."""
    idx = [i for i, t in enumerate(terms) if isinstance(split_coeff(t)[1], N.Sum)]
    shapes = {split_coeff(terms[i])[1].args[0].shape for i in idx}
    if len(idx) < 2 or len(shapes) != 1:
        return None
    merged = ssum(add(*[scale(split_coeff(terms[i])[0], split_coeff(terms[i])[1].args[0]) for i in idx]))
    rest = [t for j, t in enumerate(terms) if j not in idx]
    rest.insert(idx[0], merged)
    return tuple(t for t in rest if not is_zero(t))


@rule("Add", "a matrix before its transpose", "A' + A", "A + A'")
def _matrix_first(terms: tuple) -> tuple | None:
    """``Aᵀ + A -> A + Aᵀ``, the order of the texts (``(A + Aᵀ)/2``, ``X (A + Aᵀ)``)."""
    for i, t in enumerate(terms):
        c, core = split_coeff(t)
        if isinstance(core, N.Transpose):
            for j in range(i + 1, len(terms)):
                cj, other = split_coeff(terms[j])
                if other is core.args[0] and cj == c:
                    out = list(terms)
                    out[i], out[j] = out[j], out[i]
                    return tuple(out)
    return None


@rule("Add", "expand element-wise products", "y .* (1 - s) - (1 - y) .* s", "y - s")
def _expand_when_shorter(terms: tuple) -> tuple | None:
    """Multiply out products of sums when the expanded, collected sum has fewer nodes."""
    if len(terms) < 2 or not any(_expandable(t) for t in terms):
        return None
    room = [MAX_EXPANDED_TERMS]
    try:
        expanded = tuple(_collect([e for t in terms for e in _expand(t, room)]))
    except _TooManyTerms:  # multiplying out would unshare the DAG (nested min/max): keep the product
        return None
    if _size(expanded) < _size(terms):
        return expanded
    return None


#: The most terms multiplying out may produce. Expanding s ⊙ (a + b) pays when terms cancel; expanding a
#: product of sums that are themselves products of sums (nested min, max, relu) would copy the shared
#: inner sums into every term, exponentially in the depth: past this many terms the product is kept.
MAX_EXPANDED_TERMS = 8


class _TooManyTerms(Exception):
    pass


def _size(terms: tuple) -> int:
    return N.count_nodes(N.Add(*terms)) if len(terms) > 1 else (N.count_nodes(terms[0]) if terms else 0)


def _expandable(t: Node) -> bool:
    c, core = split_coeff(t)
    if isinstance(core, N.MatMul) and core.shape == () and all(f.shape == () for f in core.args):
        return any(isinstance(f, N.Add) for f in core.args)  # scalars: y (σ - 1)
    if isinstance(core, N.MatMul) and core.shape == () and len(core.args) == 2 and is_row(core.args[0].shape):
        return any(isinstance(_row_sum(f), N.Add) for f in core.args)  # (1 - y)ᵀ σ
    return isinstance(core, N.Hadamard) and any(isinstance(f, N.Add) for f in core.args)


def _row_sum(f: Node) -> Node:
    """The sum a factor stands for: ``(a + b)ᵀ`` is the sum ``a + b`` read as a row."""
    return f.args[0] if isinstance(f, N.Transpose) else f


def _expand(t: Node, room: list[int]) -> list[Node]:
    """The terms of an element-wise product of sums, multiplied out; ``room`` counts down the terms left."""
    c, core = split_coeff(t)
    if not _expandable(t):
        room[0] -= 1
        if room[0] < 0:
            raise _TooManyTerms
        return [t]
    factors = list(core.args)
    if isinstance(core, N.MatMul) and core.shape == () and is_row(factors[0].shape):  # a dot product uᵀ v
        i = next(k for k, f in enumerate(factors) if isinstance(_row_sum(f), N.Add))
        whole = factors[i]
        out = []
        for term in _row_sum(whole).args:
            term = mul(term, N.Ones(_row_sum(whole).shape)) if term.shape == () else term
            piece = transpose(term) if whole is not _row_sum(whole) else term
            out.extend(_expand(scale(c, mul(*factors[:i], piece, *factors[i + 1:])), room))
        return out
    i = next(k for k, f in enumerate(factors) if isinstance(f, N.Add))
    out = []
    combine = mul if isinstance(core, N.MatMul) else had
    for term in factors[i].args:
        piece = combine(*factors[:i], term, *factors[i + 1:]) if term.shape != () or len(factors) > 1 else term
        out.extend(_expand(scale(c, piece), room))
    return out


# --- products ---------------------------------------------------------------------------------------------
def _is_ones_row(x):
    return isinstance(x, N.Ones) and is_row(x.shape)


def _is_ones_col(x):
    return isinstance(x, N.Ones) and is_column(x.shape)


def _pair(a: Node, b: Node) -> list[Node] | None:
    """A rewrite of the adjacent factors ``a b`` of a product (the ``MatMul`` rules), or None."""
    return rewrite("MatMul", a, b)


@rule("MatMul", "identity on the left", "I A", "A")
def _identity_left(a, b):
    return [b] if isinstance(a, N.Identity) and b.shape != () else None


@rule("MatMul", "identity on the right", "A I", "A")
def _identity_right(a, b):
    return [a] if isinstance(b, N.Identity) and a.shape != () else None


@rule("MatMul", "ones row times a diagonal", "ones(n)' diag(x)", "x'")
def _ones_row_diag(a, b):
    return [transpose(b.args[0])] if _is_ones_row(a) and isinstance(b, N.DiagMat) else None


@rule("MatMul", "diagonal times ones", "diag(x) ones(n)", "x")
def _diag_ones(a, b):
    return [a.args[0]] if isinstance(a, N.DiagMat) and _is_ones_col(b) else None


@rule("MatMul", "product of diagonals", "diag(x) diag(y)", "diag(x .* y)")
def _diag_diag(a, b):
    return [diagmat(had(a.args[0], b.args[0]))] if isinstance(a, N.DiagMat) and isinstance(b, N.DiagMat) else None


@rule("MatMul", "diagonal times a vector", "diag(x) y", "x .* y")
def _diag_vector(a, b):
    return [had(a.args[0], b)] if isinstance(a, N.DiagMat) and is_column(b.shape) else None


@rule("MatMul", "row times a diagonal", "x' diag(y)", "(y .* x)'")
def _row_diag(a, b):
    return [transpose(had(b.args[0], transpose(a)))] if is_row(a.shape) and isinstance(b, N.DiagMat) else None


@rule("MatMul", "ones row times a vector", "ones(n)' x", "sum(x)")
def _ones_row_vector(a, b):
    return [ssum(b)] if _is_ones_row(a) and is_column(b.shape) else None


@rule("MatMul", "row times ones", "x' ones(n)", "sum(x)")
def _row_ones(a, b):
    return [ssum(a)] if is_row(a.shape) and _is_ones_col(b) else None


@rule("MatMul", "one orientation of a difference", "(y - x) (x - y)'", "-((x - y) (x - y)')")
def _one_orientation(a, b):
    """``(y - x)(x - y)ᵀ -> -(x - y)(x - y)ᵀ``: the sign goes to the front instead of hiding in a difference."""
    u, v = _row_sum(a), _row_sum(b)
    if not (isinstance(u, N.Add) and isinstance(v, N.Add)) or u is v:
        return None
    if neg(u) is not v and add(*[neg(t) for t in u.args]) is not v:
        return None
    flipped = v if a is u else transpose(v)
    return [N.Neg(N.MatMul(flipped, b))]


def _centred(v: Node) -> bool:
    """``u - mean(u)`` (a vector whose entries sum to 0)."""
    if not isinstance(v, N.Add) or len(v.args) != 2 or not is_column(v.shape):
        return False
    a, b = v.args
    c, m = split_coeff(b)
    return c == -1 and isinstance(m, N.Mean) and m.args[0] is a


def _centring_sign(m: Node) -> int | None:
    """+1 for the centring matrix ``I - 𝟙𝟙ᵀ/n``, -1 for its negation, None for anything else."""
    if not isinstance(m, N.Add) or len(m.args) != 2:
        return None
    signs = {}
    for t in m.args:
        c, core = split_coeff(t)
        if isinstance(core, N.Identity):
            signs["I"] = c
        elif (isinstance(core, N.Div) and isinstance(core.args[1], N.Numel) and isinstance(core.args[0], N.MatMul)
              and len(core.args[0].args) == 2 and _is_ones_col(core.args[0].args[0])
              and _is_ones_row(core.args[0].args[1]) and core.args[1].args[0].shape == core.args[0].args[0].shape):
            signs["J"] = c
    if signs.get("I") in (1, -1) and signs.get("J") == -signs["I"]:
        return int(signs["I"])
    return None


@rule("MatMul", "a centred vector and the centring matrix",
      "(x - mean(x))' (eye(n) - ones(n) ones(n)' / numel(x))", "(x - mean(x))'")
def _centring(a, b):
    """``uᵀ (I - 𝟙𝟙ᵀ/n) = uᵀ`` when ``u = x - mean(x)`` (its entries sum to 0): the layer-norm Jacobian."""
    if is_row(a.shape) and isinstance(a, N.Transpose) and _centred(a.args[0]):
        sign = _centring_sign(b)
        if sign is not None:
            return [scale(sign, a)]
    if is_column(b.shape) and _centred(b):
        sign = _centring_sign(a)
        if sign is not None:
            return [scale(sign, b)]
    return None


def _product_factors(z: Node) -> tuple[list[Node], list[Node]]:
    """The scalar and the matrix factors of a product, through nested products and scalar divisors
    (a divisor ``s`` is the scalar factor ``Div(1, s)``; only the matrix factors' order matters)."""
    if isinstance(z, N.MatMul):
        scalars, matrices = [], []
        for f in z.args:
            s_, m_ = _product_factors(f)
            scalars += s_
            matrices += m_
        return scalars, matrices
    if isinstance(z, N.Div):
        s_, m_ = _product_factors(z.args[0])
        return [*s_, N.Div(ONE, z.args[1])], m_
    return ([z], []) if z.shape == () else ([], [z])


def _counts(s: Node, k) -> bool:
    """``s`` is the number ``k`` of entries a row mean divides by (``k`` or ``numel`` of a length-k vector)."""
    if isinstance(s, N.Number):
        return s.value == k
    return isinstance(s, N.Numel) and s.args[0].shape in ((k, 1), (1, k))


def _is_ones_row_of(row: Node, ones: Node) -> bool:
    return _is_ones_row(row) or isinstance(row, N.Transpose) and row.args[0] is ones


def _mean_of(c: Fraction, z: Node, rows: bool) -> Node | None:
    """``Y`` when ``c z = -(Y 𝟙 𝟙ᵀ) / k`` (``rows``: each row of ``Y`` replaced by minus its mean) or
    ``c z = -(𝟙 𝟙ᵀ Y) / k`` (columns), in any grouping, with ``k`` a number (``c = -1/k``) or a size
    (``c = -1`` and a divisor ``numel(𝟙)``); else None."""
    scalars, matrices = _product_factors(z)
    if len(matrices) < 3:
        return None
    ones, row = matrices[-2:] if rows else matrices[:2]
    if not (_is_ones_col(ones) and _is_ones_row_of(row, ones)):
        return None
    k = ones.shape[0]
    by_number = not scalars and isinstance(k, int) and c == Fraction(-1, k)
    by_size = (c == -1 and len(scalars) == 1 and isinstance(scalars[0], N.Div)
               and is_number(scalars[0].args[0], 1) and _counts(scalars[0].args[1], k))
    if not (by_number or by_size):
        return None
    rest = matrices[:-2] if rows else matrices[2:]
    return rest[0] if len(rest) == 1 else N.MatMul(*rest)


def _sums_to_zero(x: Node, rows: bool) -> bool:
    """Each row (``rows``) or column of ``x`` provably sums to 0: a matrix minus its row (column) means
    (``X - (X 𝟙 𝟙ᵀ)/k``), scaled, negated, or multiplied or divided entry by entry by a matrix constant
    along its rows, ``c 𝟙ᵀ`` (columns: ``𝟙 rᵀ``)."""
    if isinstance(x, N.Neg) or isinstance(x, N.Div) and x.args[1].shape == ():
        return _sums_to_zero(x.args[0], rows)
    if isinstance(x, N.MatMul):
        c, core = split_coeff(x)
        return c != 1 and core is not None and _sums_to_zero(core, rows)
    if isinstance(x, N.Add):
        if len(x.args) == 2:
            c, z = split_coeff(x.args[1])
            if z is not None and _mean_of(c, z, rows) is x.args[0]:
                return True
        return all(_sums_to_zero(t, rows) for t in x.args)
    if isinstance(x, N.Hadamard | N.ElemDiv):
        candidates = x.args if isinstance(x, N.Hadamard) else x.args[:1]
        zero = next((f for f in candidates if _sums_to_zero(f, rows)), None)
        return zero is not None and all(f is zero or f.shape == () or _constant_along(f, rows) for f in x.args)
    return False


def _rows_sum_to_zero(x: Node) -> bool:
    """Each row of ``x`` provably sums to 0 (see :func:`_sums_to_zero`)."""
    return _sums_to_zero(x, True)


def _constant_along(f: Node, rows: bool) -> bool:
    """``c 𝟙ᵀ`` (``rows``: every row of ``f`` is one number repeated) or ``𝟙 rᵀ`` (every column)."""
    _, matrices = _product_factors(f)
    if len(matrices) < 2:
        return False
    if rows:
        last = matrices[-1]
        return _is_ones_row(last) or isinstance(last, N.Transpose) and _is_ones_col(last.args[0])
    return _is_ones_col(matrices[0])


def _without_zero_sums(a: Node, ones_shape, rows: bool) -> Node | None:
    """``a`` (multiplied by 𝟙 on the side of ``rows``) without its terms that sum to zero there: the zero
    vector if all do, the rest of the sum if some do, None if none does."""
    if _sums_to_zero(a, rows):
        return N.Zeros(ones_shape)
    if isinstance(a, N.Add):
        kept = [t for t in a.args if not _sums_to_zero(t, rows)]
        if len(kept) < len(a.args):
            return add(*kept) if kept else N.Zeros(ones_shape)
    return None


@rule("MatMul", "rows that sum to zero", "(X - (X ones(3) ones(3)') / 3) ones(3)", "zeros(n)")
def _rows_sum_zero(a, b):
    """A centred matrix (layer norm's ``x̂``, and its products with row-constant factors) times ``𝟙`` is 0;
    in a sum times ``𝟙``, the centred terms drop out. Without it layer norm's gradient keeps a term that is
    zero only because the rows of ``x̂`` sum to 0 (issue #19: slower code and an unreadable form)."""
    if not (_is_ones_col(b) and a.shape != () and not is_column(a.shape)):
        return None
    out = _without_zero_sums(a, (a.shape[0], 1), True)
    return None if out is None else [out] if isinstance(out, N.Zeros) else [out, b]


@rule("MatMul", "columns that sum to zero", "ones(3)' (X - ones(3) ones(3)' X / 3)", "zeros(1, n)")
def _columns_sum_zero(a, b):
    """The same down the columns: ``𝟙ᵀ (X - 𝟙 𝟙ᵀ X / m) = 0``, batch norm's centred columns."""
    if not (_is_ones_row(a) and b.shape != () and not is_row(b.shape)):
        return None
    out = _without_zero_sums(b, (1, b.shape[1]), False)
    return None if out is None else [out] if isinstance(out, N.Zeros) else [a, out]


@rule("MatMul", "inverse times its matrix", "inv(A) A", "I")
def _inverse_pair(a, b):
    if isinstance(a, N.Inv) and a.args[0] is b or isinstance(b, N.Inv) and b.args[0] is a:
        return [N.Identity(a.shape[0])]
    return None


def _scalar_of_nonscalars(m: N.MatMul) -> bool:
    """``xᵀ A x``: a scalar product of vectors and matrices, which must stay one factor in a longer product."""
    return m.shape == () and any(f.shape != () for f in m.args)


def _split_factors(factors) -> tuple[Fraction, list[Node], list[Node]] | None:
    """A product's factors as (coefficient, scalar factors, matrix chain), nested products flattened;
    None when a factor is zero."""
    coeff = Fraction(1)
    scalars: list[Node] = []
    chain: list[Node] = []
    several = sum(f.shape != () for f in factors) > 1  # a vector quotient next to matrices leaves the chain
    stack = list(reversed(factors))
    while stack:
        f = stack.pop()
        c, core = split_coeff(f)
        coeff *= c
        if core is None:
            continue
        if isinstance(core, N.MatMul) and not _scalar_of_nonscalars(core):
            stack.extend(reversed(core.args))
        elif is_zero(core):
            return None
        elif isinstance(core, N.Div) and core.shape != () and several:  # K (q / s) = (K q) / s
            stack.append(core.args[0])
            scalars.append(N.Div(ONE, core.args[1]))
        else:
            (scalars if core.shape == () else chain).append(core)
    return coeff, scalars, chain


def _pairs_rewritten(coeff: Fraction, scalars: list[Node], chain: list[Node]):
    """The ``MatMul`` rules on adjacent factors until none applies; a rewrite may produce scalars
    (``1ᵀ x -> sum(x)``), coefficients or products, which are split off again."""
    changed = True
    while changed and len(chain) > 1:
        changed = False
        for i in range(len(chain) - 1):
            rep = _pair(chain[i], chain[i + 1])
            if rep is not None:
                chain[i:i + 2] = rep
                changed = True
                break
        c, more, chain = _split_factors(chain) or (0, [], [])
        coeff *= c
        scalars = scalars + more
    return coeff, scalars, chain


def mul(*factors: Node) -> Node:
    """A product in canonical form: one leading coefficient, scalar factors first, the matrix chain after."""
    if not factors:
        return ONE
    shape = N.MatMul(*factors).shape if len(factors) > 1 else factors[0].shape
    split = _split_factors(factors)
    if split is None or split[0] == 0:
        return zero_like(shape)
    coeff, scalars, chain = _pairs_rewritten(*split)
    if coeff == 0:
        return zero_like(shape)
    chain = list(rewrite_all("MatMul chain", tuple(chain)))
    if len(chain) > 1 and any(isinstance(f, N.Identity) for f in chain):  # an I left by a chain rule
        coeff, scalars, chain = _pairs_rewritten(coeff, scalars, chain)
    c2, nums, dens = _scalar_powers(scalars)
    coeff *= c2
    if dens:
        bottom = dens[0] if len(dens) == 1 else N.MatMul(*dens)
        sign = -1 if coeff < 0 else 1
        size = abs(coeff)
        if size == 1 and chain:  # xᵀ / ‖x‖, ((x · y) x) / (‖x‖³ ‖y‖)
            body = (nums + chain)[0] if len(nums + chain) == 1 else N.MatMul(*nums, *chain)
            return scale(sign, N.Div(body, bottom))
        simple = all(isinstance(f, N.Symbol | N.Power) for f in nums)
        if not chain and (simple or size == 1):  # 2 y / x, sum(r) / N
            top = scale(size, (nums[0] if len(nums) == 1 else N.MatMul(*nums)) if nums else None)
            return scale(sign, N.Div(top, bottom))
        body = [N.Div(N.Number(size), bottom)] + nums + chain  # (2 / N) Xᵀ r
        return scale(sign, N.MatMul(*body))
    body = nums + chain
    if not body:
        return N.Number(coeff)
    core = body[0] if len(body) == 1 else N.MatMul(*body)
    return scale(coeff, core)


def _scalar_powers(scalars: list[Node]) -> tuple[Fraction, list[Node], list[Node]]:
    """Scalar factors as a coefficient, numerator and denominator, powers of one base merged.

    ``2 (1/x²) x -> 2 / x``: scalars commute, so ``xᵃ xᵇ = xᵃ⁺ᵇ``.
    """
    coeff = Fraction(1)
    exps: dict[Node, Fraction] = {}

    def take(f: Node, sign: int):
        nonlocal coeff
        c, core = split_coeff(f)
        coeff *= c if sign > 0 else (1 / c if c != 0 else 1)
        if core is None:
            return
        if isinstance(core, N.MatMul) and not _scalar_of_nonscalars(core):
            for g in core.args:
                take(g, sign)
        elif isinstance(core, N.Div):
            take(core.args[0], sign)
            take(core.args[1], -sign)
        elif isinstance(core, N.Power) and isinstance(core.args[1], N.Number) and isinstance(
                core.args[0], N.MatMul) and not _scalar_of_nonscalars(core.args[0]) \
                and core.args[1].value.denominator == 1:  # (‖x‖ ‖y‖)² = ‖x‖² ‖y‖²
            for g in core.args[0].args:
                take(power(g, core.args[1]), sign)
        elif isinstance(core, N.Power) and isinstance(core.args[1], N.Number) and isinstance(
                core.args[0], N.Power) and isinstance(core.args[0].args[1], N.Number) \
                and core.args[1].value.denominator == 1:  # ((u)²)⁻¹ = u⁻²
            take(power(core.args[0].args[0], N.Number(core.args[0].args[1].value * core.args[1].value)), sign)
        elif isinstance(core, N.Power) and isinstance(core.args[1], N.Number):
            put(core.args[0], sign * core.args[1].value)
        else:
            put(core, Fraction(sign))

    def put(base: Node, e: Fraction):
        """Add ``e`` to the exponent of ``base``; ``(σ - 1)`` and ``(1 - σ)`` are one base up to a sign."""
        nonlocal coeff
        if base not in exps and isinstance(base, N.Add) and any(isinstance(b, N.Add) for b in exps):
            negated = add(*[neg(t) for t in base.args])
            if negated in exps and e.denominator == 1:
                if e.numerator % 2:
                    coeff = -coeff
                base = negated
        exps[base] = exps.get(base, Fraction(0)) + e

    for f in scalars:
        take(f, 1)
    for base, e in list(exps.items()):  # exp(u)ᵏ / (exp(u) + 1)ᵏ = σ(u)ᵏ
        u = _one_plus_exp(base)
        up = exps.get(N.Apply("exp", u)) if u is not None else None
        if up is not None and e < 0 and up > 0:
            k = min(-e, up)
            exps[base] += k
            exps[N.Apply("exp", u)] -= k
            exps[N.Apply("sigmoid", u)] = exps.get(N.Apply("sigmoid", u), Fraction(0)) + k
            exps = {b: x for b, x in exps.items() if x != 0}
    nums = [power(b, N.Number(e)) for b, e in exps.items() if e > 0]
    # the denominator's factors in one canonical order, so 1/(‖x‖² ‖y‖) and 1/(‖y‖ ‖x‖²) are like terms
    dens = sorted((power(b, N.Number(-e)) for b, e in exps.items() if e < 0), key=_canonical_key)
    return coeff, nums, dens


def _canonical_key(x: Node) -> str:
    """An order for commuting factors that does not depend on how they were built."""
    from .printing import to_text

    return to_text(x)


@rule("MatMul chain", "diagonal into an element-wise product", "diag(x) A y", "x .* (A y)")
def _absorb_diagonals(chain: tuple) -> tuple | None:
    """``diag(v) A x -> v ⊙ (A x)``: a diagonal matrix times a column-valued rest is an element-wise product."""
    for i, f in enumerate(chain):
        if isinstance(f, N.DiagMat) and i + 1 < len(chain):
            rest = chain[i + 1:]
            if is_column(N.MatMul(*rest).shape if len(rest) > 1 else rest[0].shape):
                return chain[:i] + (had(f.args[0], mul(*rest)),)
        if isinstance(f, N.DiagMat) and i > 0:
            before = chain[:i]
            if is_row(N.MatMul(*before).shape if len(before) > 1 else before[0].shape):
                return (transpose(had(f.args[0], transpose(mul(*before)))),) + chain[i + 1:]
    return None


@rule("MatMul chain", "powers of one matrix", "A A^2", "A^3")
def _runs_as_powers(chain: tuple) -> tuple | None:
    """``X X -> X²``, ``X X² -> X³``: powers of one square matrix side by side are merged."""
    if len(chain) < 2:
        return None
    out: list[Node] = []
    for f in chain:
        base, k = (f.args[0], f.args[1].value) if isinstance(f, N.Power) and isinstance(f.args[1], N.Number) \
            else (f, 1)
        if out and len(f.shape) == 2 and f.shape[0] == f.shape[1] and not isinstance(f, N.Identity):
            prev = out[-1]
            pbase, pk = (prev.args[0], prev.args[1].value) if isinstance(prev, N.Power) and isinstance(
                prev.args[1], N.Number) else (prev, 1)
            if pbase is base and k > 0 and pk > 0:
                out[-1] = power(base, N.Number(pk + k))
                continue
        out.append(f)
    return tuple(out) if len(out) < len(chain) else None


def had(*factors: Node) -> Node:
    shape = _broadcast_shape(factors)
    coeff = Fraction(1)
    scalars: list[Node] = []
    nums: list[Node] = []
    dens: list[Node] = []
    stack = list(reversed(factors))
    while stack:
        f = stack.pop()
        c, core = split_coeff(f)
        if c is not _UNIT:
            coeff *= c
        if core is None:
            continue
        if isinstance(core, N.Hadamard):
            stack.extend(reversed(core.args))
        elif is_zero(core):
            return zero_like(shape)
        elif core.shape == ():
            scalars.append(core)
        elif isinstance(core, N.Ones):
            continue
        elif isinstance(core, N.MatMul) and sum(g.shape != () for g in core.args) == 1 and any(
                isinstance(g, N.Ones) for g in core.args):
            scalars.extend(g for g in core.args if g.shape == ())  # (s 𝟙) ⊙ u = s u
        elif isinstance(core, N.MatMul) and sum(g.shape != () for g in core.args) == 1 and len(factors) > 1:
            scalars.extend(g for g in core.args if g.shape == ())  # A ⊙ (s B) = s (A ⊙ B)
            stack.append(next(g for g in core.args if g.shape != ()))
        elif isinstance(core, N.ElemDiv) and core.args[1].shape != ():
            stack.append(core.args[0])
            dens.append(core.args[1])
        elif isinstance(core, N.Div):  # (u / s) ⊙ v = (u ⊙ v) / s
            stack.append(core.args[0])
            scalars.append(power(core.args[1], N.Number(-1)))
        else:
            nums.append(core)
    if coeff == 0:
        return zero_like(shape)
    if not nums and not dens:
        body = mul(*scalars, N.Ones(shape)) if shape != () else mul(*scalars)
        return scale(coeff, body)
    c2, nums, dens = rewrite_all("Hadamard", (Fraction(1), tuple(nums), tuple(dens)))
    coeff *= c2
    if not nums and not dens:
        body = mul(*scalars, N.Ones(shape)) if shape != () else mul(*scalars)
        return scale(coeff, body)
    top = (nums[0] if len(nums) == 1 else N.Hadamard(*nums)) if nums else ONE
    if dens:
        bottom = dens[0] if len(dens) == 1 else N.Hadamard(*dens)
        top = N.ElemDiv(top, bottom)
    return scale(coeff, mul(*scalars, top) if scalars else top)


def _is_exp(x: Node) -> bool:
    return isinstance(x, N.Apply) and x.function == "exp"


def _one_plus_exp(x: Node) -> Node | None:
    """``u`` when ``x`` is ``exp(u) + 1`` (in either order), else None."""
    if isinstance(x, N.Add) and len(x.args) == 2:
        a, b = x.args
        if is_number(b, 1) and _is_exp(a):
            return a.args[1]
        if is_number(a, 1) and _is_exp(b):
            return b.args[1]
    return None


@rule("Hadamard", "a diagonal factor", "A .* diag(x)", "diag(x .* diag(A))")
def _diagonal_factor(state):
    """``M ⊙ diag(v) = diag(diag(M) ⊙ v)`` and ``M ⊙ I = diag(diag(M))``: an element-wise product with a
    diagonal matrix is diagonal (the Hessian of ``logdet(diag(y)² + I)`` is one diagonal matrix)."""
    coeff, nums, dens = state
    if dens or len(nums) < 2 or len(nums[0].shape) != 2 or 1 in nums[0].shape:
        return None
    k = next((i for i, f in enumerate(nums) if isinstance(f, N.DiagMat | N.Identity)), None)
    if k is None:
        return None
    d = nums[k]
    v = d.args[0] if isinstance(d, N.DiagMat) else N.Ones((d.shape[0], 1))
    rest = nums[:k] + nums[k + 1:]
    inner = had(v, *[diagvec(f) for f in rest])
    return coeff, (diagmat(inner),), ()


@rule("Hadamard", "numbers of a denominator", "x ./ (2 y)", "0.5 (x ./ y)")
def _denominator_numbers(state):
    """A numeric factor of an element-wise denominator joins the coefficient, where it cancels."""
    coeff, nums, dens = state
    for i, d in enumerate(dens):
        c, core = split_coeff(d)
        if c != 1 and core is not None and c != 0:
            return coeff / c, nums, dens[:i] + (core,) + dens[i + 1:]
    return None


@rule("Hadamard", "cancel a common factor", "(x .* y) ./ y", "x")
def _cancel_common(state):
    coeff, nums, dens = state
    for d in dens:
        if d in nums:
            i, j = nums.index(d), dens.index(d)
            return coeff, nums[:i] + nums[i + 1:], dens[:j] + dens[j + 1:]
    return None


@rule("Hadamard", "logistic sigmoid", "exp(x) ./ (exp(x) + 1)", "sigmoid(x)")
def _sigmoid_quotient(state):
    """``exp(u) ⊘ (exp(u) + 1) -> σ(u)``."""
    coeff, nums, dens = state
    for j, d in enumerate(dens):
        u = _one_plus_exp(d)
        if u is not None and N.Apply("exp", u) in nums:
            i = nums.index(N.Apply("exp", u))
            rest = nums[:i] + nums[i + 1:]
            return coeff, rest + (N.Apply("sigmoid", u),), dens[:j] + dens[j + 1:]
    return None


def _all_ones(n: Node) -> bool:
    """``𝟙 𝟙ᵀ``: the matrix of ones, as a product of two vectors of ones."""
    def ones(f: Node) -> bool:
        return isinstance(f, N.Ones) or (isinstance(f, N.Transpose) and isinstance(f.args[0], N.Ones))

    if isinstance(n, N.Ones):
        return len(n.shape) == 2 and n.shape[0] != 1 and n.shape[1] != 1
    return isinstance(n, N.MatMul) and len(n.args) == 2 and all(map(ones, n.args))


@rule("Hadamard", "a matrix of ones", "X .* (ones(m) ones(n)') where X: matrix(m, n)",
      "X where X: matrix(m, n)")
def _ones_factor(state):
    """``X ⊙ (𝟙 𝟙ᵀ) -> X``, ``X ⊘ (𝟙 𝟙ᵀ) -> X`` when another factor has the product's shape (the row sums of
    ``I``, or of labels that sum to 1, leave one: ``softmax(S) ⊙ (I 𝟙 𝟙ᵀ)`` is ``softmax(S)``)."""
    coeff, nums, dens = state
    for i, f in enumerate(nums + dens):
        rest = (nums + dens)[:i] + (nums + dens)[i + 1:]
        if _all_ones(f) and any(r.shape == f.shape for r in rest):
            if i < len(nums):
                return coeff, nums[:i] + nums[i + 1:], dens
            j = i - len(nums)
            return coeff, nums, dens[:j] + dens[j + 1:]
    return None


@rule("Hadamard", "equal factors as a power", "x .* x", "x.^2")
def _equal_factors(state):
    """``y ⊙ y -> y⊙²`` (equal element-wise factors merged into a power)."""
    coeff, nums, dens = state
    if len(nums) == len(set(nums)):
        return None
    out: dict[Node, int] = {}
    for f in nums:
        out[f] = out.get(f, 0) + 1
    return coeff, tuple(f if k == 1 else epow(f, N.Number(k)) for f, k in out.items()), dens


def ediv(a: Node, b: Node) -> Node:
    if is_zero(a):
        return zero_like(_broadcast_shape((a, b)))
    if b.shape == ():
        return div(a, b)
    if isinstance(b, N.Ones):
        return a if a.shape != () else mul(a, b)
    if is_number(a, 1):
        return N.ElemDiv(a, b)
    return had(a, N.ElemDiv(ONE, b))


def div(x: Node, s: Node) -> Node:
    """``x / s`` for a scalar ``s``, through the ``Div`` rules."""
    return rewrite("Div", x, s) or N.Div(x, s)


@rule("Div", "zero numerator", "0 / a", "0")
def _div_zero(x, s):
    return x if is_zero(x) else None


@rule("Div", "numeric divisor", "x / 2", "0.5 x")
def _div_number(x, s):
    if isinstance(s, N.Number) and s.value != 0:
        return scale(1 / s.value, x) if not isinstance(x, N.Number) else N.Number(x.value / s.value)
    return None


@rule("Div", "softmax", "exp(x) / sum(exp(x))", "softmax(x)")
def _div_softmax(x, s):
    if _is_exp(x) and isinstance(s, N.Sum) and s.args[0] is x and x.shape != () and x.shape[1] == 1:
        return N.Softmax(x.args[1])
    return None


@rule("Div", "scalar quotient", "(2 a) / (4 a b)", "0.5 / b")
def _div_scalars(x, s):
    """A scalar over a scalar is one product of powers, so numbers and equal factors cancel."""
    if x.shape == () and not isinstance(x, N.Number):
        return mul(x, N.Power(s, N.Number(-1)))
    return None


@rule("Div", "quotient of a quotient", "(x / a) / b", "x / (a b)")
def _div_div(x, s):
    if isinstance(x, N.Div):
        return div(x.args[0], mul(x.args[1], s))
    return None


@rule("Div", "numbers of the divisor", "x / (2 a)", "0.5 (x / a)")
def _div_divisor_number(x, s):
    c, core = split_coeff(s)
    if c != 1 and c != 0 and core is not None:
        return scale(1 / c, div(x, core))
    return None


@rule("Div", "sign to the front", "(-2 x) / a", "-((2 x) / a)")
def _div_sign(x, s):
    c, core = split_coeff(x)
    return neg(div(scale(-c, core), s)) if c < 0 else None


# --- unary structure -----------------------------------------------------------------------------------------
# transpose() and _self_transpose() look into their argument recursively; on a DAG whose levels share
# subexpressions ((((A + B)² + B)² + B)², the backward pass of nested squares) an unmemoised recursion
# revisits each level once per path, exponentially. Nodes are immutable and interned: a cache keyed on
# them is exact (bounded, so a long session does not keep every node alive).
@functools.lru_cache(maxsize=1 << 16)
def _self_transpose(x: Node) -> bool:
    """Symmetric by construction: I, diag(v), a symmetric symbol, Aᵀ D A, S⁻¹ v vᵀ S⁻¹, A + Aᵀ."""
    if isinstance(x, N.Identity | N.DiagMat):
        return True
    if isinstance(x, N.Symbol) and x.symmetric:
        return True
    if isinstance(x, N.Add):  # A + Aᵀ, S⁻¹ - S⁻¹ v vᵀ S⁻¹: the terms are each other's transposes
        terms = {split_coeff(t) for t in x.args}
        return all(split_coeff(transpose(t)) in terms for t in x.args)
    if isinstance(x, N.Inv) or (isinstance(x, N.Power) and x.shape != ()):
        return _self_transpose(x.args[0])
    if isinstance(x, N.Apply | N.ElemPower | N.Neg) and x.shape != ():  # exp(x xᵀ), (x xᵀ)⊙²
        return _self_transpose(x.args[1] if isinstance(x, N.Apply) else x.args[0])
    if isinstance(x, N.Hadamard | N.ElemDiv) and x.shape != ():
        return all(f.shape == () or _self_transpose(f) for f in x.args)
    if isinstance(x, N.MatMul) and x.shape != () and x.shape[0] == x.shape[1]:
        chain = [f for f in x.args if f.shape != ()]
        if len(chain) < len(x.args):  # σ (1 - σ) w wᵀ: scalars commute
            return _self_transpose(chain[0] if len(chain) == 1 else N.MatMul(*chain))
        return transpose(x) is x  # Xᵀ C X with C symmetric, Xᵀ X
    if isinstance(x, N.Div | N.Neg):
        return _self_transpose(x.args[0])
    return False


def clear_caches() -> None:
    """Forget the memoised transposes: needed only when the rules themselves change (the rule tests)."""
    transpose.cache_clear()
    _self_transpose.cache_clear()


@functools.lru_cache(maxsize=1 << 16)
def transpose(x: Node) -> Node:
    """``xᵀ`` through the ``Transpose`` rules."""
    return rewrite("Transpose", x) or N.Transpose(x)


@rule("Transpose", "scalar", "a'", "a")
def _t_scalar(x):
    return x if x.shape == () else None


@rule("Transpose", "double transpose", "(A')'", "A")
def _t_double(x):
    return x.args[0] if isinstance(x, N.Transpose) else None


@rule("Transpose", "constant", "ones(n)'", "ones(1, n)")
def _t_constant(x):
    return type(x)((x.shape[1], x.shape[0])) if isinstance(x, N.Ones | N.Zeros) else None


@rule("Transpose", "negation", "(-A)'", "-A'")
def _t_neg(x):
    return neg(transpose(x.args[0])) if isinstance(x, N.Neg) else None


@rule("Transpose", "product", "(x' A)'", "A' x")
def _t_product(x):
    return mul(*[transpose(f) for f in reversed(x.args)]) if isinstance(x, N.MatMul) else None


@rule("Transpose", "quotient", "(A / a)'", "A' / a")
def _t_quotient(x):
    return div(transpose(x.args[0]), x.args[1]) if isinstance(x, N.Div) else None


@rule("Transpose", "power", "(A^2)'", "(A')^2")
def _t_power(x):
    if isinstance(x, N.Power) and isinstance(x.args[1], N.Number) and not _self_transpose(x.args[0]):
        return power(transpose(x.args[0]), x.args[1])
    return None


@rule("Transpose", "sum of rows", "(x' + y')'", "x + y")
def _t_rows(x):
    """A sum of rows reads better as a sum of columns."""
    return add(*[transpose(t) for t in x.args]) if isinstance(x, N.Add) and is_row(x.shape) else None


@rule("Transpose", "Hadamard with a symmetric factor", "(A .* (B + B'))'", "A' .* (B + B')")
def _t_hadamard(x):
    """``(A ⊙ S)ᵀ = Aᵀ ⊙ S`` for a symmetric ``S``: the transpose moves onto the factor that needs it."""
    if isinstance(x, N.Hadamard) and any(_self_transpose(f) for f in x.args):
        return had(*[transpose(f) for f in x.args])
    return None


@rule("Transpose", "element-wise function of a matrix", "exp(A)'", "exp(A')")
def _t_elementwise(x):
    """``f(A)ᵀ = f(Aᵀ)`` and ``(A⊙ᵖ)ᵀ = (Aᵀ)⊙ᵖ`` for a matrix (a row ``exp(x)ᵀ`` stays as it is), so that
    ``A⊙²`` and ``(A⊙²)ᵀ`` meet their transposes in a symmetric Hessian."""
    if len(x.shape) != 2 or 1 in x.shape:
        return None
    if isinstance(x, N.ElemPower) and x.args[1].shape == ():
        return epow(transpose(x.args[0]), x.args[1])
    if isinstance(x, N.Apply):
        return N.Apply(x.function, transpose(x.args[1]))
    return None


@rule("Transpose", "symmetric", "(A + A')'", "A + A'")
def _t_symmetric(x):
    return x if _self_transpose(x) else None


def inv(x: Node) -> Node:
    """``x⁻¹`` through the ``Inv`` rules."""
    return rewrite("Inv", x) or N.Inv(x)


@rule("Inv", "double inverse", "inv(inv(A))", "A where A: matrix(n, n)")
def _inv_inv(x):
    return x.args[0] if isinstance(x, N.Inv) else None


@rule("Inv", "identity", "inv(I)", "I")
def _inv_identity(x):
    return x if isinstance(x, N.Identity) else None


@rule("Inv", "transpose outside", "inv(A')", "inv(A)'")
def _inv_transpose(x):
    return transpose(inv(x.args[0])) if isinstance(x, N.Transpose) else None


@rule("Inv", "Kronecker product", "inv(kron(A, B)) where A: matrix(n, n), B: matrix(m, m)",
      "kron(inv(A), inv(B)) where A: matrix(n, n), B: matrix(m, m)")
def _inv_kron(x):
    """``(A ⊗ B)⁻¹ = A⁻¹ ⊗ B⁻¹`` for square ``A`` and ``B``: the gradient of ``det(A ⊗ X)`` then reads off
    the blocks."""
    if isinstance(x, N.Kron) and all(len(f.shape) == 2 and f.shape[0] == f.shape[1] for f in x.args):
        return N.Kron(inv(x.args[0]), inv(x.args[1]))
    return None


@rule("Inv", "diagonal", "inv(diag(x))", "diag(1 ./ x)")
def _inv_diagonal(x):
    """``diag(v)⁻¹ = diag(1 ⊘ v)``, and ``(diag(v) + c I)⁻¹ = diag(1 ⊘ (v + c))``."""
    if isinstance(x, N.DiagMat):
        return diagmat(ediv(ONE, x.args[0]))
    if isinstance(x, N.Add) and all(isinstance(split_coeff(t)[1], N.DiagMat | N.Identity) for t in x.args):
        v = add(*[scale(split_coeff(t)[0], split_coeff(t)[1].args[0] if isinstance(split_coeff(t)[1], N.DiagMat)
                        else None) for t in x.args])
        return diagmat(ediv(ONE, v))
    return None


def diagmat(v: Node) -> Node:
    """``diag(v)`` through the ``DiagMat`` rules."""
    return rewrite("DiagMat", v) or N.DiagMat(v)


@rule("DiagMat", "diagonal of ones", "diag(ones(n))", "I")
def _diag_of_ones(v):
    return N.Identity(v.shape[0]) if isinstance(v, N.Ones) else None


@rule("DiagMat", "diagonal of a constant", "diag(vector(a))", "a I")
def _diag_of_fill(v):
    return mul(v.value, N.Identity(v.shape[0])) if isinstance(v, N.Fill) else None


@rule("DiagMat", "diagonal of zeros", "diag(zeros(n))", "zeros(n, n)")
def _diag_of_zeros(v):
    return N.Zeros((v.shape[0], v.shape[0])) if is_zero(v) else None


@rule("DiagMat", "scalar factor out of a diagonal matrix", "diag(-(ones(n) / t))", "-I / t")
def _diag_of_scaled(v):
    """A negation or a scalar divisor of the vector leaves ``diag`` (``diag(-v) = -diag(v)``), so a diagonal
    of ones scaled by a scalar prints as ``I`` scaled: InfoNCE's ``softmax(S) - I``."""
    if isinstance(v, N.Neg):
        return neg(diagmat(v.args[0]))
    if isinstance(v, N.Div):
        return div(diagmat(v.args[0]), v.args[1])
    return None


def diagvec(a: Node) -> Node:
    """``diag(A)`` (the vector of the diagonal) through the ``DiagVec`` rules."""
    return rewrite("DiagVec", a) or N.DiagVec(a)


@rule("DiagVec", "diagonal of a diagonal matrix", "diag(diag(x))", "x")
def _diagvec_diag(a):
    return a.args[0] if isinstance(a, N.DiagMat) else None


@rule("DiagVec", "diagonal of a product with a diagonal matrix", "diag(diag(x) A)", "x .* diag(A)")
def _diagvec_scaled(a):
    """``diag(diag(v) M) = diag(M diag(v)) = v ⊙ diag(M)``."""
    if isinstance(a, N.MatMul):
        chain = [f for f in a.args if f.shape != ()]
        scalars = [f for f in a.args if f.shape == ()]
        for i in (0, len(chain) - 1):
            if len(chain) > 1 and isinstance(chain[i], N.DiagMat):
                rest = chain[1:] if i == 0 else chain[:-1]
                return mul(*scalars, had(chain[i].args[0], diagvec(mul(*rest))))
    return None


@rule("DiagVec", "coefficient", "diag(-2 A)", "-2 diag(A)")
def _diagvec_coefficient(a):
    c, core = split_coeff(a)
    return scale(c, diagvec(core)) if c != 1 and core is not None else None


@rule("DiagVec", "diagonal of I", "diag(eye(n))", "ones(n)")
def _diagvec_identity(a):
    return N.Ones((a.shape[0], 1)) if isinstance(a, N.Identity) else None


@rule("DiagVec", "diagonal of a matrix of ones", "diag(ones(n, n))", "ones(n)")
def _diagvec_ones(a):
    return N.Ones((a.shape[0], 1)) if isinstance(a, N.Ones) else None


@rule("DiagVec", "diagonal of a quotient", "diag(A / t)", "diag(A) / t")
def _diagvec_quotient(a):
    """The divisor is a scalar, so it leaves the diagonal (``diag(𝟙𝟙ᵀ / t) = 𝟙 / t``)."""
    return div(diagvec(a.args[0]), a.args[1]) if isinstance(a, N.Div) else None


def numel(x: Node) -> Node:
    """``numel(x)`` by the simplest name of that shape: ``numel(y)`` rather than ``numel((y - f(X w)).^2)``.

    The printers write it by the dimensions' names (``n``) where no variable has that name."""
    for s_ in N.symbols_of(x):
        if s_.shape == x.shape:
            return N.Numel(s_)
    return N.Numel(x)


def ssum(x: Node) -> Node:
    """``sum(x)`` through the ``Sum`` rules."""
    return rewrite("Sum", x) or N.Sum(x)


@rule("Sum", "scalar", "sum(a)", "a")
def _sum_scalar(x):
    return x if x.shape == () else None


@rule("Sum", "zeros", "sum(zeros(n))", "0")
def _sum_zeros(x):
    return ZERO if is_zero(x) else None


@rule("Sum", "ones", "sum(ones(n))", "numel(ones(n))")
def _sum_ones(x):
    return numel(x) if isinstance(x, N.Ones) else None


@rule("Sum", "transpose", "sum(x')", "sum(x)")
def _sum_transpose(x):
    return ssum(x.args[0]) if isinstance(x, N.Transpose) else None


@rule("Sum", "a matrix and its inverse transposed", "sum(A .* inv(A)') where A: matrix(n, n)",
      "sum(ones(n)) where A: matrix(n, n)")
def _sum_inverse_pair(x):
    """``sum(A ⊙ A⁻ᵀ) = tr(Aᵀ A⁻ᵀ) = n`` (the gradient of ``logdet(A ⊗ X)`` is ``n X⁻ᵀ``)."""
    if isinstance(x, N.Hadamard) and len(x.args) == 2 and len(x.shape) == 2 and x.shape[0] == x.shape[1] \
            and x.shape[0] != 1:
        a, b = x.args
        if transpose(inv(a)) is b or transpose(inv(b)) is a:
            return ssum(N.Ones((a.shape[0], 1)))
    return None


@rule("Sum", "scalar factors", "sum(a x) where a: scalar", "a sum(x) where a: scalar")
def _sum_scalar_factors(x):
    """``sum(s M) = s sum(M)`` for scalar factors ``s`` of a product with one non-scalar factor."""
    if isinstance(x, N.MatMul) and x.shape != () and sum(f.shape != () for f in x.args) == 1 and any(
            f.shape == () and not isinstance(f, N.Number) for f in x.args):
        return mul(*[f for f in x.args if f.shape == ()], ssum(next(f for f in x.args if f.shape != ())))
    return None


@rule("Sum", "coefficient", "sum(2 x)", "2 sum(x)")
def _sum_coefficient(x):
    c, core = split_coeff(x)
    return scale(c, ssum(core)) if c != 1 else None


def dot(a: Node, b: Node) -> Node:
    """``a · b`` through the ``Dot`` rules."""
    return rewrite("Dot", a, b) or N.Dot(a, b)


@rule("Dot", "zero", "dot(x, zeros(n))", "0")
def _dot_zero(a, b):
    return ZERO if is_zero(a) or is_zero(b) else None


@rule("Dot", "coefficients", "dot(2 x, 3 y)", "6 dot(x, y)")
def _dot_coefficients(a, b):
    ca, a_core = split_coeff(a)
    cb, b_core = split_coeff(b)
    if (ca != 1 or cb != 1) and a_core is not None and b_core is not None:
        return scale(ca * cb, dot(a_core, b_core))
    return None


@rule("Dot", "ones", "dot(ones(n), x)", "sum(x)")
def _dot_ones(a, b):
    if isinstance(a, N.Ones):
        return ssum(b)
    return ssum(a) if isinstance(b, N.Ones) else None


@rule("Dot", "divisor outside", "dot(x / a, y)", "dot(x, y) / a")
def _dot_quotient(a, b):
    """``(u / s) · v -> (u · v) / s``: the divisor joins the other scalar factors, where it can cancel."""
    for i, f in enumerate((a, b)):
        if isinstance(f, N.Div) and f.args[1].shape == ():
            other = b if i == 0 else a
            return div(dot(f.args[0], other) if i == 0 else dot(other, f.args[0]), f.args[1])
    return None


@rule("Dot", "product of a matrix", "dot(A' x, y)", "x' A y")
def _dot_product(a, b):
    """``(Aᵀ x) · y -> xᵀ A y``: a dot product with a matrix product in it reads as the quadratic form."""
    if (isinstance(a, N.MatMul) or isinstance(b, N.MatMul)) and is_column(a.shape) and is_column(b.shape):
        return mul(transpose(a), b)
    return None


def trace(x: Node) -> Node:
    """``tr(x)`` through the ``Trace`` rules."""
    return rewrite("Trace", x) or N.Trace(x)


@rule("Trace", "zero", "tr(zeros(n, n))", "0")
def _trace_zero(x):
    return ZERO if is_zero(x) else None


@rule("Trace", "coefficient", "tr(2 A)", "2 tr(A)")
def _trace_coefficient(x):
    c, core = split_coeff(x)
    return scale(c, trace(core)) if c != 1 and core is not None else None


def _folds(base: Fraction, e: Fraction) -> bool:
    """Whether ``base ** e`` has at most the documented number of digits (``matcalc.limits(digits=...)``);
    larger powers stay symbolic (``2^100000``), so a short input cannot build a huge number."""
    from .budget import current_limits

    size = max(abs(base.numerator), base.denominator)
    return size <= 1 or abs(e) * (size.bit_length() * 0.30103) <= current_limits().digits


def power(base: Node, e: Node) -> Node:
    """``base^e`` through the ``Power`` rules."""
    return rewrite("Power", base, e) or N.Power(base, e)


@rule("Power", "first power", "a^1", "a")
def _power_one(base, e):
    return base if is_number(e, 1) else None


@rule("Power", "zeroth power", "A^0", "I")
def _power_zero(base, e):
    if is_number(e, 0):
        return ONE if base.shape == () else N.Identity(base.shape[0])
    return None


@rule("Power", "numbers", "2^3", "8")
def _power_numbers(base, e):
    if isinstance(e, N.Number) and isinstance(base, N.Number) and e.value.denominator == 1 and (
            base.value != 0 or e.value > 0) and _folds(base.value, e.value):
        return N.Number(base.value ** int(e.value))
    return None


@rule("Power", "power of a diagonal", "diag(x)^3", "diag(x.^3)")
def _power_diagonal(base, e):
    if isinstance(base, N.DiagMat) and isinstance(e, N.Number):
        return diagmat(epow(base.args[0], e))
    return None


@rule("Power", "matrix inverse", "A^-1", "inv(A)")
def _power_inverse(base, e):
    return inv(base) if base.shape != () and is_number(e, -1) else None


def epow(base: Node, e: Node) -> Node:
    """``base.^e`` through the ``ElemPower`` rules."""
    return rewrite("ElemPower", base, e) or N.ElemPower(base, e)


@rule("ElemPower", "scalar base", "a.^2", "a^2")
def _epow_scalar(base, e):
    return power(base, e) if base.shape == () else None


@rule("ElemPower", "first power", "x.^1", "x")
def _epow_one(base, e):
    return base if is_number(e, 1) else None


@rule("ElemPower", "zeroth power", "x.^0", "ones(n)")
def _epow_zero(base, e):
    return N.Ones(base.shape) if is_number(e, 0) else None


# --- whole expressions ------------------------------------------------------------------------------------------
_REBUILD = {
    N.Add: lambda n, c: add(*c),
    N.Neg: lambda n, c: neg(c[0]),
    N.MatMul: lambda n, c: mul(*c),
    N.Hadamard: lambda n, c: had(*c),
    N.ElemDiv: lambda n, c: ediv(*c),
    N.Div: lambda n, c: div(*c),
    N.Dot: lambda n, c: dot(*c),
    N.Transpose: lambda n, c: transpose(c[0]),
    N.Inv: lambda n, c: inv(c[0]),
    N.DiagMat: lambda n, c: diagmat(c[0]),
    N.DiagVec: lambda n, c: diagvec(c[0]),
    N.Sum: lambda n, c: ssum(c[0]),
    N.Trace: lambda n, c: trace(c[0]),
    N.Power: lambda n, c: power(*c),
    N.ElemPower: lambda n, c: epow(*c),
}


class Rebuild(Transformer):
    """The simplifier's rebuild: every node of a type in ``_REBUILD`` through its smart constructor (one
    ``transform_<Class>`` each, made from the table below), any other node kept or rebuilt as is."""


for _cls, _rebuild in _REBUILD.items():
    setattr(Rebuild, "transform_" + _cls.__name__, staticmethod(_rebuild))
del _cls, _rebuild


def simplify(node: Node) -> Node:
    """Rebuild ``node`` bottom-up through the smart constructors (memoised over the shared DAG)."""
    from .recursion import deep_recursion

    with deep_recursion():  # the smart constructors themselves may recurse on a deep operand
        return Rebuild().visit(node)
