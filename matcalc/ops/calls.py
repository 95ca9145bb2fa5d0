"""The calls of the language that are not element-wise, one :class:`~matcalc.ops.records.Function` record
each: spellings, typing, shape rule, differential, transpose and Jacobian rules where linear, NumPy and
SymPy evaluation, printed forms and generated code.

A rule receives what applies it (see the record's docstring): ``d`` the differentiator, ``t``/``f`` the
transposition and forward-Jacobian passes, ``ev`` the NumPy evaluator, ``b`` the SymPy builder, ``p`` a
printer or a code printer. Those objects give the rules the constructors and helpers they need
(``d.S.mul``, ``p.fn("sum")``), so that this module imports nothing of the stages.

Records whose ``node`` is None, or that share another record's node (``min``, ``norm1``, ``outer``), are
spellings only: the typechecker rewrites them. The size constants and literals (``ones``, ``zeros``,
``eye``, ``vector``, ``matrix``) and ``outer`` build core nodes, whose rules sit with the operators'.
"""

from __future__ import annotations

from typing import Any

from ..errors import ShapeError
from ..shapes import describe, dim_product, is_column, is_matrix, is_square, is_vector, vector_length
from .records import Function

__all__ = ["FUNCTION_RECORDS"]


# --- shapes ----------------------------------------------------------------------------------------------
def _fail(message: str):
    raise ShapeError(message)


def _scalar(*args) -> tuple:
    """A reduction of all entries: a scalar."""
    return ()


def _square_scalar(a) -> tuple:
    if not is_square(a.shape):
        _fail(f"needs a square matrix, not {describe(a.shape)}")
    return ()


def _inv_shape(a) -> tuple:
    if not is_square(a.shape):
        _fail(f"inv needs a square matrix, not {describe(a.shape)}")
    return a.shape


def _norm_shape(x, order) -> tuple:
    if order not in (1, 2):
        _fail("norm order must be 1 or 2")
    return ()


def _softmax_shape(v) -> tuple:
    if not is_column(v.shape):
        _fail(f"softmax needs a column vector, not {describe(v.shape)}")
    return v.shape


def _row_wise_shape(x) -> tuple:
    """A function of each row of a vector or matrix (``axis=1``; ``axis=0`` is it of the transpose)."""
    if x.shape == ():
        _fail("a row-wise operation needs a vector or a matrix, not a scalar")
    return x.shape


def _row_reduction_shape(x) -> tuple:
    """Each row reduced to one entry: m x n gives a column of length m (a 1 x n row, a scalar)."""
    if x.shape == ():
        _fail("a row-wise reduction needs a vector or a matrix, not a scalar")
    return () if x.shape[0] == 1 else (x.shape[0], 1)


def _diagmat_shape(v) -> tuple:
    if not is_column(v.shape):
        _fail(f"diag(v) needs a column vector, not {describe(v.shape)}")
    return (v.shape[0], v.shape[0])


def _diagvec_shape(a) -> tuple:
    if not (is_square(a.shape) and is_matrix(a.shape)):
        _fail(f"diag(A) needs a square matrix, not {describe(a.shape)}")
    return (a.shape[0], 1)


def _kron_shape(a, b) -> tuple:
    if a.shape == () or b.shape == ():
        _fail("kron needs two vectors or matrices")
    shape = (dim_product(a.shape[0], b.shape[0]), dim_product(a.shape[1], b.shape[1]))
    return () if shape == (1, 1) else shape


def _dot_shape(a, b) -> tuple:
    if not (is_vector(a.shape) and is_vector(b.shape)):
        _fail(f"dot product needs two vectors, not {describe(a.shape)} and {describe(b.shape)}")
    if vector_length(a.shape) != vector_length(b.shape):
        _fail(f"dot product of {describe(a.shape)} and {describe(b.shape)}")
    return ()


# --- differentials ---------------------------------------------------------------------------------------
def _linear(build):
    """The differential of a node linear in its one argument: the same node of the argument's differential."""
    def rule(d, n):
        dx = d.d(n.args[0])
        return None if dx is None else build(d, n, dx)
    rule.__doc__ = build.__doc__
    return rule


def matrix_power_parts(x) -> tuple[Any, int] | None:
    """``(A, p)`` when ``x`` is the matrix power ``Aᵖ`` with an integer ``p != 0``; else None."""
    if type(x).__name__ == "Power" and x.shape != () and type(x.args[1]).__name__ == "Number":
        p = int(x.args[1].value)
        if p != 0:
            return x.args[0], p
    return None


def _d_trace(d, n):
    """d tr(A) = tr(dA); d tr(Aᵖ) = p tr(Aᵖ⁻¹ dA), the trace being cyclic, at any p."""
    S, N = d.S, d.N
    power = matrix_power_parts(n.args[0])
    if power is not None:
        base, p = power
        db = d.d(base)
        return None if db is None else S.mul(N.Number(p), S.trace(S.mul(S.power(base, N.Number(p - 1)), db)))
    dx = d.d(n.args[0])
    return None if dx is None else S.trace(dx)


def _trace_inv_d(d, a):
    """tr(A⁻¹ dA), the differential of logdet(A); for A = Bᵖ it is p tr(B⁻¹ dB) at any p."""
    S, N = d.S, d.N
    power = matrix_power_parts(a)
    if power is not None:
        base, p = power
        inner = _trace_inv_d(d, base)
        return None if inner is None else S.mul(N.Number(p), inner)
    da = d.d(a)
    return None if da is None else S.trace(S.mul(S.inv(a), da))


def _d_det(d, n):
    """d det(A) = det(A) tr(A⁻¹ dA)."""
    t = _trace_inv_d(d, n.args[0])
    return None if t is None else d.S.mul(n, t)


def _d_logsumexp(d, n):
    """d logsumexp(u) = softmax(u) · du."""
    S, N = d.S, d.N
    u = n.args[0]
    du = d.d(u)
    if du is None:
        return None
    if u.shape != () and u.shape[1] == 1:
        return S.dot(N.Softmax(u), du)
    if u.shape == ():
        return du
    weights = S.div(N.Apply("exp", u), S.ssum(N.Apply("exp", u)))
    return d.inner(weights, du)


def _d_norm(d, n):
    """d ‖u‖ = (u · du) / ‖u‖;  d ‖u‖₁ = sign(u) · du."""
    u = n.args[0]
    du = d.d(u)
    if du is None:
        return None
    if n.order == 1:
        return d.inner(d.N.Apply("sign", u), du)
    return d.S.div(d.inner(u, du), n)


def _d_dot(d, n):
    """d(u · v) = du · v + u · dv."""
    S = d.S
    a, b = n.args
    da, db = d.d(a), d.d(b)
    terms = []
    if da is not None:
        terms.append(S.dot(da, b) if da.shape == b.shape else d.inner(da, b))
    if db is not None:
        terms.append(S.dot(a, db) if a.shape == db.shape else d.inner(a, db))
    return S.add(*terms) if terms else None


def _d_softmax(d, n):
    """d s = s ⊙ du - s (sᵀ du), s = softmax(u)."""
    S = d.S
    du = d.d(n.args[0])
    if du is None:
        return None
    return S.add(S.had(n, du), S.neg(S.mul(n, S.transpose(n), du)))


def _row_sums(d, weights, dx):
    """``(W ⊙ dX) 𝟙``: each row's weighted sum of the tangent (a scalar for a single row)."""
    return d.S.mul(d.S.had(weights, dx), d.N.Ones((dx.shape[1], 1)))


def _d_softmax_rows(d, n):
    """d softmax_rows(X) = P ⊙ (dX − ((P ⊙ dX) 𝟙) 𝟙ᵀ), P = softmax_rows(X): each row's softmax rule."""
    S = d.S
    dx = d.d(n.args[0])
    if dx is None:
        return None
    spread = S.mul(_row_sums(d, n, dx), d.N.Ones((1, dx.shape[1])))
    return S.had(n, S.add(dx, S.neg(spread)))


def _d_row_weighted(weights: str):
    """d r(X) = (W ⊙ dX) 𝟙 for a row reduction r whose gradient weights are the node ``weights`` of X:
    softmax_rows for logsumexp, the tie-splitting maxmask for max (as PyTorch's amax)."""
    def rule(d, n):
        x = n.args[0]
        dx = d.d(x)
        return None if dx is None else _row_sums(d, getattr(d.N, weights)(x), dx)
    return rule


def _d_kron(d, n):
    """d kron(A, B) = kron(dA, B) + kron(A, dB)."""
    a, b = n.args
    da, db = d.d(a), d.d(b)
    terms = []
    if da is not None:
        terms.append(d.N.Kron(da, b))
    if db is not None:
        terms.append(d.N.Kron(a, db))
    return d.S.add(*terms) if terms else None


def _d_constant(d, n):
    """A constant (numel) or piecewise constant (maxmask): 0 almost everywhere, like step."""
    return None


# --- transposition and forward Jacobians of the linear calls ---------------------------------------------
def _spread(t, x, c):
    """``c`` on every entry of ``x``'s shape: the cotangent of a sum's argument."""
    return c if x.shape == () else t.S.mul(c, t.N.Ones(x.shape))


def _t_kron(t, n, c):
    """c = Σ kron(P, Q) block by block: ⟨c, kron(A, dX)⟩ = Σ ⟨A, P⟩ ⟨Q, dX⟩, and alike for kron(dX, B)."""
    S = t.S
    i = t.one_dependent(n)
    f, other = n.args[i], n.args[1 - i]
    blocks = t.kron_blocks(c, n.args[0].shape, n.args[1].shape)
    if blocks is not None:
        return [(f, S.add(S.zero_like(f.shape), *[S.mul(t.inner(other, pq[1 - i]), pq[i]) for pq in blocks]))]
    if not (is_column(f.shape) and is_column(other.shape)):
        raise t.not_found(n)
    f, k = t.kron_as_product(n, "gradient")
    return [(f, S.mul(S.transpose(k), c))]


def _t_dot(t, n, c):
    i = t.one_dependent(n)
    f, other = n.args[i], n.args[1 - i]
    o = other if other.shape == f.shape else t.S.transpose(other)
    return [(f, t.S.mul(c, o))]


def _f_sum(f, n, tangents):
    x = n.args[0]
    return tangents[x] if x.shape == () else f.S.mul(f.N.Ones((1, f.length(x))), tangents[x])


def _f_diagvec(f, n, tangents):
    """diag(L diag(v) R)_i = Σ_j L_ij v_j R_ji, so the Jacobian is (L ⊙ Rᵀ) ∂v."""
    S, N = f.S, f.N
    parts = []
    for sign, left, v, right in f.diag_terms(n.args[0]):
        weights = S.had(left, S.transpose(right)) if left.shape != () and right.shape != () else (
            S.mul(left, right) if left.shape == () and right.shape == () else None)
        if weights is None:  # one side is the identity: diag(diag(v) R) = v ⊙ diag(R)
            side = right if left.shape == () else left
            weights = S.mul(left if left.shape == () else right, S.diagmat(S.diagvec(side)))
        else:
            weights = weights if weights.shape != () else S.mul(weights, N.Identity(n.shape[0]))
        parts.append(S.scale(sign, S.mul(weights, tangents[v])))
    return S.add(*parts)


def _f_trace(f, n, tangents):
    """tr(L diag(v) R) = Σ_j (R L)_jj v_j = diag(R L)ᵀ v."""
    S, N = f.S, f.N
    parts = []
    for sign, left, v, right in f.diag_terms(n.args[0]):
        rl = S.mul(right, left)
        weights = S.diagvec(rl) if rl.shape != () else S.mul(rl, N.Ones((f.length(v), 1)))
        parts.append(S.scale(sign, S.mul(S.transpose(weights), tangents[v])))
    return S.add(*parts)


def _f_kron(f, n, tangents):
    v, k = f.kron_as_product(n, "Jacobian")
    return f.S.mul(k, tangents[v])


def _f_dot(f, n, tangents):
    i = f.one_dependent(n)
    v, other = n.args[i], n.args[1 - i]
    return f.S.mul(f.S.transpose(f.vec(other)), tangents[v])


def _c_diagmat(c, m, v, w, tr):
    """(W ⊙ diag(p)) v = diag(W) ⊙ v ⊙ p, the same transposed."""
    weights = v if w is None else c.S.had(c.S.diagvec(w), v)
    return c.S.mul(c.S.diagmat(weights), c.jac(m.args[0]))


def _c_kron(c, m, v, w, tr):
    """kron(p, B) v = (I ⊗ B v) p and kron(A, p) v = (A v ⊗ I) p; transposed through unvec; otherwise block
    by block (:func:`_c_kron_by_blocks`)."""
    S, N = c.S, c.N
    a, b = m.args
    if w is not None or c.is_matrix_valued(a if a in c.deps else b):
        return _c_kron_by_blocks(c, m, v, w, tr)
    if a in c.deps and is_column(a.shape) and b.shape != ():
        if not tr:  # kron(p, B) v = p ⊗ (B v) = (I ⊗ B v) p
            return S.mul(N.Kron(N.Identity(a.shape[0]), S.mul(b, v)), c.jac(a))
        vm = c.unvec(v, b.shape[0], a.shape[0])  # kron(p, B)ᵀ v = Bᵀ V p with vec(V) = v
        if vm is not None:
            return S.mul(S.transpose(b), vm, c.jac(a))
    if b in c.deps and is_column(b.shape) and a.shape != ():
        if not tr:  # kron(A, p) v = (A v) ⊗ p = (A v ⊗ I) p
            return S.mul(N.Kron(S.mul(a, v), N.Identity(b.shape[0])), c.jac(b))
        vm = c.unvec(v, b.shape[0], a.shape[0])  # kron(A, p)ᵀ v = Aᵀ Vᵀ p with vec(V) = v
        if vm is not None:
            return S.mul(S.transpose(a), S.transpose(vm), c.jac(b))
    raise c.not_found(m)


def _c_kron_by_blocks(c, m, v, w, tr):
    """``(kron(P, Q) ⊙ kron(A, F)) kron(α, β) = ((P ⊙ A) α) ⊗ ((Q ⊙ F) β)``, summed over the blocks of
    ``W`` and ``v``; ``c ⊗ y = (c ⊗ I) y`` and ``y ⊗ c = (I ⊗ c) y`` leave the tangent's factor."""
    S, N = c.S, c.N
    a, b = m.args
    weights = [(None, None)] if w is None else c.kron_blocks(w, a.shape, b.shape)
    ca, cb = (a.shape[0], b.shape[0]) if tr else (a.shape[1], b.shape[1])
    pieces = c.kron_blocks(v, (ca, 1), (cb, 1))
    first = a in c.deps
    f = a if first else b
    if weights is None or pieces is None or not c.is_matrix_valued(f):
        raise c.not_found(m if w is None else S.had(w, m))
    eye = N.Identity(c.out_length(f, tr))
    parts = []
    for p, q in weights:
        for alpha, beta in pieces:
            if first:
                parts.append(S.mul(N.Kron(eye, c.constant(b, beta, q, tr)), c.apply(a, alpha, p, tr)))
            else:
                parts.append(S.mul(N.Kron(c.constant(a, alpha, p, tr), eye), c.apply(b, beta, q, tr)))
    return S.add(*parts)


# --- evaluation --------------------------------------------------------------------------------------------
def _np_logdet(ev, n, a):
    sign, logabs = ev.np.linalg.slogdet(a)
    if sign < 0:
        return ev.np.nan  # log of a negative determinant: not real
    return logabs if sign > 0 else -ev.np.inf


def _np_inv(ev, n, a):
    try:
        return ev.np.linalg.inv(a)
    except ev.np.linalg.LinAlgError:
        return ev.singular(n, a)  # a NaN placeholder only det(X) ... inv(X) may use, as the adjugate


def _np_softmax(ev, n, v):
    e = ev.np.exp(v - ev.np.max(v))
    return e / ev.np.sum(e)


def _np_softmax_rows(ev, n, x):
    np = ev.np
    x = np.atleast_2d(x)
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return ev.out(n, e / np.sum(e, axis=1, keepdims=True))


def _np_logsumexp_rows(ev, n, x):
    rows = ev.np.atleast_2d(x)
    return ev.out(n, ev.np.array([[ev.logsumexp(row)] for row in rows]).reshape(-1, 1))


def _np_max_rows(ev, n, x):
    return ev.out(n, ev.np.max(ev.np.atleast_2d(x), axis=1, keepdims=True))


def _np_maxmask(ev, n, x):
    np = ev.np
    x = np.atleast_2d(x)
    top = (x == np.max(x, axis=1, keepdims=True)).astype(np.float64)
    return ev.out(n, top / np.sum(top, axis=1, keepdims=True))


def _sp_norm(b, n, v):
    entries = b.entries(v)
    if n.order == 1:
        return b.sp.Add(*[b.sp.Abs(e) for e in entries])
    return b.sp.sqrt(b.sp.Add(*[e**2 for e in entries]))


def _sp_softmax(b, n, v):
    e = v.applyfunc(b.sp.exp)
    return e / b.sp.Add(*e)


def _sp_softmax_rows(b, n, v):
    rows = [[b.sp.exp(e) for e in row] for row in b.rows_of(v)]
    return b.sp.Matrix([[e / b.sp.Add(*row) for e in row] for row in rows])


def _sp_logsumexp_rows(b, n, v):
    sp = b.sp
    return b.column(n, [sp.log(sp.Add(*[sp.exp(e) for e in row])) for row in b.rows_of(v)])


def _sp_maxmask(b, n, v):
    sp = b.sp

    def mask(row):
        # Heaviside(·, 1) rather than a Piecewise: lambdify simplifies a Piecewise's conditions, which
        # takes seconds when they compare Max expressions (max of a matrix)
        top = [sp.Mul(*[sp.Heaviside(e - f, 1) for k, f in enumerate(row) if k != j]) for j, e in enumerate(row)]
        return [t / sp.Add(*top) for t in top]

    return sp.Matrix([mask(row) for row in b.rows_of(v)])


def _sp_kron(b, n, x, y):
    out = b.sp.Matrix(x.rows * y.rows, x.cols * y.cols,
                      lambda i, j: x[i // y.rows, j // y.cols] * y[i % y.rows, j % y.cols])
    return out[0, 0] if n.shape == () else out


# --- printed forms -------------------------------------------------------------------------------------------
def _axis_form(name: str):
    """``name(X, axis=1)``: a row-wise node (its transpose's transpose prints with axis=0)."""
    return lambda p, n: p.axis_call(name, n.args[0], 1)


def _text_max_rows(p, n):
    x = n.args[0]
    if n.shape == ():  # the largest entry of a vector: max(x) reads back as this node
        return p.call("max", x.args[0] if type(x).__name__ == "Transpose" and x.args[0].shape[1] == 1 else x)
    return p.axis_call("max", x, 1)


def _latex_norm(p, n):
    x = n.args[0]
    sub = "_{1}" if n.order == 1 else ("_{F}" if is_matrix(x.shape) else "")
    return f"\\left\\lVert {p.doprint(x)} \\right\\rVert{sub}", p.ATOM


def _unicode_numel(p, n):
    name = p.size_name(n.args[0])
    if name is None:
        return p.call("numel", n.args[0])
    return name, (p.ATOM if " " not in name else p.MUL)


def _latex_numel(p, n):
    name = p.size_name(n.args[0])
    if name is None:
        return p.call("\\operatorname{numel}", n.args[0])
    return name.replace(" ", " \\, "), (p.ATOM if " " not in name else p.MUL)


# --- generated code ------------------------------------------------------------------------------------------
def _fn_call(name: str):
    """The target module's function ``name`` of the argument: ``np.sum(x)``, ``torch.sum(x)``."""
    return lambda p, n: p.call(p.fn(name), p.code(n.args[0]))


def _linalg_call(name: str):
    return lambda p, n: p.call(p.linalg(name), p.code(n.args[0]))


def _code_numel(p, n):
    dims = [p.dim(d) for d in n.args[0].shape if d != 1]  # a vector's length, not "n * 1"
    return (" * ".join(dims) if dims else "1"), (p.MUL if len(dims) > 1 else p.ATOM)


def _code_norm(p, n):
    x = p.code(n.args[0])
    if n.order == 1:
        return f"{p.fn('sum')}({p.fn('abs')}({x}))", p.ATOM
    return p.call(p.linalg("norm"), x)


def _code_kron(p, n):
    a, b = n.args
    if is_vector(a.shape) and is_vector(b.shape) and is_column(a.shape) == is_column(b.shape):
        return p.call(p.fn("kron"), p.code(a), p.code(b))  # 1-D kron is the vector
    code = f"{p.fn('kron')}({p.as_2d(a)}, {p.as_2d(b)})"
    if is_vector(n.shape):
        code += ".reshape(-1)"
    return code, p.ATOM


def _torch_kron(p, n):
    # torch.kron views its arguments and fails on a transposed (non-contiguous) one
    a, b = n.args
    code = f"torch.kron(({p.as_2d(a)}).contiguous(), ({p.as_2d(b)}).contiguous())"
    if is_vector(n.shape):
        code += ".reshape(-1)"
    return code, p.ATOM


def _template(text: str):
    """Code from a template over ``{x}``, the argument's code."""
    return lambda p, n: (text.format(x=p.code(n.args[0])), p.ATOM)


def _statements(*lines: str):
    """Statements that compute the node into ``{name}`` from its argument ``{x}``, in place."""
    def assign(p, n, name):
        return [f"{name} = {p.code(n.args[0])}"] + [line.format(name=name) for line in lines]
    return assign


def _np_logsumexp_rows_code(p, n, name):
    shift = p.fresh("shift")
    return [f"{name} = {p.code(n.args[0])}",
            f"{shift} = np.max({name}, axis=-1, keepdims=True)",
            f"{shift} = np.where(np.isfinite({shift}), {shift}, 0.0)",
            f"{name} = np.log(np.sum(np.exp({name} - {shift}), axis=-1)) + {shift}[..., 0]"]


def _logdet_code(module: str, nan_where: str):
    """logdet through slogdet: log of a negative determinant is not real, NaN as evaluate() gives."""
    def assign(p, n, name):
        return [f"{name} = {module}.linalg.slogdet({p.code(n.args[0])})", nan_where.format(name=name)]
    return assign


_ROW_MASK = {  # maxmask: 1/t on each row's t largest entries, along the last axis (a row is 1-D here)
    "numpy": _statements("{name} = ({name} == np.max({name}, axis=-1, keepdims=True)).astype(float)",
                         "{name} = {name} / np.sum({name}, axis=-1, keepdims=True)"),
    "jax": _statements("{name} = ({name} == jnp.max({name}, axis=-1, keepdims=True)).astype({name}.dtype)",
                       "{name} = {name} / jnp.sum({name}, axis=-1, keepdims=True)"),
    "torch": _statements("{name} = ({name} == torch.amax({name}, dim=-1, keepdim=True)).to(dtype)",
                         "{name} = {name} / torch.sum({name}, dim=-1, keepdim=True)"),
}


# --- the records -----------------------------------------------------------------------------------------------
_F = Function
FUNCTION_RECORDS = (
    # max(e) reduces (MaxRows, the row maxima; its derivative the tie-splitting MaxRowsMask);
    # max(a, b) = b + relu(a - b) is element-wise
    _F("max", "MaxRows", (1, 2), axis=True, rows="MaxRows",
       rule="maximum of each row (ties split evenly)", shape=_row_reduction_shape,
       differential=_d_row_weighted("MaxRowsMask"), numpy=_np_max_rows,
       sympy=lambda b, n, v: b.column(n, [b.sp.Max(*row) for row in b.rows_of(v)]),
       text=_text_max_rows, latex_form=_axis_form("max"),
       code={"*": lambda p, n: (f"{p.fn('max')}({p.code(n.args[0])}, axis=-1)", p.ATOM),
             "torch": _template("torch.amax({x}, dim=-1)")}),
    _F("min", "MaxRows", (1, 2), axis=True, rows="MaxRows"),  # min(e) = -max(-e)
    _F("sum", "Sum", forces_vector=True, axis=True, rule="sum reduction", shape=_scalar,
       differential=_linear(lambda d, n, dx: d.S.ssum(dx)),
       transpose=lambda t, n, c: [(n.args[0], _spread(t, n.args[0], c))], forward=_f_sum,
       numpy=lambda ev, n, a: ev.np.sum(a), sympy=lambda b, n, v: b.sp.Add(*b.entries(v)),
       code={"*": _fn_call("sum")}),
    _F("mean", "Mean", forces_vector=True, axis=True, rule="mean", shape=_scalar,
       differential=_linear(lambda d, n, dx: d.S.div(d.S.ssum(dx), d.S.numel(n.args[0]))),
       transpose=lambda t, n, c: [(n.args[0], _spread(t, n.args[0], t.S.div(c, t.S.numel(n.args[0]))))],
       forward=lambda f, n, tangents: f.S.div(_f_sum(f, n, tangents), f.S.numel(n.args[0])),
       numpy=lambda ev, n, a: ev.np.mean(a),
       sympy=lambda b, n, v: b.sp.Add(*b.entries(v)) / len(b.entries(v)),
       code={"*": _fn_call("mean")}),
    _F("var", None, forces_vector=True, axis=True),  # mean((e - mean(e)).^2), biased as numpy.var
    _F("dot", "Dot", (2, 2), forces_vector=True,
       rule="dot product", shape=_dot_shape, differential=_d_dot, transpose=_t_dot,
       forward=_f_dot, numpy=lambda ev, n, a, b: ev.np.dot(ev.np.ravel(a), ev.np.ravel(b)),
       sympy=lambda b, n, x, y: b.sp.Add(*[u * v for u, v in zip(x, y, strict=True)]),
       unicode=lambda p, n: (f"{p.sub(n.args[0], p.DOT)} · {p.sub(n.args[1], p.NEG)}", p.DOT),
       latex_form=lambda p, n: (f"{p.sub(n.args[0], p.DOT)} \\cdot {p.sub(n.args[1], p.NEG)}", p.DOT),
       code={"*": lambda p, n: p.binary("@", *n.args)}),
    _F("norm", "Norm", forces_vector=True, aliases=("norm2",), axis=True, rule="norm", shape=_norm_shape,
       differential=_d_norm,
       numpy=lambda ev, n, v: ev.np.sqrt(ev.np.sum(ev.np.square(v))) if n.order == 2 else ev.np.sum(ev.np.abs(v)),
       sympy=_sp_norm, text=lambda p, n: p.call("norm" if n.order == 2 else "norm1", n.args[0]),
       avoid=lambda n: ("nonzero" if n.order == 2 else "kink", n.args[0]),
       unicode=lambda p, n: (f"‖{p.doprint(n.args[0])}‖" + ("" if n.order == 2 else "₁"), p.ATOM),
       latex_form=_latex_norm, code={"*": _code_norm}),
    _F("norm1", "Norm", infer="scalar", forces_vector=True),
    _F("tr", "Trace", infer="scalar", aliases=("trace",), matrix_arg=True, latex="\\operatorname{tr}",
       rule="trace", shape=_square_scalar,
       differential=_d_trace,
       transpose=lambda t, n, c: [(n.args[0], t.S.mul(c, t.N.Identity(n.args[0].shape[0])))],
       forward=_f_trace, numpy=lambda ev, n, a: ev.np.trace(a), sympy=lambda b, n, a: a.trace(),
       code={"*": _fn_call("trace")}),
    _F("det", "Det", infer="scalar", matrix_arg=True, conditioned=True, latex="\\det",
       rule="determinant (Jacobi's formula)", shape=_square_scalar, differential=_d_det,
       numpy=lambda ev, n, a: ev.np.linalg.det(a), sympy=lambda b, n, a: a.det(method="berkowitz"),
       code={"*": _linalg_call("det")}),
    _F("logdet", "LogDet", infer="scalar", matrix_arg=True, conditioned=True, latex="\\log\\det",
       rule="log-determinant", shape=_square_scalar,
       differential=lambda d, n: _trace_inv_d(d, n.args[0]), numpy=_np_logdet,
       sympy=lambda b, n, a: b.sp.log(a.det(method="berkowitz")),
       assign={"numpy": _logdet_code("np", "{name} = {name}[1] if {name}[0] >= 0 else np.nan"),
               "jax": _logdet_code("jnp", "{name} = jnp.where({name}[0] < 0, jnp.nan, {name}[1])"),
               "torch": _logdet_code("torch", "{name} = torch.where({name}[0] < 0, "
                                              "torch.full_like({name}[1], torch.nan), {name}[1])")}),
    _F("logsumexp", "LogSumExp", forces_vector=True, axis=True, rows="LogSumExpRows", rule="log-sum-exp", shape=_scalar,
       differential=_d_logsumexp, numpy=lambda ev, n, a: ev.logsumexp(a),
       sympy=lambda b, n, v: b.sp.log(b.sp.Add(*[b.sp.exp(e) for e in b.entries(v)])),
       code={"numpy": _template("np.logaddexp.reduce({x}, axis=None)"), "jax": _template("jax.nn.logsumexp({x})"),
             "torch": _template("torch.logsumexp(({x}).reshape(-1), 0)")}),  # ({x}): maybe an operator expression
    _F("inv", "Inv", infer="same", matrix_arg=True, conditioned=True, rule="inverse", shape=_inv_shape,
       differential=_linear(lambda d, n, da: d.S.neg(d.S.mul(n, da, n))),  # d A⁻¹ = -A⁻¹ dA A⁻¹
       numpy=_np_inv, sympy=lambda b, n, a: b.inv(a),
       unicode=lambda p, n: (p.sub(n.args[0], p.POST) + "⁻¹", p.POW),
       latex_form=lambda p, n: (f"{p.sub(n.args[0], p.POST)}^{{-1}}", p.POW), code={"*": _linalg_call("inv")}),
    # diag(vector) is DiagMat; diag(matrix) is DiagVec (its record is below)
    _F("diag", "DiagMat", forces_vector=True, rule="diagonal matrix", shape=_diagmat_shape,
       differential=_linear(lambda d, n, dv: d.S.diagmat(dv)),
       transpose=lambda t, n, c: [(n.args[0], t.S.diagvec(c))], contract=_c_diagmat,
       numpy=lambda ev, n, v: ev.np.diag(ev.np.ravel(v)),
       sympy=lambda b, n, v: b.sp.Matrix(len(v), len(v), lambda i, j: v[i] if i == j else 0),
       code={"*": _fn_call("diag")}),
    _F("softmax", "Softmax", forces_vector=True, axis=True, rows="SoftmaxRows", rule="softmax", shape=_softmax_shape,
       differential=_d_softmax, numpy=_np_softmax, sympy=_sp_softmax, letter="s", nonnegative=True,
       assign={"numpy": _statements("{name} = np.exp({name} - np.max({name}))", "{name} = {name} / np.sum({name})")},
       code={"jax": _template("jax.nn.softmax({x})"), "torch": _template("torch.softmax({x}, 0)")}),
    # maxmask(X): the derivative weights of max(X, axis=1), 1/t on each row's t tied largest entries
    _F("maxmask", "MaxRowsMask", forces_vector=True, axis=True, rows="MaxRowsMask",
       rule="indicator of the maximum (constant)", shape=_row_wise_shape,
       differential=_d_constant, numpy=_np_maxmask, sympy=_sp_maxmask, nonnegative=True, text=_axis_form("maxmask"),
       latex_form=_axis_form("maxmask"), assign=_ROW_MASK),
    _F("log_softmax", None, forces_vector=True, axis=True, latex="\\operatorname{log\\_softmax}"),
    _F("outer", "MatMul", (2, 2), forces_vector=True),
    _F("kron", "Kron", (2, 2), forces_vector=True,
       rule="Kronecker product", shape=_kron_shape, differential=_d_kron, transpose=_t_kron,
       forward=_f_kron, contract=_c_kron, numpy=lambda ev, n, a, b: ev.np.kron(a, b), sympy=_sp_kron,
       latex_form=lambda p, n: (f"{p.sub(n.args[0], p.HAD)} \\otimes {p.sub(n.args[1], p.HAD)}", p.HAD),
       code={"*": _code_kron, "torch": _torch_kron}),
    _F("ones", "Ones", (1, 2), forces_vector=True),
    _F("zeros", "Zeros", (1, 2), forces_vector=True),
    _F("eye", "Identity", (1, 1), forces_vector=True),
    _F("vector", "VectorLit", (1, None), forces_vector=True),
    _F("matrix", "MatrixLit", (1, None), forces_vector=True),
    _F("numel", "Numel", infer="scalar", forces_vector=True,
       rule="number of entries (a constant)", shape=_scalar, differential=_d_constant,
       numpy=lambda ev, n, a: float(ev.np.size(a)), sympy=lambda b, n, v: b.sp.Integer(len(b.entries(v))),
       unicode=_unicode_numel, latex_form=_latex_numel, code={"*": _code_numel}),
    _F("leaky_relu", None, (2, 2)),  # leaky_relu(e, a) = relu(e) - a relu(-e)
    _F("clip", None, (3, 3)),  # clip(e, lo, hi) = lo + relu(e - lo) - relu(e - hi)
    # --- nodes no call spells directly: other forms of the calls above ---
    _F("diag", "DiagVec", spelled=False, rule="diagonal", shape=_diagvec_shape,  # diag(A): the diagonal, a column
       differential=_linear(lambda d, n, da: d.S.diagvec(da)),
       transpose=lambda t, n, c: [(n.args[0], t.S.diagmat(c))], forward=_f_diagvec,
       numpy=lambda ev, n, a: ev.np.diag(a).reshape(-1, 1),
       sympy=lambda b, n, a: b.sp.Matrix(a.rows, 1, [a[i, i] for i in range(a.rows)]),
       code={"*": _fn_call("diag")}),
    _F("softmax", "SoftmaxRows", spelled=False,  # softmax(X): each row's softmax
       rule="softmax of each row", shape=_row_wise_shape,
       differential=_d_softmax_rows, numpy=_np_softmax_rows, sympy=_sp_softmax_rows,
       letter="P", nonnegative=True,  # each row a distribution, as attention's weights
       assign={"numpy": _statements("{name} = np.exp({name} - np.max({name}, axis=-1, keepdims=True))",
                                    "{name} = {name} / np.sum({name}, axis=-1, keepdims=True)")},
       code={"jax": _template("jax.nn.softmax({x}, axis=-1)"), "torch": _template("torch.softmax({x}, dim=-1)")}),
    _F("logsumexp", "LogSumExpRows", spelled=False,  # logsumexp(X, axis=1)
       rule="log-sum-exp of each row", shape=_row_reduction_shape,
       differential=_d_row_weighted("SoftmaxRows"), numpy=_np_logsumexp_rows, sympy=_sp_logsumexp_rows,
       text=_axis_form("logsumexp"), latex_form=_axis_form("logsumexp"),
       assign={"numpy": _np_logsumexp_rows_code},
       code={"jax": _template("jax.nn.logsumexp({x}, axis=-1)"), "torch": _template("torch.logsumexp({x}, dim=-1)")}),
)
