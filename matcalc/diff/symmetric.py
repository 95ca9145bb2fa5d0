"""A Hessian printed as a symmetric expression (issue #16, item 4).

The forward Jacobian of a gradient reads the Hessian off one side of the second differential, so it can come
out as ``((A + Aᵀ) x xᵀ + c I)(A + Aᵀ)`` or ``G + Hᵀ``-like sums whose symmetry is hidden, although a
Hessian is symmetric. :func:`symmetric_form` rewrites it as a sum whose terms are each their own transpose
or come in pairs ``T + Tᵀ``:

1. the Hessian is split into terms (``c · scalars · matrix chain``); a term that is its own transpose stays
   as it is (``S T S`` with symmetric ``S`` and ``T`` is not multiplied out);
2. a term whose transpose is not among the terms is multiplied out over one of its sum factors (a sum that
   is not symmetric first), the like terms are collected, and the pairing is tried again;
3. a term still without its transpose is replaced by ``(T + Tᵀ)/2``: this is exact because the Hessian is
   symmetric (``H = (H + Hᵀ)/2``), and it is the only place where that fact is used.

The simplifier then rebuilds the sum (its common-factor rule no longer factors a symmetric sum into a
product that hides the symmetry). The result is kept only when it shows the symmetry; otherwise, or when
multiplying out would produce more than :data:`MAX_TERMS` terms, the Hessian is returned unchanged.
"""

from __future__ import annotations

import functools
import hashlib
from fractions import Fraction

from .. import nodes as N
from .. import simplify as S
from ..nodes import Node
from ..printing import to_text, tree_size

#: The most terms multiplying out may produce before the Hessian is left as the forward pass built it.
MAX_TERMS = 24
#: Larger Hessians (in DAG nodes) are left as the forward pass built them: no reader reads them whole, and
#: comparing their terms would cost more than the derivation.
MAX_NODES = 250


@functools.lru_cache(maxsize=1 << 14)
def _order(n: Node) -> tuple:
    """A deterministic order for commuting factors: by the text for small nodes (``s ⊙ y``), by a digest
    of the structure for large ones (printing a large DAG whole would cost far more than the rest)."""
    size = tree_size(n)
    if size <= 200:
        return (0, to_text(n))
    return (1, _digest(n))


@functools.lru_cache(maxsize=1 << 14)
def _digest(n: Node) -> str:
    parts = [type(n).__name__] + [_digest(a) if isinstance(a, Node) else repr(a) for a in n.args]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


def symmetric_form(h: Node) -> Node:
    """``h`` (a Hessian, known to be symmetric) as an expression that shows its symmetry, or ``h`` itself."""
    if len(h.shape) != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 1 or S._self_transpose(h) \
            or N.count_nodes(h) > MAX_NODES:
        return h
    with S.keeping_symmetry():
        terms = _paired_terms(_terms(h))
        if terms is None:
            return h
        out = S.add(*terms) if len(terms) > 1 else (terms[0] if terms else S.zero_like(h.shape))
    if out.shape != h.shape or not S._self_transpose(out) or not _same_value(h, out):
        return h
    return out


def _same_value(h: Node, out: Node) -> bool:
    """A guard against a wrong rewrite: ``out`` and ``h`` agree at a random point (positive entries,
    diagonally dominant matrices, sizes 2, 3, ...); a point where ``h`` cannot be evaluated keeps ``h``."""
    import numpy as np

    from ..errors import MatcalcError
    from ..numeric import evaluate

    both = N.Add(h, out)
    sizes = {d.name: 2 + i for i, d in enumerate(N.dims_in(both))}
    rng = np.random.default_rng(1616)
    values = {}
    for sym in N.symbols_of(both):
        shape = tuple(d if isinstance(d, int) else sizes[d.name] for d in sym.shape)
        v = rng.uniform(0.5, 1.5, shape)
        if len(shape) == 2 and shape[0] == shape[1] and shape[1] != 1:
            v = (v + v.T) / 2 if sym.symmetric else v
            v = v + shape[0] * np.eye(shape[0])
        values[sym.name] = v.reshape(-1) if len(shape) == 2 and shape[1] == 1 else v
    try:
        with np.errstate(all="ignore"):
            a = np.asarray(evaluate(h, values, sizes=sizes), float)
            b = np.asarray(evaluate(out, values, sizes=sizes), float)
    except (MatcalcError, ArithmeticError, ValueError, np.linalg.LinAlgError):
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    return bool(np.allclose(a, b, rtol=1e-8, atol=1e-10 * max(1.0, float(np.abs(a).max()))))


def _terms(h: Node) -> dict[Node, Fraction]:
    """The terms of ``h`` as ``{core: coefficient}``, like terms collected."""
    out: dict[Node, Fraction] = {}
    for t in S._flatten_terms([h]):
        c, core = S.split_coeff(t)
        if core is None:  # a broadcast number: c 𝟙𝟙ᵀ
            c, core = c, N.Ones(h.shape)
        elif core.shape == ():
            core = S.mul(core, N.Ones(h.shape))
        c2, core = _signed(core)
        out[core] = out.get(core, Fraction(0)) + c * c2
    return {k: v for k, v in out.items() if v != 0}


def _paired_terms(terms: dict[Node, Fraction]) -> list[Node] | None:
    """The terms, each symmetric or with its transpose beside it at the same coefficient; None past MAX_TERMS."""
    for _ in range(4 * MAX_TERMS):
        lonely = [k for k in terms if _transposed(k)[1] not in terms]
        expanded = next((e for e in (_expand(k) for k in lonely) if e is not None), None)
        if expanded is None:
            break
        core, parts = expanded
        c = terms.pop(core)
        for part in parts:
            pc, pcore = S.split_coeff(part)
            if pcore is None or pcore.shape == ():
                pcore = S.mul(pcore or S.ONE, N.Ones(core.shape))
            sign, pcore = _signed(pcore)
            terms[pcore] = terms.get(pcore, Fraction(0)) + c * pc * sign
        terms = {k: v for k, v in terms.items() if v != 0}
        if len(terms) > MAX_TERMS:
            return None
    sym: dict[Node, Fraction] = {}
    partner: dict[Node, Node] = {}
    for k, c in terms.items():  # H = (H + Hᵀ)/2
        ct, kt = _transposed(k)
        sym[k] = sym.get(k, Fraction(0)) + c / 2
        sym[kt] = sym.get(kt, Fraction(0)) + c * ct / 2
        partner[k] = kt
    out: list[Node] = []
    done: set[Node] = set()
    for k in list(sym):  # a term and its transpose side by side
        for m in (k, partner.get(k)):
            if m is not None and m not in done:
                done.add(m)
                if sym[m] != 0:
                    out.append(S.scale(sym[m], m))
    return out


@functools.lru_cache(maxsize=1 << 12)
def _transposed(k: Node) -> tuple[Fraction, Node]:
    """``kᵀ`` as ``c · core`` in the canonical spelling of :func:`_signed`."""
    return _signed(S.transpose(k))


@functools.lru_cache(maxsize=1 << 12)
def _canonical(core: Node) -> Node:
    """One spelling of a term whose factors commute: element-wise factors in a fixed order
    (``s ⊙ y`` and ``y ⊙ s`` are one factor), scalar factors in a fixed order, and inner products inside
    a chain taken out as scalars in one orientation (``s yᵀ s sᵀ = (sᵀ y) s sᵀ``), so that a term and its
    transpose are recognised. Only the algebra of the term is visited: the arguments of functions,
    inverses and reductions are atoms here."""
    if isinstance(core, N.Hadamard):
        return S.had(*sorted((_canonical(f) for f in core.args), key=_order))
    if isinstance(core, N.MatMul):
        c = [_canonical(f) for f in core.args]
        scalars = sorted((f for f in c if f.shape == ()), key=_order)
        return _inner_products_out(S.mul(*scalars, *[f for f in c if f.shape != ()]))
    if isinstance(core, N.Add):
        return S.add(*[_canonical(t) for t in core.args])
    if isinstance(core, N.Neg):
        return S.neg(_canonical(core.args[0]))
    if isinstance(core, N.Transpose):
        return S.transpose(_canonical(core.args[0]))
    if isinstance(core, N.Div):
        return S.div(_canonical(core.args[0]), core.args[1])
    if isinstance(core, N.DiagMat):
        return S.diagmat(_canonical(core.args[0]))
    return core


def _inner_products_out(m: Node) -> Node:
    """``L a bᵀ … u vᵀ R -> (bᵀ u) L a … vᵀ R``: a row times a column inside a chain is a scalar factor."""
    if not isinstance(m, N.MatMul):
        return _oriented(m)
    chain = [f for f in m.args if f.shape != ()]
    for i in range(len(chain) - 1):
        a, b = chain[i], chain[i + 1]
        if len(chain) > 2 and a.shape[0] == 1 and b.shape[1] == 1 and a.shape != () and b.shape != ():
            scalars = [f for f in m.args if f.shape == ()]
            return _inner_products_out(S.mul(*scalars, _oriented(S.mul(a, b)), *chain[:i], *chain[i + 2:]))
    return _oriented(m)


def _oriented(m: Node) -> Node:
    """A scalar ``uᵀ v`` written in one of its two orientations (``uᵀ v`` or ``vᵀ u``)."""
    if isinstance(m, N.MatMul) and m.shape == () and len(m.args) == 2 and all(f.shape != () for f in m.args):
        other = S.mul(S.transpose(m.args[1]), S.transpose(m.args[0]))
        return min(m, other, key=_order)
    return m


@functools.lru_cache(maxsize=1 << 12)
def _signed(core: Node) -> tuple[Fraction, Node]:
    """``core`` as ``c · core'``: ``core'`` canonical (:func:`_canonical`), its numbers (also those inside
    ``(4 / (xᵀx)²)``) in ``c``, its scalar factors in one order, and each matrix sum factor in one
    orientation of its sign (``diag(s) - s sᵀ`` rather than ``s sᵀ - diag(s)``), so that ``U V (-U)``
    and ``-U V U`` are one term."""
    c, scalars, chain = _factors(_canonical(core))
    c2, nums, dens = S._scalar_powers(scalars)
    c *= c2
    for i, f in enumerate(chain):
        if isinstance(f, N.Add) and f.shape != ():
            g = S.add(*[S.neg(t) for t in f.args])
            if isinstance(g, N.Add) and (_negatives(g), _order(g)) < (_negatives(f), _order(f)):
                c, chain[i] = -c, g
    rest = sorted(nums, key=_order) + [S.power(d, N.Number(-1)) for d in dens] + chain
    c3, out = S.split_coeff(S.mul(*rest)) if rest else (Fraction(1), S.ONE)
    return c * c3, (out if out is not None else S.ONE)


def _negatives(f: N.Add) -> int:
    """How many terms of a sum are negative: ``A + Aᵀ`` is preferred to ``-A - Aᵀ``."""
    return sum(S.split_coeff(t)[0] < 0 for t in f.args)


def _expand(core: Node) -> tuple[Node, list[Node]] | None:
    """``(core, terms)``: ``core`` multiplied out over one sum factor, or None when it has none."""
    coeff, scalars, chain = _factors(core)
    sums = [i for i, f in enumerate(chain) if isinstance(_sum_of(f), N.Add)]
    if not sums:
        return None
    i = next((i for i in sums if not S._self_transpose(chain[i])), sums[0])
    f = chain[i]
    whole = _sum_of(f)
    parts = []
    for t in whole.args:
        t = S.mul(t, N.Ones(whole.shape)) if t.shape == () else t
        piece = S.transpose(t) if f is not whole else t
        parts.append(S.mul(N.Number(coeff), *scalars, *chain[:i], piece, *chain[i + 1:]))
    return core, parts


def _sum_of(f: Node) -> Node:
    """The sum a chain factor stands for: ``(A + B)ᵀ`` is the sum ``A + B`` transposed."""
    return f.args[0] if isinstance(f, N.Transpose) else f


def _factors(core: Node) -> tuple[Fraction, list[Node], list[Node]]:
    """``core`` as (coefficient, scalar factors, matrix chain); a quotient's divisor becomes a scalar factor."""
    if isinstance(core, N.Div):
        c, scalars, chain = _factors(core.args[0])
        return c, scalars + [S.power(core.args[1], N.Number(-1))], chain
    split = S._split_factors([core])
    if split is None:  # pragma: no cover - a zero term was dropped when the terms were collected
        return Fraction(0), [], [core]
    return split
