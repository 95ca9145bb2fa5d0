"""The simplifier: smart constructors that build expressions already in the form a textbook prints.

Each constructor (``add``, ``mul``, ``had``, ``transpose`` ...) applies the local rewrites for its node
type as it builds, so the differentiation rules can be written naively (``diag(f'(u)) du``) and still
come out as ``f'(u) ⊙ du``; :func:`simplify` rebuilds a whole expression through them.

The rewrites, by constructor:

- ``add``: flattens, drops zeros, folds constants, collects like terms (``x + 2x -> 3x``) and factors a
  common first or last factor (``A x + Aᵀ x -> (A + Aᵀ) x``, ``-2Uᵀ X + 2Uᵀ U V -> -2Uᵀ(X - U V)``).
- ``mul``: flattens, folds numbers and signs into one leading coefficient, moves scalar factors to the
  front, removes identities, and rewrites adjacent pairs: ``1ᵀ diag(x) -> xᵀ``, ``diag(a) diag(b) ->
  diag(a ⊙ b)``, ``diag(v) w -> v ⊙ w``, ``1ᵀ x -> sum(x)``, ``A⁻¹ A -> I``.
- ``had``: pulls scalars out as a scaling, drops all-ones factors.
- ``transpose``: removes double transposes, distributes over products (``(xᵀA)ᵀ -> Aᵀ x``), and knows
  that ``I``, ``diag(v)``, symmetric matrices and symmetric sums (``A + Aᵀ``) are their own transposes.
- ``diagmat``: ``diag(1) -> I``.

Negation is canonical as a leading negative number (``-2 Uᵀ R``), or a ``Neg`` when the factor is -1.
All constructors memoise through the hash-consed nodes, so shared subexpressions stay shared.
"""

from __future__ import annotations

from fractions import Fraction

from . import nodes as N
from .nodes import Node
from .shapes import is_column, is_row

ZERO = N.Number(0)
ONE = N.Number(1)


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
    return Fraction(1), x


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
        if isinstance(f, N.Add) and len(f.args) == 2 and isinstance(f.args[1], N.Neg) \
                and not isinstance(f.args[0], N.Neg):
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
    global _EXPANDING
    out = _add(*terms)
    if _EXPANDING or not isinstance(out, N.Add) or not any(_expandable(t) for t in out.args):
        return out
    # expand element-wise products of sums when that cancels terms: y ⊙ (1 - σ) - (1 - y) ⊙ σ -> y - σ
    _EXPANDING = True
    try:
        expanded = _add(*[e for t in out.args for e in _expand(t)])
    finally:
        _EXPANDING = False
    return expanded if N.count_nodes(expanded) < N.count_nodes(out) else out


_EXPANDING = False


def _negative_scaled(t: Node) -> bool:
    c, core = split_coeff(t)
    return core is not None and c < 0 and not isinstance(t, N.Neg)


def _expandable(t: Node) -> bool:
    c, core = split_coeff(t)
    if isinstance(core, N.MatMul) and core.shape == () and all(f.shape == () for f in core.args):
        return any(isinstance(f, N.Add) for f in core.args)  # scalars: y (σ - 1)
    return isinstance(core, N.Hadamard) and any(isinstance(f, N.Add) for f in core.args)


def _expand(t: Node) -> list[Node]:
    """The terms of an element-wise product of sums, multiplied out one level."""
    c, core = split_coeff(t)
    if not _expandable(t):
        return [t]
    factors = list(core.args)
    i = next(k for k, f in enumerate(factors) if isinstance(f, N.Add))
    out = []
    combine = mul if isinstance(core, N.MatMul) else had
    for term in factors[i].args:
        piece = combine(*factors[:i], term, *factors[i + 1:]) if term.shape != () or len(factors) > 1 else term
        out.extend(_expand(scale(c, piece)))
    return out


def _add(*terms: Node) -> Node:
    shape = _broadcast_shape(terms)
    flat: list[Node] = []
    stack = list(reversed(terms))
    while stack:
        t = stack.pop()
        if isinstance(t, N.Add):
            stack.extend(reversed(t.args))
            continue
        c, core = split_coeff(t)
        if isinstance(core, N.Add) and c != 1:  # c (a + b) in a sum: its terms join the sum
            stack.extend(reversed([scale(c, a) for a in core.args]))
        elif not is_zero(t):
            flat.append(t)
    constant = Fraction(0)
    coeffs: dict[Node, Fraction] = {}
    for t in flat:
        c, core = split_coeff(t)
        if core is None:
            constant += c
        else:
            coeffs[core] = coeffs.get(core, Fraction(0)) + c
    out = [scale(c, core) for core, c in coeffs.items() if c != 0]
    if constant != 0:  # "σ - 1", not "σ + -1"
        out.append(N.Number(constant) if constant > 0 or not out else N.Neg(N.Number(-constant)))
    out = _common_divisor(out)
    out = _merge_diagonals(out)
    out = _factor_common(out)
    out = _factor_hadamard(out)
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
    if len(out) == 2 and isinstance(out[0], N.Transpose) and out[0].args[0] is out[1]:
        out.reverse()  # A + Aᵀ, whichever came first
    if shape != () and all(t.shape == () for t in out):  # (0 + a + b) 𝟙 stays a vector when the 0 goes
        return mul(N.Add(*out), N.Ones(shape))
    return N.Add(*out)


def _common_divisor(terms: list[Node]) -> list[Node]:
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
        combined = div(add(*nums), denom)
        rest = [t for j, t in enumerate(terms) if j not in members]
        rest.insert(members[0], combined)
        return [t for t in rest if not is_zero(t)]
    return terms


def _merge_diagonals(terms: list[Node]) -> list[Node]:
    """``diag(a) + diag(b) -> diag(a + b)`` (scaled diagonals too)."""
    idx = [i for i, t in enumerate(terms) if isinstance(split_coeff(t)[1], N.DiagMat)]
    if len(idx) < 2:
        return terms
    inner = add(*[scale(split_coeff(terms[i])[0], split_coeff(terms[i])[1].args[0]) for i in idx])
    merged = diagmat(inner)
    rest = [t for j, t in enumerate(terms) if j not in idx]
    rest.insert(idx[0], merged)
    return [t for t in rest if not is_zero(t)]


def _factor_hadamard(terms: list[Node]) -> list[Node]:
    """``a ⊙ p + b ⊙ p -> (a + b) ⊙ p`` for a common element-wise factor ``p``."""
    if len(terms) < 2:
        return terms
    counts: dict[Node, list[int]] = {}
    for i, t in enumerate(terms):
        c, core = split_coeff(t)
        if isinstance(core, N.Hadamard):
            for f in set(core.args):
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
        return _factor_hadamard([t for t in new if not is_zero(t)])
    return terms


def _chain(t: Node) -> tuple[Fraction, list[Node]]:
    c, core = split_coeff(t)
    if core is None:
        return c, []
    return c, list(core.args) if isinstance(core, N.MatMul) else [core]


def _factor_common(terms: list[Node]) -> list[Node]:
    """Factor a common last factor (``A x + B x -> (A + B) x``), else a common first factor."""
    if len(terms) < 2:
        return terms
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
            c0, _ = _chain(terms[members[0]])
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
            return _factor_common([t for t in new if not is_zero(t)])
    return _factor_scalar(terms, full)


def _factor_scalar(terms: list[Node], full) -> list[Node]:
    """``s A + s Aᵀ -> s (A + Aᵀ)``: a scalar factor common to every non-scalar term of a sum."""
    chains = [_chain(t) for t in terms]
    if len(terms) < 2 or any(t.shape != full or full == () for t in terms):
        return terms
    common = [f for f in chains[0][1] if f.shape == () and not isinstance(f, N.Number)]
    for f in common:
        if all(f in ch for _, ch in chains[1:]):
            c0 = chains[0][0]
            rests = []
            for c, ch in chains:
                rest = list(ch)
                rest.remove(f)
                rests.append(scale(c / c0, mul(*rest)))
            return [scale(c0, mul(f, add(*rests)))]
    return terms


# --- products ---------------------------------------------------------------------------------------------
def _is_ones_row(x):
    return isinstance(x, N.Ones) and is_row(x.shape)


def _is_ones_col(x):
    return isinstance(x, N.Ones) and is_column(x.shape)


def _pair(a: Node, b: Node) -> list[Node] | None:
    """A rewrite of the adjacent factors ``a b`` of a product, or None."""
    if isinstance(a, N.Identity) and b.shape != ():
        return [b]
    if isinstance(b, N.Identity) and a.shape != ():
        return [a]
    if _is_ones_row(a) and isinstance(b, N.DiagMat):
        return [transpose(b.args[0])]
    if isinstance(a, N.DiagMat) and _is_ones_col(b):
        return [a.args[0]]
    if isinstance(a, N.DiagMat) and isinstance(b, N.DiagMat):
        return [diagmat(had(a.args[0], b.args[0]))]
    if isinstance(a, N.DiagMat) and is_column(b.shape):
        return [had(a.args[0], b)]
    if is_row(a.shape) and isinstance(b, N.DiagMat):
        return [transpose(had(b.args[0], transpose(a)))]
    if _is_ones_row(a) and is_column(b.shape):
        return [ssum(b)]
    if is_row(a.shape) and _is_ones_col(b):
        return [ssum(a)]
    if isinstance(a, N.Inv) and a.args[0] is b or isinstance(b, N.Inv) and b.args[0] is a:
        return [N.Identity(a.shape[0])]
    return None


def _scalar_of_nonscalars(m: N.MatMul) -> bool:
    """``xᵀ A x``: a scalar product of vectors and matrices, which must stay one factor in a longer product."""
    return m.shape == () and any(f.shape != () for f in m.args)


def mul(*factors: Node) -> Node:
    if not factors:
        return ONE
    shape = N.MatMul(*factors).shape if len(factors) > 1 else factors[0].shape
    coeff = Fraction(1)
    scalars: list[Node] = []
    chain: list[Node] = []
    stack = list(reversed(factors))
    while stack:
        f = stack.pop()
        c, core = split_coeff(f)
        coeff *= c
        if core is None:
            continue
        if isinstance(core, N.MatMul) and not _scalar_of_nonscalars(core):
            stack.extend(reversed(core.args))
            continue
        if is_zero(core):
            return zero_like(shape)
        if core.shape == ():
            scalars.append(core)
        else:
            chain.append(core)
    if coeff == 0:
        return zero_like(shape)
    changed = True
    while changed and len(chain) > 1:
        changed = False
        for i in range(len(chain) - 1):
            rep = _pair(chain[i], chain[i + 1])
            if rep is not None:
                chain[i:i + 2] = rep
                changed = True
                break
        # a rewrite may have produced scalars (1ᵀ x -> sum(x)) or products
        flat: list[Node] = []
        for f in chain:
            c, core = split_coeff(f)
            coeff *= c
            if core is None:
                continue
            if isinstance(core, N.MatMul) and not _scalar_of_nonscalars(core):
                for g in core.args:
                    (scalars if g.shape == () else flat).append(g)
            elif core.shape == ():
                scalars.append(core)
            else:
                flat.append(core)
        chain = flat
    chain = _absorb_diagonals(chain)
    chain = _runs_as_powers(chain)
    if len(chain) > 1 and any(isinstance(f, N.Identity) for f in chain):
        chain = [f for f in chain if not isinstance(f, N.Identity)] or chain[:1]
    c2, nums, dens = _scalar_powers(scalars)
    coeff *= c2
    if dens:
        bottom = dens[0] if len(dens) == 1 else N.MatMul(*dens)
        sign = -1 if coeff < 0 else 1
        size = abs(coeff)
        if not nums and size == 1 and chain:  # xᵀ / ‖x‖
            body = chain[0] if len(chain) == 1 else N.MatMul(*chain)
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
        elif isinstance(core, N.Power) and isinstance(core.args[1], N.Number):
            put(core.args[0], sign * core.args[1].value)
        else:
            put(core, Fraction(sign))

    def put(base: Node, e: Fraction):
        """Add ``e`` to the exponent of ``base``; ``(σ - 1)`` and ``(1 - σ)`` are one base up to a sign."""
        nonlocal coeff
        if base not in exps and isinstance(base, N.Add):
            negated = add(*[neg(t) for t in base.args])
            if negated in exps and e.denominator == 1:
                if e.numerator % 2:
                    coeff = -coeff
                base = negated
        exps[base] = exps.get(base, Fraction(0)) + e

    for f in scalars:
        take(f, 1)
    for base, e in list(exps.items()):
        u = _one_plus_exp(base)
        if u is not None and e == -1 and exps.get(N.Apply("exp", u)) == 1:
            del exps[base], exps[N.Apply("exp", u)]
            exps[N.Apply("sigmoid", u)] = exps.get(N.Apply("sigmoid", u), Fraction(0)) + 1
    nums = [power(b, N.Number(e)) for b, e in exps.items() if e > 0]
    dens = [power(b, N.Number(-e)) for b, e in exps.items() if e < 0]
    return coeff, nums, dens


def _runs_as_powers(chain: list[Node]) -> list[Node]:
    """``X X -> X²``, ``X X² -> X³``: powers of one square matrix side by side are merged."""
    if len(chain) < 2:
        return chain
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
    return out


def _absorb_diagonals(chain: list[Node]) -> list[Node]:
    """``diag(v) A x -> v ⊙ (A x)``: a diagonal matrix times a column-valued rest is an element-wise product."""
    for i, f in enumerate(chain):
        if isinstance(f, N.DiagMat) and i + 1 < len(chain):
            rest = chain[i + 1:]
            if is_column(N.MatMul(*rest).shape if len(rest) > 1 else rest[0].shape):
                return chain[:i] + [had(f.args[0], mul(*rest))]
        if isinstance(f, N.DiagMat) and i > 0:
            before = chain[:i]
            if is_row(N.MatMul(*before).shape if len(before) > 1 else before[0].shape):
                return [transpose(had(f.args[0], transpose(mul(*before))))] + chain[i + 1:]
    return chain


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
    nums, dens = _cancel(nums, dens)
    nums = _powers(nums)
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


def _powers(factors: list[Node]) -> list[Node]:
    """``y ⊙ y -> y⊙²`` (equal element-wise factors merged into a power)."""
    if len(factors) == len(set(factors)):
        return factors
    out: dict[Node, int] = {}
    for f in factors:
        out[f] = out.get(f, 0) + 1
    return [f if k == 1 else epow(f, N.Number(k)) for f, k in out.items()]


def _cancel(nums: list[Node], dens: list[Node]) -> tuple[list[Node], list[Node]]:
    """Cancel equal factors of a quotient; ``exp(u) / (exp(u) + 1)`` becomes ``σ(u)``."""
    nums, dens = list(nums), list(dens)
    for d in list(dens):
        if d in nums:
            nums.remove(d)
            dens.remove(d)
            continue
        u = _one_plus_exp(d)
        if u is not None and N.Apply("exp", u) in nums:
            nums.remove(N.Apply("exp", u))
            dens.remove(d)
            nums.append(N.Apply("sigmoid", u))
    return nums, dens


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
    if is_zero(x):
        return x
    if isinstance(s, N.Number) and s.value != 0:
        return scale(1 / s.value, x) if not isinstance(x, N.Number) else N.Number(x.value / s.value)
    if (_is_exp(x) and isinstance(s, N.Sum) and s.args[0] is x and x.shape != ()
            and x.shape[1] == 1):  # exp(u) / sum(exp(u)) = softmax(u)
        return N.Softmax(x.args[1])
    c, core = split_coeff(x)
    if c < 0:
        return neg(div(scale(-c, core), s))
    return N.Div(x, s)


# --- unary structure -----------------------------------------------------------------------------------------
def _self_transpose(x: Node) -> bool:
    if isinstance(x, N.Identity | N.DiagMat):
        return True
    if isinstance(x, N.Symbol) and x.symmetric:
        return True
    if isinstance(x, N.Add):
        terms = set(x.args)
        return all(transpose(t) in terms for t in x.args)
    if isinstance(x, N.Inv) or (isinstance(x, N.Power) and x.shape != ()):
        return _self_transpose(x.args[0])
    if isinstance(x, N.Apply | N.ElemPower | N.Neg) and x.shape != ():  # exp(x xᵀ), (x xᵀ)⊙²
        return _self_transpose(x.args[1] if isinstance(x, N.Apply) else x.args[0])
    if isinstance(x, N.Hadamard | N.ElemDiv) and x.shape != ():
        return all(f.shape == () or _self_transpose(f) for f in x.args)
    if isinstance(x, N.MatMul) and x.shape != () and x.shape[0] == x.shape[1]:
        return transpose(x) is x  # Xᵀ C X with C symmetric, Xᵀ X
    return False


def transpose(x: Node) -> Node:
    if x.shape == ():
        return x
    if isinstance(x, N.Transpose):
        return x.args[0]
    if isinstance(x, N.Ones | N.Zeros):
        return type(x)((x.shape[1], x.shape[0]))
    if isinstance(x, N.Neg):
        return neg(transpose(x.args[0]))
    if isinstance(x, N.MatMul):
        return mul(*[transpose(f) for f in reversed(x.args)])
    if isinstance(x, N.Div):
        return div(transpose(x.args[0]), x.args[1])
    if isinstance(x, N.Power) and isinstance(x.args[1], N.Number) and not _self_transpose(x.args[0]):
        return power(transpose(x.args[0]), x.args[1])  # (X²)ᵀ = (Xᵀ)²
    if isinstance(x, N.Add) and is_row(x.shape):  # a sum of rows reads better as a sum of columns
        return add(*[transpose(t) for t in x.args])
    if isinstance(x, N.Hadamard) and any(_self_transpose(f) for f in x.args):  # (A ⊙ S)ᵀ = Aᵀ ⊙ S
        return had(*[transpose(f) for f in x.args])
    if _self_transpose(x):
        return x
    if isinstance(x, N.Inv):
        return N.Transpose(x)
    return N.Transpose(x)


def inv(x: Node) -> Node:
    if isinstance(x, N.Inv):
        return x.args[0]
    if isinstance(x, N.Identity):
        return x
    if isinstance(x, N.Transpose):
        return transpose(inv(x.args[0]))
    return N.Inv(x)


def diagmat(v: Node) -> Node:
    if isinstance(v, N.Ones):
        return N.Identity(v.shape[0])
    if isinstance(v, N.Fill):
        return mul(v.value, N.Identity(v.shape[0]))
    if is_zero(v):
        return N.Zeros((v.shape[0], v.shape[0]))
    return N.DiagMat(v)


def diagvec(a: Node) -> Node:
    if isinstance(a, N.DiagMat):
        return a.args[0]
    if isinstance(a, N.Identity):
        return N.Ones((a.shape[0], 1))
    return N.DiagVec(a)


def numel(x: Node) -> Node:
    """``numel(x)`` by the simplest name of that shape: ``numel(y)`` rather than ``numel((y - f(X w)).^2)``."""
    for s_ in N.symbols_of(x):
        if s_.shape == x.shape:
            return N.Numel(s_)
    return N.Numel(x)


def ssum(x: Node) -> Node:
    if x.shape == ():
        return x
    if is_zero(x):
        return ZERO
    if isinstance(x, N.Ones):
        return numel(x)
    if isinstance(x, N.Transpose):
        return ssum(x.args[0])
    c, core = split_coeff(x)
    if c != 1:
        return scale(c, ssum(core))
    return N.Sum(x)


def dot(a: Node, b: Node) -> Node:
    if is_zero(a) or is_zero(b):
        return ZERO
    ca, a_core = split_coeff(a)
    cb, b_core = split_coeff(b)
    if (ca != 1 or cb != 1) and a_core is not None and b_core is not None:
        return scale(ca * cb, dot(a_core, b_core))
    if isinstance(a, N.Ones):
        return ssum(b)
    if isinstance(b, N.Ones):
        return ssum(a)
    return N.Dot(a, b)


def trace(x: Node) -> Node:
    if is_zero(x):
        return ZERO
    c, core = split_coeff(x)
    if c != 1:
        return scale(c, trace(core))
    return N.Trace(x)


def power(base: Node, e: Node) -> Node:
    if isinstance(e, N.Number):
        if e.value == 1:
            return base
        if e.value == 0:
            return ONE if base.shape == () else N.Identity(base.shape[0])
        if isinstance(base, N.Number) and e.value.denominator == 1 and (base.value != 0 or e.value > 0):
            return N.Number(base.value ** int(e.value))
        if base.shape != () and e.value == -1:
            return inv(base)
    return N.Power(base, e)


def epow(base: Node, e: Node) -> Node:
    if base.shape == ():
        return power(base, e)
    if isinstance(e, N.Number):
        if e.value == 1:
            return base
        if e.value == 0:
            return N.Ones(base.shape)
    return N.ElemPower(base, e)


def apply(function: str, x: Node) -> Node:
    return N.Apply(function, x)


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


def simplify(node: Node) -> Node:
    """Rebuild ``node`` bottom-up through the smart constructors (memoised over the shared DAG)."""
    from .parser import deep_recursion

    memo: dict[Node, Node] = {}

    def visit(n: Node) -> Node:
        done = memo.get(n)
        if done is not None:
            return done
        kids = n.children
        if not kids:
            out = n
        else:
            new = tuple(visit(k) for k in kids)
            rebuild = _REBUILD.get(type(n))
            if rebuild is not None:
                out = rebuild(n, new)
            else:
                out = n if all(a is b for a, b in zip(new, kids, strict=True)) else n.with_children(new)
        memo[n] = out
        return out

    with deep_recursion():
        return visit(node)
