"""The layers of a transformer and batched losses in closed form (issue #19), checked numerically.

Every case is derived with respect to each of its weights, and the closed forms are compared with central
finite differences of the function (matcalc's own evaluator) and, where installed, with ``jax.grad`` of
the same loss written in jax.numpy (an independent reference). Each case comes in two spellings:

- the language's row-wise form (issue #15: ``softmax`` of a matrix, ``axis=``, broadcasting of ``b'``,
  ``gelu``/``silu``), run when this matcalc has those features (a probe parses one small expression per
  feature; a case whose feature parses and that then fails is a failure, not a skip);
- the same function with explicit ones vectors (``exp(S) ./ (exp(S) 1 1ᵀ)`` for a row-wise softmax,
  ``X 1 1ᵀ / c`` for a row mean, ``1 bᵀ`` for a bias on every row), which matcalc derives today.

The steps by layers (:mod:`matcalc.diff.backward`) are run forward and backward numerically and their
adjoints compared with the derivatives.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.diff.backward import backward_pass
from matcalc.diff.steps import explain_layers
from matcalc.errors import MatcalcError

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except Exception:  # noqa: BLE001 - JAX is optional: the finite differences still check every case
    jax = None


def _parses(text: str, **decls) -> bool:
    try:
        matcalc.derive(text, wrt="X", warn=False, **decls)
        return True
    except MatcalcError:
        return False


FEATURES = {
    "axis": lambda: _parses("sum(mean(X, axis=1))", X="matrix(m,n)"),
    "softmax rows": lambda: _parses("sum(G .* softmax(X))", X="matrix(m,n)", G="matrix(m,n)"),
    "broadcast": lambda: _parses("sum(X + b')", X="matrix(m,n)", b="vector(n)"),
    "gelu": lambda: _parses("sum(gelu(X))", X="matrix(m,n)"),
    "silu": lambda: _parses("sum(silu(X))", X="matrix(m,n)"),
}
_probed: dict[str, bool] = {}


def has(feature: str) -> bool:
    if feature not in _probed:
        _probed[feature] = FEATURES[feature]()
    return _probed[feature]


# --- the cases -----------------------------------------------------------------------------------------
M, K, H = 4, 3, 2  # rows (examples / positions), width, hidden width

SOFTMAX_X = "(exp({z}) ./ (exp({z}) ones({n}) ones({n})'))"
LOG_SOFTMAX_X = "({z} - log(exp({z}) ones({n}) ones({n})'))"


def sm(z: str, n: str) -> str:
    return SOFTMAX_X.format(z=z, n=n)


def lsm(z: str, n: str) -> str:
    return LOG_SOFTMAX_X.format(z=z, n=n)


ROW_MEAN = "({x} ones(k) ones(k)' / c)"
LN_C = "(X - X ones(k) ones(k)' / c)"
BN_C = "(X - ones(m) ones(m)' X / r)"


def _attn_jax(Q, K_, V, M_, G, d):
    return jnp.sum(G * (jax.nn.softmax(Q @ K_.T / jnp.sqrt(d) + M_, axis=-1) @ V))


def _attn_proj_jax(X, Wq, Wk, Wv, M_, G, d):
    return _attn_jax(X @ Wq, X @ Wk, X @ Wv, M_, G, d)


def _ln_jax(X, g, b, G, eps):
    c = X - X.mean(axis=1, keepdims=True)
    return jnp.sum(G * (c / jnp.sqrt((c * c).mean(axis=1, keepdims=True) + eps) * g + b))


def _rms_jax(X, g, G, eps):
    return jnp.sum(G * (X / jnp.sqrt((X * X).mean(axis=1, keepdims=True) + eps) * g))


def _bn_jax(X, g, b, G, eps):
    c = X - X.mean(axis=0, keepdims=True)
    return jnp.sum(G * (c / jnp.sqrt((c * c).mean(axis=0, keepdims=True) + eps) * g + b))


def _mlp_mse_jax(X, W1, b1, W2, b2, Y):
    return jnp.sum((jax.nn.relu(X @ W1 + b1) @ W2 + b2 - Y) ** 2)


def _mlp_ce_jax(X, W1, b1, W2, b2, Y):
    return -jnp.sum(Y * jax.nn.log_softmax(jax.nn.relu(X @ W1 + b1) @ W2 + b2, axis=-1))


def _gelu_jax(X, W1, W2, G):
    return jnp.sum(G * (jax.nn.gelu(X @ W1, approximate=False) @ W2))


def _swiglu_jax(X, W, U, W2, G):
    a = X @ W
    return jnp.sum(G * ((a * jax.nn.sigmoid(a) * (X @ U)) @ W2))


def _ce_jax(X, W, Y):
    return -jnp.sum(Y * jax.nn.log_softmax(X @ W, axis=-1))


def _cos_jax(X, Y, g):
    return jnp.sum(g * jnp.sum(X * Y, axis=1) / (jnp.linalg.norm(X, axis=1) * jnp.linalg.norm(Y, axis=1)))


def _infonce_jax(A, B, t):
    return -jnp.sum(jnp.eye(A.shape[0]) * jax.nn.log_softmax(A @ B.T / t, axis=-1))


def _causal(m):
    return np.where(np.tril(np.ones((m, m))) > 0, 0.0, -30.0)


def _rows_sum_to_one(rng, m, n):
    y = rng.random((m, n)) + 0.1
    return y / y.sum(axis=1, keepdims=True)


ATT = {"Q": "matrix(m,k)", "K": "matrix(m,k)", "V": "matrix(m,k)", "M": "matrix(m,m)", "G": "matrix(m,k)",
       "d": "scalar"}
PROJ = {"X": "matrix(m,k)", "Wq": "matrix(k,h)", "Wk": "matrix(k,h)", "Wv": "matrix(k,h)", "M": "matrix(m,m)",
        "G": "matrix(m,h)", "d": "scalar"}
NORM = {"X": "matrix(m,k)", "G": "matrix(m,k)", "g": "vector(k)", "b": "vector(k)", "eps": "scalar"}
MLP = {"X": "matrix(m,k)", "W1": "matrix(k,h)", "b1": "vector(h)", "W2": "matrix(h,k)", "b2": "vector(k)",
       "Y": "matrix(m,k)"}
MLP_SPEC = "relu(X W1 + b1') W2 + b2'"
MLP_X = "relu(X W1 + ones(m) b1') W2 + ones(m) b2'"


def _data(rng, shapes: dict, extra: dict) -> dict:
    dims = {"m": M, "k": K, "h": H}
    out = {}
    for name, kind in shapes.items():
        if kind == "scalar":
            continue
        inner = kind[kind.index("(") + 1:-1].split(",")
        out[name] = rng.standard_normal(tuple(dims[s.strip()] for s in inner))
    out.update(extra)
    return out


#: name -> (features, row-wise text, explicit text, declarations, wrt, values maker, jax loss, jax arg order)
CASES = {
    "attention": (
        ("softmax rows",), "sum(G .* (softmax(Q K' / sqrt(d) + M) V))",
        f"sum(G .* ({sm('(Q K' + chr(39) + ' / sqrt(d) + M)', 'm')} V))", ATT, ["Q", "K", "V"],
        lambda r: _data(r, ATT, {"M": _causal(M), "d": float(K)}), _attn_jax, "Q K V M G d"),
    "attention with projections": (
        ("softmax rows",), "sum(G .* (softmax((X Wq) (X Wk)' / sqrt(d) + M) (X Wv)))",
        f"sum(G .* ({sm('((X Wq) (X Wk)' + chr(39) + ' / sqrt(d) + M)', 'm')} (X Wv)))", PROJ,
        ["Wq", "Wk", "Wv", "X"], lambda r: _data(r, PROJ, {"M": _causal(M), "d": float(H)}), _attn_proj_jax,
        "X Wq Wk Wv M G d"),
    "layer norm": (
        ("axis", "broadcast"), "sum(G .* ((X - mean(X, axis=1)) ./ sqrt(var(X, axis=1) + eps) .* g' + b'))",
        f"sum(G .* ({LN_C} ./ sqrt(({LN_C} .* {LN_C}) ones(k) ones(k)' / c + eps) .* (ones(m) g') + ones(m) b'))",
        {**NORM, "c": "scalar"}, ["X", "g", "b"],
        lambda r: _data(r, NORM, {"eps": 1e-5, "c": float(K)}), _ln_jax, "X g b G eps"),
    "RMSNorm": (
        ("axis", "broadcast"), "sum(G .* (X ./ sqrt(mean(X .* X, axis=1) + eps) .* g'))",
        f"sum(G .* (X ./ sqrt({ROW_MEAN.format(x='(X .* X)')} + eps) .* (ones(m) g')))",
        {**NORM, "c": "scalar"}, ["X", "g"],
        lambda r: _data(r, NORM, {"eps": 1e-5, "c": float(K)}), _rms_jax, "X g G eps"),
    "batch norm": (
        ("axis", "broadcast"), "sum(G .* ((X - mean(X, axis=0)) ./ sqrt(var(X, axis=0) + eps) .* g' + b'))",
        f"sum(G .* ({BN_C} ./ sqrt(ones(m) ones(m)' ({BN_C} .* {BN_C}) / r + eps) .* (ones(m) g') + ones(m) b'))",
        {**NORM, "r": "scalar"}, ["X", "g", "b"],
        lambda r: _data(r, NORM, {"eps": 1e-5, "r": float(M)}), _bn_jax, "X g b G eps"),
    "MLP, MSE": (
        ("broadcast",), f"||{MLP_SPEC} - Y||_F^2", f"||{MLP_X} - Y||_F^2", MLP, ["W1", "b1", "W2", "b2"],
        lambda r: _data(r, MLP, {}), _mlp_mse_jax, "X W1 b1 W2 b2 Y"),
    "MLP, softmax cross-entropy": (
        ("broadcast", "softmax rows"), f"-sum(Y .* log_softmax({MLP_SPEC}))",
        f"-sum(Y .* {lsm('(' + MLP_X + ')', 'k')})", MLP, ["W1", "b1", "W2", "b2"],
        lambda r: {**_data(r, MLP, {}), "Y": _rows_sum_to_one(r, M, K)}, _mlp_ce_jax, "X W1 b1 W2 b2 Y"),
    "GELU MLP": (
        ("gelu",), "sum(G .* (gelu(X W1) W2))", None,
        {"X": "matrix(m,k)", "W1": "matrix(k,h)", "W2": "matrix(h,k)", "G": "matrix(m,k)"}, ["W1", "W2"],
        lambda r: _data(r, {"X": "matrix(m,k)", "W1": "matrix(k,h)", "W2": "matrix(h,k)", "G": "matrix(m,k)"}, {}),
        _gelu_jax, "X W1 W2 G"),
    "SwiGLU": (
        ("silu",), "sum(G .* ((silu(X W) .* (X U)) W2))", "sum(G .* (((X W) .* sigmoid(X W) .* (X U)) W2))",
        {"X": "matrix(m,k)", "W": "matrix(k,h)", "U": "matrix(k,h)", "W2": "matrix(h,k)", "G": "matrix(m,k)"},
        ["W", "U", "W2"],
        lambda r: _data(r, {"X": "matrix(m,k)", "W": "matrix(k,h)", "U": "matrix(k,h)", "W2": "matrix(h,k)",
                            "G": "matrix(m,k)"}, {}), _swiglu_jax, "X W U W2 G"),
    "softmax cross-entropy": (
        ("softmax rows",), "-sum(Y .* log_softmax(X W))", f"-sum(Y .* {lsm('(X W)', 'k')})",
        {"X": "matrix(m,h)", "W": "matrix(h,k)", "Y": "matrix(m,k)"}, ["W"],
        lambda r: {**_data(r, {"X": "matrix(m,h)", "W": "matrix(h,k)"}, {}), "Y": _rows_sum_to_one(r, M, K)},
        _ce_jax, "X W Y"),
    "cosine similarity of rows": (
        ("axis",), "sum(g .* (sum(X .* Y, axis=1) ./ (norm(X, axis=1) .* norm(Y, axis=1))))",
        "g' (((X .* Y) ones(k)) ./ (sqrt((X .* X) ones(k)) .* sqrt((Y .* Y) ones(k))))",
        {"X": "matrix(m,k)", "Y": "matrix(m,k)", "g": "vector(m)"}, ["X", "Y"],
        lambda r: _data(r, {"X": "matrix(m,k)", "Y": "matrix(m,k)", "g": "vector(m)"}, {}), _cos_jax, "X Y g"),
    "InfoNCE": (
        ("softmax rows",), "-sum(I .* log_softmax(A B' / t))", f"-tr({lsm('(A B' + chr(39) + ' / t)', 'm')})",
        {"A": "matrix(m,k)", "B": "matrix(m,k)", "t": "scalar"}, ["A", "B"],
        lambda r: {**_data(r, {"A": "matrix(m,k)", "B": "matrix(m,k)"}, {}), "t": 0.5}, _infonce_jax, "A B t"),
}


def _forms():
    for name, case in CASES.items():
        yield pytest.param(name, "row-wise", id=f"{name}-row-wise")
        if case[2] is not None:
            yield pytest.param(name, "explicit", id=f"{name}-explicit")


def _derive(name: str, form: str):
    features, spec, explicit, decls, wrt, *_ = CASES[name]
    if form == "row-wise":
        missing = [f for f in features if not has(f)]
        if missing:
            pytest.skip(f"this matcalc has no {', '.join(missing)} yet (issue #15)")
        text = spec
    else:
        text = explicit
    return matcalc.derive(text, wrt=wrt, layout="denominator", warn=False, **decls)


def _finite_differences(function, values: dict, name: str, h: float = 1e-6) -> np.ndarray:
    x = np.asarray(values[name], float)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (matcalc.evaluate(function, {**values, name: up}) -
                   matcalc.evaluate(function, {**values, name: down})) / (2 * h)
    return grad


@pytest.mark.parametrize(("name", "form"), list(_forms()))
def test_layer_gradients_agree_with_finite_differences_and_jax(name, form):
    derivs = _derive(name, form)
    values = CASES[name][5](np.random.default_rng(19))
    reference = None
    if jax is not None:
        order = CASES[name][7].split()
        wrt = CASES[name][4]
        loss = CASES[name][6]
        grads = jax.grad(loss, argnums=tuple(order.index(w) for w in wrt))(*[jnp.asarray(values[k]) for k in order])
        reference = dict(zip(wrt, grads, strict=True))
    for d in derivs:
        got = np.asarray(d.evaluate(values))
        want = _finite_differences(d.function, values, d.variable.name)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} d/d{d.variable.name}")
        if reference is not None:
            np.testing.assert_allclose(got, np.asarray(reference[d.variable.name]), rtol=1e-9, atol=1e-10)
    if jax is not None:  # the value too: the matcalc text and the JAX loss are the same function
        order = CASES[name][7].split()
        want = float(CASES[name][6](*[jnp.asarray(values[k]) for k in order]))
        assert matcalc.evaluate(derivs[0].function, values) == pytest.approx(want, rel=1e-10, abs=1e-10)


def _run_backward(bp, values: dict) -> dict:
    """The layers evaluated forward, then the adjoints backward, all numerically."""
    env, sizes = dict(values), {"m": M, "k": K, "h": H}
    for sym, local, _ in bp.layers:
        env[sym.name] = matcalc.evaluate(local, env, sizes=sizes)
    for sym, expr, _ in bp.adjoints:
        env[sym.name] = matcalc.evaluate(expr, env, sizes=sizes)
    return env


@pytest.mark.parametrize(("name", "form"), list(_forms()))
def test_steps_by_layers_end_in_the_derivative(name, form):
    derivs = _derive(name, form)
    values = CASES[name][5](np.random.default_rng(7))
    bp = backward_pass(derivs[0].function, [d.variable for d in derivs])
    assert len(bp.layers) >= 2 and bp.layers[-1][0].name == "y"
    env = _run_backward(bp, values)
    assert env["y"] == pytest.approx(matcalc.evaluate(derivs[0].function, values), rel=1e-12, abs=1e-12)
    for d in derivs:
        np.testing.assert_allclose(np.asarray(env["d" + d.variable.name], float), np.asarray(d.evaluate(values)),
                                   rtol=1e-9, atol=1e-10, err_msg=f"{name}: the steps' d{d.variable.name}")


def test_attention_steps_read_as_the_forward_pass_run_backwards():
    derivs = _derive("attention", "row-wise" if has("softmax rows") else "explicit")
    text = str(explain_layers(derivs))
    # the last layer is the loss, the one before it the attention output; their adjoints come first
    lines = [line.strip() for line in text.splitlines()]
    adjoints = lines[lines.index(next(x for x in lines if x.startswith("Backward pass"))) + 1:]
    names = [a.split(" = ")[0] for a in adjoints]
    assert names[-3:] == ["dQ", "dK", "dV"]
    out = [s for s in adjoints if s.startswith("d") and "= G " in s + " "]
    assert out, adjoints  # the adjoint of the attention output is the upstream gradient G (dO = G)
    assert any("Vᵀ" in a and "product rule" in a for a in adjoints)  # dP = dO Vᵀ
    assert any(a.startswith("dQ = ") and "K) / sqrt(d)" in a for a in adjoints)  # dQ = dS K / √d
    assert any(a.startswith("dV = ") and "ᵀ d" in a for a in adjoints)  # dV = Pᵀ dO


def test_derivative_steps_include_the_layers():
    d = matcalc.derive(f"||{MLP_X} - Y||_F^2", wrt="W1", layout="denominator", warn=False, **MLP)
    steps = d.steps
    kinds = [s.kind for s in steps]
    assert "layer" in kinds and "adjoint" in kinds and kinds[-1] == "result"
    adjoint = [s for s in steps if s.kind == "adjoint"]
    assert adjoint[-1].text.startswith("dW1 = ") and "Xᵀ" in adjoint[-1].text
    assert "By layers" in str(steps) and "By layers" in steps.latex()


def test_cross_entropy_needs_rows_of_y_summing_to_one():
    """Xᵀ(softmax(X W) − Y) is the gradient only when each row of Y sums to 1; matcalc's closed form is
    right either way (it keeps the row sums of Y), so it agrees with the textbook form exactly when they do."""
    derivs = _derive("softmax cross-entropy", "row-wise" if has("softmax rows") else "explicit")
    d = derivs[0]
    rng = np.random.default_rng(3)
    X, W = rng.standard_normal((M, H)), rng.standard_normal((H, K))
    z = X @ W
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for Y, textbook_holds in ((_rows_sum_to_one(rng, M, K), True), (rng.random((M, K)) + 0.5, False)):
        got = np.asarray(d.evaluate({"X": X, "W": W, "Y": Y}))
        textbook = X.T @ (p - Y)
        fd = _finite_differences(d.function, {"X": X, "W": W, "Y": Y}, "W")
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6)
        assert np.allclose(got, textbook, rtol=1e-8, atol=1e-10) == textbook_holds


def test_generated_joint_code_agrees_for_attention():
    derivs = _derive("attention", "explicit")
    values = CASES["attention"][5](np.random.default_rng(1))
    from matcalc.codegen import compile_joint, generate_joint

    value, *grads = compile_joint(derivs)(**values)
    assert value == pytest.approx(matcalc.evaluate(derivs[0].function, values), rel=1e-12)
    for d, g in zip(derivs, grads, strict=True):
        np.testing.assert_allclose(g, d.evaluate(values), rtol=1e-10, atol=1e-12)
    source = generate_joint(derivs, "numpy")
    assert source.count("np.exp(") == 1  # the forward pass and three gradients share one exp


def _joint(derivs, target: str):
    from matcalc.codegen import generate_joint

    namespace: dict = {}
    exec(generate_joint(derivs, target), namespace)  # noqa: S102 - matcalc's own generated code
    return next(v for k, v in namespace.items() if k.startswith("value_and_grad"))


@pytest.mark.parametrize("target", ["numpy", "jax", "torch"])
@pytest.mark.parametrize(("name", "form"), list(_forms()))
def test_generated_code_for_every_layer(name, form, target):
    """One generated function per layer (value and every gradient) in each target agrees with the closed
    forms: the code's rewrites (row sums, broadcast views, reciprocals of row-wise divisors) keep values."""
    if target != "numpy":
        pytest.importorskip(target)
    derivs = _derive(name, form)
    values = CASES[name][5](np.random.default_rng(5))
    fn = _joint(derivs, target)
    params = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    if target == "torch":
        import torch

        args = {p: torch.as_tensor(values[p]) if isinstance(values[p], np.ndarray) else values[p] for p in params}
    else:
        args = {p: values[p] for p in params}
    value, *grads = fn(**args)
    assert float(value) == pytest.approx(matcalc.evaluate(derivs[0].function, values), rel=1e-10, abs=1e-12)
    for d, g in zip(derivs, grads, strict=True):
        np.testing.assert_allclose(np.asarray(g, float), np.asarray(d.evaluate(values), float), rtol=1e-9,
                                   atol=1e-11, err_msg=f"{target}: d/d{d.variable.name}")


def test_attention_reads_as_flashattention():
    """With the row-wise softmax, the layers are S, P, O and the adjoints are FlashAttention's lines."""
    if not has("softmax rows"):
        pytest.skip("this matcalc has no row-wise softmax yet (issue #15)")
    steps = explain_layers(_derive("attention", "row-wise"))
    lines = [s.text for s in steps]
    for expected in ("S = Q (Kᵀ / sqrt(d)) + M", "P = softmax(S)", "O = P V", "y = sum(G ⊙ O)", "dO = G",
                     "dP = dO Vᵀ", "dS = (dP - (dP ⊙ P) 𝟙 𝟙ᵀ) ⊙ P", "dQ = (dS K) / sqrt(d)",
                     "dK = (dSᵀ Q) / sqrt(d)", "dV = Pᵀ dO"):
        assert expected in lines, (expected, lines)


def test_infonce_prints_the_textbook_form():
    """I 𝟙 𝟙ᵀ = 𝟙 𝟙ᵀ, and a matrix of ones drops out of an element-wise product."""
    if not has("softmax rows"):
        pytest.skip("this matcalc has no row-wise softmax yet (issue #15)")
    dA, dB = _derive("InfoNCE", "row-wise")
    assert dA.text() == "((softmax((A B') / t) - I) B) / t"
    assert dB.text() == "((softmax((A B') / t) - I)' A) / t"


def test_layer_norm_gradient_drops_the_rows_that_sum_to_zero():
    """The centred rows of x̂ sum to 0, so no product of a centred matrix with 𝟙 is left in layer norm's
    gradient (the term that made its code slower than jax.value_and_grad), and the value is unchanged."""
    from matcalc import derive
    from matcalc import nodes as N
    from matcalc import simplify as S

    d = derive("sum(G .* ((X - mean(X, axis=1)) ./ sqrt(var(X, axis=1) + eps) .* g' + b'))", "X",
               X="matrix(m,k)", G="matrix(m,k)", g="vector(k)", b="vector(k)", eps="scalar",
               layout="denominator")
    for n in N.walk(d.expr):
        if not isinstance(n, N.MatMul):
            continue
        for i in range(1, len(n.args)):
            if isinstance(n.args[i], N.Ones) and n.args[i].shape[1] == 1:
                left = n.args[0] if i == 1 else N.MatMul(*n.args[:i])
                terms = left.args if isinstance(left, N.Add) else (left,)
                assert not any(S._rows_sum_to_zero(t) for t in terms), str(left)
    assert d.check().ok


def test_batch_norm_gradient_drops_the_columns_that_sum_to_zero():
    """Batch norm centres the columns: no ``𝟙ᵀ T`` with T's columns summing to zero is left, and the value
    is unchanged."""
    from matcalc import derive
    from matcalc import nodes as N
    from matcalc import simplify as S

    d = derive("sum(G .* ((X - mean(X, axis=0)) ./ sqrt(var(X, axis=0) + eps) .* g' + b'))", "X",
               X="matrix(m,k)", G="matrix(m,k)", g="vector(k)", b="vector(k)", eps="scalar",
               layout="denominator")
    for n in N.walk(d.expr):
        if not isinstance(n, N.MatMul):
            continue
        for i in range(len(n.args) - 1):
            if isinstance(n.args[i], N.Ones) and n.args[i].shape[0] == 1:
                right = n.args[-1] if i == len(n.args) - 2 else N.MatMul(*n.args[i + 1:])
                terms = right.args if isinstance(right, N.Add) else (right,)
                assert not any(S._sums_to_zero(t, False) for t in terms), str(right)
    assert d.check().ok


def test_layer_and_batch_norm_name_the_deviation_sigma_and_rms_norm_keeps_r():
    """The named part sqrt(var + eps) is the standard deviation σ of the papers; RMSNorm's root mean square
    (no centring) keeps the root's letter r. The gradients stay right (finite differences)."""
    from finite_differences import first

    cases = {"sum(G .* ((X - mean(X, axis=1)) ./ sqrt(var(X, axis=1) + eps) .* g' + b'))": "σ = sqrt(",
             "sum(G .* ((X - mean(X, axis=0)) ./ sqrt(var(X, axis=0) + eps) .* g' + b'))": "σ = sqrt(",
             "sum(G .* (X ./ sqrt(mean(X .* X, axis=1) + eps) .* g'))": "r = sqrt("}
    rng = np.random.default_rng(4)
    values = {"X": rng.normal(size=(3, 4)), "G": rng.normal(size=(3, 4)), "g": rng.normal(size=4),
              "b": rng.normal(size=4), "eps": 1e-3}
    for spec, part in cases.items():
        e = matcalc.parse(spec, **NORM)
        d = matcalc.derive(e, "X", layout="denominator", warn=False)
        assert part in d.unicode(), d.unicode()
        symbols = matcalc.nodes.symbols_of(e)
        here = {s.name: values[s.name] for s in symbols}
        want = first(e, next(s for s in symbols if s.name == "X"), here, layout="denominator")
        np.testing.assert_allclose(d.evaluate(**here), want.reshape(3, 4), rtol=1e-5, atol=1e-7)
