"""The differentiation rules: one differential (JVP) rule per node type, as in the Matrix Cookbook.

``differential(F, X)`` returns ``dF``, an expression linear in ``dX`` (the node ``Differential(X)``), or
None when ``F`` does not depend on ``X``. Each rule below is the textbook identity for its operation:

==================  ==================================================================
sum, difference     d(u + v) = du + dv (a scalar term is expanded to the sum's shape)
product             d(u v) = du v + u dv (any chain of matrix and scalar factors)
element-wise        d(u ⊙ v) = du ⊙ v + u ⊙ dv;  d(u ⊘ v) = du ⊘ v - (u ⊙ dv) ⊘ v⊙²
functions           d f(u) = f'(u) ⊙ du, with f' from :data:`ELEMENTWISE_DERIVATIVES`
dot product         d(u · v) = du · v + u · dv
powers              d uᵖ = p uᵖ⁻¹ du;  d Aᵖ = Σ Aᵏ dA Aᵖ⁻¹⁻ᵏ;  d ‖u‖ᵖ = p ‖u‖ᵖ⁻² (u · du)
reductions          d sum(u) = sum(du);  d mean(u) = mean(du);  d logsumexp(u) = softmax(u) · du
norms               d ‖u‖ = (u · du) / ‖u‖;  d ‖u‖₁ = sign(u) · du
trace, det          d tr(A) = tr(dA);  d det(A) = det(A) tr(A⁻¹ dA);  d logdet(A) = tr(A⁻¹ dA)
inverse             d A⁻¹ = -A⁻¹ dA A⁻¹
softmax             d s = s ⊙ du - s (sᵀ du),  s = softmax(u);  d log s = du - 𝟙 (sᵀ du)
structure           d uᵀ = (du)ᵀ; d diag(u) = diag(du); d kron(A, B) = kron(dA, B) + kron(A, dB)
==================  ==================================================================

The kinks of relu, abs, sign and step are given the derivative of the right-hand piece at 0
(relu'(0) = step(0) = 0, abs'(0) = sign(0) = 0): the subgradient every deep-learning framework uses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .. import nodes as N
from .. import ops
from .. import simplify as S
from ..budget import current_limits
from ..errors import DerivativeError
from ..nodes import Node
from ..visit import find_method

ONE = S.ONE


def _ew(function: str, u: Node) -> Node:
    return N.Apply(function, u)


def _ew_square(u: Node) -> Node:
    return S.epow(u, N.Number(2))


def _ew_recip(u: Node) -> Node:
    return S.ediv(ONE, u)


class _Builder:
    """What an element-wise derivative in the catalogue (matcalc.ops) builds f'(u) with: simplifying
    constructors, so that the catalogue needs no import of the node classes."""

    one = ONE
    #: the number π, for derivatives with a Gaussian or an erf in them
    pi = N.Pi()
    apply = staticmethod(_ew)
    add = staticmethod(S.add)
    neg = staticmethod(S.neg)
    mul = staticmethod(S.mul)
    had = staticmethod(S.had)
    div = staticmethod(S.ediv)
    square = staticmethod(_ew_square)
    recip = staticmethod(_ew_recip)
    number = staticmethod(N.Number)


#: f'(u) for each element-wise function f, as an expression in u (None where f' is 0 almost everywhere).
ELEMENTWISE_DERIVATIVES: dict[str, Callable[[Node], Node | None]] = {
    name: partial(op.derivative, _Builder) for name, op in ops.ELEMENTWISE.items()}


def ew_mul(a: Node, b: Node) -> Node:
    """Element-wise product of a derivative factor and a differential (a plain product for scalars)."""
    if a.shape == () or b.shape == ():
        return S.mul(a, b)
    return S.had(a, b)


def inner(a: Node, b: Node) -> Node:
    """⟨a, b⟩ = sum(a ⊙ b): the dot product for vectors, tr(aᵀ b) for matrices."""
    if a.shape == () or b.shape == ():
        return S.mul(a, b)
    if len(a.shape) == 2 and (a.shape[1] == 1 or a.shape[0] == 1):
        return S.dot(a, b) if a.shape == b.shape else S.dot(a, S.transpose(b))
    return S.ssum(S.had(a, b))


class Differentiator:
    """Computes differentials with respect to one variable, memoised over the shared DAG.

    The operators' rules are methods here; a call's rule is its record's ``differential(d, n)`` in the
    operation catalogue, which gets this object: ``d.d(child)``, the constructors ``d.S`` and ``d.N``.
    """

    S = S
    N = N
    inner = staticmethod(inner)

    def __init__(self, variable: N.Symbol):
        self.variable = variable
        self.dvar = N.Differential(variable)
        self.memo: dict[Node, Node | None] = {}

    def d(self, node: Node) -> Node | None:
        if node in self.memo:
            return self.memo[node]
        rule = find_method(self, "d_", type(node))
        if rule is None:  # pragma: no cover - every node type has a rule
            raise DerivativeError(f"no differentiation rule for {type(node).__name__}")
        out = rule(node)
        if out is not None and S.is_zero(out):
            out = None
        if out is not None and out.shape != node.shape:
            out = S.mul(out, N.Ones(node.shape)) if out.shape == () else out
        self.memo[node] = out
        return out

    # --- leaves ------------------------------------------------------------------------------------
    def d_Symbol(self, n):
        return self.dvar if n is self.variable else None

    def _constant(self, n):
        return None

    d_Number = d_Pi = d_Identity = d_Commutation = d_Ones = d_Zeros = d_Differential = _constant

    def d_Fill(self, n):
        dc = self.d(n.value)
        return None if dc is None else S.mul(dc, N.Ones(n.shape))

    # --- arithmetic --------------------------------------------------------------------------------
    def d_Add(self, n):
        parts = [self.d(t) for t in n.args]
        parts = [p for p in parts if p is not None]
        return S.add(*parts, S.zero_like(n.shape)) if parts else None

    def d_Neg(self, n):
        dx = self.d(n.args[0])
        return None if dx is None else S.neg(dx)

    def d_MatMul(self, n):
        terms = []
        for i, f in enumerate(n.args):
            df = self.d(f)
            if df is not None:
                terms.append(S.mul(*n.args[:i], df, *n.args[i + 1:]))
        return S.add(*terms) if terms else None

    def d_Div(self, n):
        x, s = n.args
        dx, ds = self.d(x), self.d(s)
        terms = []
        if dx is not None:
            terms.append(S.div(dx, s))
        if ds is not None:
            terms.append(S.neg(S.mul(S.div(ds, S.power(s, N.Number(2))), x)))
        return S.add(*terms) if terms else None

    def d_Hadamard(self, n):
        terms = []
        for i, f in enumerate(n.args):
            df = self.d(f)
            if df is not None:
                terms.append(S.had(*n.args[:i], df, *n.args[i + 1:]))
        return S.add(*terms, S.zero_like(n.shape)) if terms else None

    def d_ElemDiv(self, n):
        a, b = n.args
        da, db = self.d(a), self.d(b)
        terms = []
        if da is not None:
            terms.append(S.ediv(da, b))
        if db is not None:
            terms.append(S.neg(S.ediv(ew_mul(a, db), _ew_square(b))))
        return S.add(*terms, S.zero_like(n.shape)) if terms else None

    def d_Power(self, n):
        base, e = n.args
        db, de = self.d(base), self.d(e)
        if base.shape != ():
            return self._matrix_power(base, e, db)
        terms = []
        if db is not None:
            if isinstance(base, N.Norm) and base.order == 2 and isinstance(e, N.Number):
                # d ‖u‖ᵖ = p ‖u‖ᵖ⁻² ⟨u, du⟩: no ‖u‖ / ‖u‖ left to cancel
                u = base.args[0]
                du = self.d(u)
                terms.append(S.mul(e, S.power(base, N.Number(e.value - 2)), inner(u, du)))
            elif isinstance(e, N.Number) or de is None:
                terms.append(S.mul(e, S.power(base, S.add(e, N.Number(-1))), db))
            else:
                terms.append(S.mul(e, S.power(base, S.add(e, N.Number(-1))), db))
        if de is not None:
            terms.append(S.mul(n, N.Apply("log", base), de))
        return S.add(*terms) if terms else None

    def _matrix_power(self, base, e, db):
        if db is None:
            return None
        p = int(e.value)
        if p == 0:
            return None
        if p < 0:
            return self.d(S.power(N.Inv(base), N.Number(-p)))
        if p > current_limits().exponent:
            raise DerivativeError(
                f"the differential of a matrix to the power {_short(p)} is a sum of {_short(p)} terms "
                f"A^k dA A^(p-1-k), and matcalc writes it out only up to p = {current_limits().exponent} "
                "(matcalc.limits(exponent=...)); tr(A^p), det(A^p) and logdet(A^p) have closed forms at any p")
        terms = [S.mul(S.power(base, N.Number(k)), db, S.power(base, N.Number(p - 1 - k))) for k in range(p)]
        return S.add(*terms)

    def d_ElemPower(self, n):
        base, e = n.args
        db, de = self.d(base), self.d(e)
        terms = []
        if db is not None:
            terms.append(S.had(e, S.epow(base, S.add(e, N.Number(-1))), db))
        if de is not None:
            terms.append(S.had(n, N.Apply("log", base), de))
        return S.add(*terms, S.zero_like(n.shape)) if terms else None

    def d_Transpose(self, n):
        dx = self.d(n.args[0])
        return None if dx is None else S.transpose(dx)

    # --- functions ---------------------------------------------------------------------------------
    def d_Apply(self, n):
        u = n.args[1]
        du = self.d(u)
        if du is None:
            return None
        if n.function == "log" and isinstance(u, N.Softmax):
            # log-softmax: d log s = du - 𝟙 (sᵀ du), so s ⊘ s never has to cancel
            s = u
            v = s.args[0]
            dv = self.d(v)
            return S.add(dv, S.neg(S.mul(N.Ones(s.shape), S.transpose(s), dv)))
        if n.function == "log" and isinstance(u, N.SoftmaxRows):  # the same, row by row
            dv = self.d(u.args[0])
            return S.add(dv, S.neg(S.mul(S.mul(S.had(u, dv), N.Ones((dv.shape[1], 1))), N.Ones((1, dv.shape[1])))))
        fprime = ELEMENTWISE_DERIVATIVES[n.function](u)
        if fprime is None:
            return None
        return ew_mul(fprime, du)

    def d_Call(self, n):
        """A call (det, softmax, kron ...): the differential rule of its record in the catalogue."""
        return n.record.differential(self, n)

    def d_VectorLit(self, n):
        parts = [self.d(e) for e in n.args]
        if all(p is None for p in parts):
            return None
        return N.VectorLit(*[S.ZERO if p is None else p for p in parts])

    def d_MatrixLit(self, n):
        parts = [[self.d(e) for e in row] for row in n.rows]
        if all(p is None for row in parts for p in row):
            return None
        return N.MatrixLit([[S.ZERO if p is None else p for p in row] for row in parts])


def _short(p: int) -> str:
    return f"{p:,}" if p < 10**15 else f"of about {len(str(p)) if p.bit_length() < 13000 else 'many'} digits"


def differential(expr: Node, variable: N.Symbol) -> Node | None:
    """``dF``: the differential of ``expr`` with respect to ``variable`` (None when it is zero)."""
    from ..recursion import deep_recursion

    with deep_recursion():
        return Differentiator(variable).d(expr)
