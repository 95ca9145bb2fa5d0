"""Issue 15: axis-wise reductions, row-wise softmax, one-argument max/min and broadcasting, in every stage.

One table: each row is an expression over a batch (``X`` is m x n, one example per row), its NumPy
reference value and its expected shape. For every row the test checks the shape, the value against the
reference, the gradient of ``sum(sin(e))`` with respect to each variable against central finite differences,
the generated NumPy, JAX and PyTorch code of that gradient against ``evaluate()``, and ``check()`` (SymPy,
entry by entry) on the first variable. Jacobians with respect to a matrix are tensors: their index and
Kronecker forms are checked by ``check()`` too.
"""

from __future__ import annotations

import numpy as np
import pytest
from codegen_targets import TARGETS, differences, run_code
from finite_differences import first, random_values

import matcalc
from matcalc import nodes as N

SIZES = {"m": 3, "n": 4, "k": 2}
DECLS = {"X": "matrix(m, n)", "W": "matrix(n, k)", "b": "vector(k)", "x": "vector(m)", "y": "vector(n)",
         "Y": "matrix(m, k)"}


def _lse(a, axis):
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top + np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)), axis=axis)


def _softmax(a, axis):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# (expression, NumPy reference over the values, expected shape)
CASES = [
    ("sum(X, axis=1)", lambda v: v["X"].sum(1), ("m", 1)),
    ("sum(X, axis=0)", lambda v: v["X"].sum(0), (1, "n")),
    ("sum(X, axis=-1)", lambda v: v["X"].sum(1), ("m", 1)),
    ("mean(X, axis=1)", lambda v: v["X"].mean(1), ("m", 1)),
    ("mean(X, axis=0)", lambda v: v["X"].mean(0), (1, "n")),
    ("var(X, axis=1)", lambda v: v["X"].var(1), ("m", 1)),
    ("var(X, axis=0)", lambda v: v["X"].var(0), (1, "n")),
    ("var(X)", lambda v: v["X"].var(), ()),
    ("var(x)", lambda v: v["x"].var(), ()),
    ("norm(X, axis=1)", lambda v: np.linalg.norm(v["X"], axis=1), ("m", 1)),
    ("norm(X, axis=0)", lambda v: np.linalg.norm(v["X"], axis=0), (1, "n")),
    ("max(X, axis=1)", lambda v: v["X"].max(1), ("m", 1)),
    ("max(X, axis=0)", lambda v: v["X"].max(0), (1, "n")),
    ("min(X, axis=1)", lambda v: v["X"].min(1), ("m", 1)),
    ("min(X, dim=0)", lambda v: v["X"].min(0), (1, "n")),
    ("max(X)", lambda v: v["X"].max(), ()),
    ("min(X)", lambda v: v["X"].min(), ()),
    ("max(x)", lambda v: v["x"].max(), ()),
    ("min(x)", lambda v: v["x"].min(), ()),
    ("logsumexp(X, axis=1)", lambda v: _lse(v["X"], 1), ("m", 1)),
    ("logsumexp(X, axis=0)", lambda v: _lse(v["X"], 0), (1, "n")),
    ("softmax(X)", lambda v: _softmax(v["X"], 1), ("m", "n")),
    ("softmax(X, axis=0)", lambda v: _softmax(v["X"], 0), ("m", "n")),
    ("softmax(X, dim=-1, keepdims=True)", lambda v: _softmax(v["X"], 1), ("m", "n")),
    ("softmax(y')", lambda v: _softmax(v["y"], 0), (1, "n")),
    ("log_softmax(X)", lambda v: np.log(_softmax(v["X"], 1)), ("m", "n")),
    ("log_softmax(X, axis=0)", lambda v: np.log(_softmax(v["X"], 0)), ("m", "n")),
    ("log_softmax(x)", lambda v: np.log(_softmax(v["x"], 0)), ("m", 1)),
    ("maxmask(X)", lambda v: (v["X"] == v["X"].max(1, keepdims=True)).astype(float), ("m", "n")),
    # a column vector: axis=0 reduces it, axis=1 keeps each single-entry row (NumPy's keepdims)
    ("sum(x, axis=0)", lambda v: v["x"].sum(), ()),
    ("sum(x, axis=1)", lambda v: v["x"], ("m", 1)),
    ("mean(x, axis=1)", lambda v: v["x"], ("m", 1)),
    ("var(x, axis=1) + x", lambda v: v["x"], ("m", 1)),
    ("norm(x, axis=1)", lambda v: np.abs(v["x"]), ("m", 1)),
    ("max(x, axis=1)", lambda v: v["x"], ("m", 1)),
    ("logsumexp(x, axis=0)", lambda v: _lse(v["x"], 0), ()),
    ("sum(y', axis=1)", lambda v: v["y"].sum(), ()),
    ("mean(y', axis=0)", lambda v: v["y"], (1, "n")),
    # broadcasting a vector against a matrix
    ("relu(X W + b')", lambda v: np.maximum(v["X"] @ v["W"] + v["b"], 0), ("m", "k")),
    ("X - mean(X, axis=0)", lambda v: v["X"] - v["X"].mean(0), ("m", "n")),
    ("(X - mean(X, axis=1)) ./ sqrt(var(X, axis=1) + 1)",
     lambda v: (v["X"] - v["X"].mean(1, keepdims=True)) / np.sqrt(v["X"].var(1, keepdims=True) + 1), ("m", "n")),
    ("x .* X + y'", lambda v: v["x"][:, None] * v["X"] + v["y"], ("m", "n")),
    ("X ./ (2 + y')", lambda v: v["X"] / (2 + v["y"]), ("m", "n")),
    ("max(X, y')", lambda v: np.maximum(v["X"], v["y"]), ("m", "n")),
    ("min(x, X)", lambda v: np.minimum(v["x"][:, None], v["X"]), ("m", "n")),
    # the batched cross-entropy of a linear classifier
    ("-sum(Y .* log_softmax(X W))", lambda v: -np.sum(v["Y"] * np.log(_softmax(v["X"] @ v["W"], 1))), ()),
]


def _declarations(text: str) -> dict:
    names = set(text.replace("max", " ").replace("exp", " ").replace("axis", " ").replace("dim", " ")
                .replace("keepdims", " ").replace("log_softmax", " ").replace("softmax", " ").split())
    words = {w.strip("()'.,+-*/=") for w in " ".join(names).replace("(", " ").replace(")", " ").split()}
    return {k: d for k, d in DECLS.items() if k in words}


def _parse(text):
    return matcalc.parse(text, **_declarations(text))


def _values(e, seed=0):
    sizes = dict(SIZES)
    return random_values(e, seed=seed, sizes=sizes)


def _check_sizes(d) -> dict:
    """Small sizes for SymPy, for the dimensions that occur."""
    small = {"m": 2, "n": 3, "k": 2}
    return {str(dim): small[str(dim)] for dim in N.dims_in(d.function) if str(dim) in small}


def _shape(e):
    return tuple(d if isinstance(d, int) else str(d) for d in e.shape)


@pytest.mark.parametrize("text, reference, shape", CASES, ids=[c[0] for c in CASES])
def test_shape_and_value(text, reference, shape):
    e = _parse(text)
    assert _shape(e) == tuple(shape) if shape != () else e.shape == ()
    values = _values(e)
    got = np.asarray(matcalc.evaluate(e, values), dtype=float)
    np.testing.assert_allclose(got, np.asarray(reference(values), dtype=float).reshape(got.shape), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("text", [c[0] for c in CASES])
def test_gradient_against_finite_differences_and_code(text):
    e = _parse(text)
    loss = e if e.shape == () else N.Sum(N.Apply("sin", e))
    values = _values(e, seed=1)
    for s in N.symbols_of(e):
        d = matcalc.derive(loss, s.name)
        got = np.asarray(d.evaluate(**values), dtype=float)
        want = first(loss, s, values)
        np.testing.assert_allclose(got, np.asarray(want).reshape(got.shape), rtol=1e-5, atol=1e-6,
                                   err_msg=f"d/d{s.name} = {d}")
        for target in TARGETS:  # JAX and PyTorch where installed (CI installs both)
            code = run_code(d, target, values, jit=False)
            assert not differences(code, got), f"{target}: {d}"


@pytest.mark.parametrize("text", [c[0] for c in CASES if "maxmask" not in c[0]])
def test_gradient_agrees_with_sympy(text):
    e = _parse(text)
    loss = e if e.shape == () else N.Sum(N.Apply("sin", e))
    d = matcalc.derive(loss, N.symbols_of(e)[0].name)
    report = d.check(points=1, sizes=_check_sizes(d))
    assert report.ok, report


JACOBIANS = ["sum(X, axis=1)", "sum(X, axis=0)", "mean(X, axis=1)", "softmax(X)", "log_softmax(X)",
             "logsumexp(X, axis=1)", "max(X, axis=0)", "var(X, axis=1)", "X W + b'"]


@pytest.mark.parametrize("text", JACOBIANS)
def test_jacobians_with_respect_to_a_matrix_are_tensors_that_check(text):
    e = _parse(text)
    d = matcalc.derive(e, "X")
    assert d.index_form() if hasattr(d, "index_form") else str(d)
    report = d.check(points=1, sizes=_check_sizes(d))
    assert report.ok, report


def test_the_kronecker_form_of_a_row_sum():
    d = matcalc.derive("sum(X, axis=1)", "X", X="matrix(m, n)")
    assert "kron" in str(d.kronecker) or "⊗" in str(d.kronecker)
    values = _values(d.function)
    got = np.asarray(d.evaluate(**values))
    assert got.shape == (3, 3, 4)  # ∂(X 𝟙)_i / ∂X_kl = δ_ik
    assert np.allclose(got, np.einsum("ik,l->ikl", np.eye(3), np.ones(4)))


def test_the_dense_layer_of_the_issue_derives_with_respect_to_w_and_b():
    for wrt in ("W", "b"):
        d = matcalc.derive("sum(relu(X W + b'))", wrt, X="matrix(m, n)", W="matrix(n, k)", b="vector(k)",
                           layout="denominator")
        values = _values(d.function, seed=3)
        want = first(d.function, [s for s in N.symbols_of(d.function) if s.name == wrt][0], values,
                     layout="denominator")
        np.testing.assert_allclose(np.asarray(d.evaluate(**values)), want, rtol=1e-5, atol=1e-6)
    assert str(matcalc.derive("sum(relu(X W + b'))", "b", X="matrix(m, n)", W="matrix(n, k)",
                              b="vector(k)").expr).count("ones") >= 1  # the bias gradient sums over the batch


def test_ties_split_evenly():
    """max's derivative at a tie gives each of the t tied entries 1/t, as PyTorch's amax and JAX's max."""
    d = matcalc.derive("max(X, axis=1)' w", "X", X="matrix(2, 3)", w="vector(2)")
    X = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    got = np.asarray(d.evaluate(X=X, w=np.array([1.0, 1.0])))
    assert np.allclose(got.T, [[0, 0.5, 0.5], [1, 0, 0]])
    for target in TARGETS:
        code = run_code(d, target, {"X": X, "w": np.array([1.0, 1.0])}, jit=False)
        assert np.allclose(code, got), target


@pytest.mark.parametrize("text, fragments", [
    ("mean(X, 2)", ("axis=1", "MATLAB's dimension 2 is axis=1")),
    ("sum(X, 1)", ("sum(X, axis=1)",)),
    ("sum(X, axis=2)", ("axis=0",)),
    ("softmax(X, axis=1, keepdims=False)", ("keepdims",)),
    ("x + y'", ("outer(x, y)", "ones")),
    ("exp(X, axis=1)", ("no keyword",)),
    ("tr(X, dim=0)", ("no keyword",)),
    ("max(x, y, axis=1)", ("element-wise",)),
])
def test_errors_say_what_is_accepted(text, fragments):
    with pytest.raises(matcalc.MatcalcError) as info:
        matcalc.parse(text, x="vector(m)", y="vector(n)")
    assert info.value.position is not None
    for f in fragments:
        assert f in str(info.value), str(info.value)


def test_printing_reads_back():
    for text in ("softmax(X)", "logsumexp(X, axis=1)", "max(X, axis=1)", "softmax(X, axis=0)",
                 "logsumexp(X, axis=0)", "max(x)", "maxmask(X)", "sum(X, axis=1)", "mean(X, axis=0)",
                 "X W + b'"):
        e = _parse(text)
        assert matcalc.parse(str(e)) is e, (text, str(e))
    assert matcalc.to_unicode(_parse("mean(X, axis=1)")) == "(X 𝟙) / n"
    assert matcalc.to_text(_parse("softmax(X, axis=0)")) == "softmax(X, axis=0)"
    assert "axis" in matcalc.to_latex(_parse("logsumexp(X, axis=1)"))


@pytest.mark.parametrize("text", ["sum(X, axis=1)", "sum(X, axis=0)", "mean(X, axis=0)", "mean(X, axis=1)",
                                  "X - mean(X, axis=0)", "X W + b'"])
def test_kronecker_forms_of_the_linear_axis_operations(text):
    """∂vec(F)/∂vec(X) (columns stacked) equals the tensor entry by entry: [i + j m_F, k + l m_X] = T[i, j, k, l]."""
    d = matcalc.derive(_parse(text), "X")
    assert d.kronecker is not None, text
    values = _values(d.function, seed=5)
    tensor = np.asarray(d.evaluate(**values), dtype=float)
    kron = np.atleast_2d(np.asarray(matcalc.evaluate(d.kronecker, values, sizes=SIZES), dtype=float))
    rows, cols = 3, 4  # X is m x n
    out = tensor.reshape(tensor.shape[:-2] + (rows, cols)) if tensor.ndim >= 3 else tensor
    f_shape = out.shape[:-2]
    f_rows, f_cols = (f_shape + (1,))[:2] if len(f_shape) == 2 else ((f_shape[0], 1) if "axis=1" in text
                                                                     else (1, f_shape[0]))
    want = np.zeros((f_rows * f_cols, rows * cols))
    for i in range(f_rows):
        for j in range(f_cols):
            entry = out[i, j] if len(f_shape) == 2 else out[i if f_cols == 1 else j]
            want[i + j * f_rows] = entry.reshape(-1, order="F")
    np.testing.assert_allclose(kron, want, atol=1e-12)


def test_a_row_wise_softmax_is_one_step_with_its_rule():
    d = matcalc.derive("sum(Y .* log(softmax(X W)))", "W", X="matrix(m, n)", W="matrix(n, k)", Y="matrix(m, k)")
    text = str(d.steps)
    assert "u2 = softmax(u1)" in text and "[softmax of each row]" in text
    values = _values(d.function, seed=4)
    want = first(d.function, [s for s in N.symbols_of(d.function) if s.name == "W"][0], values)
    np.testing.assert_allclose(np.asarray(d.evaluate(**values)), want, rtol=1e-5, atol=1e-6)


def test_the_bias_gradient_sums_over_the_batch():
    d = matcalc.derive("sum(relu(X W + b'))", "b", X="matrix(m, n)", W="matrix(n, k)", b="vector(k)")
    assert d.unicode().startswith("𝟙ᵀ step(X W + 𝟙 bᵀ)"), d.unicode()
    code = d.to_numpy()
    assert "np.sum(" in code and "np.ones" not in code  # an axis sum and a broadcast view, no ones vectors


def test_centring_is_one_node_in_mean_and_var():
    """``X - mean(X, axis=1)`` and the centring inside ``var(X, axis=1)`` are the same node, so layer norm
    computes (and its steps name) the centred matrix once."""
    from matcalc import parse
    from matcalc.nodes import walk

    centred = parse("X - mean(X, axis=1)", X="matrix(m, k)")
    assert any(n is centred for n in walk(parse("var(X, axis=1)", X="matrix(m, k)")))
    centred0 = parse("X - mean(X, axis=0)", X="matrix(m, k)")
    assert any(n is centred0 for n in walk(parse("var(X, axis=0)", X="matrix(m, k)")))


@pytest.mark.parametrize("text,axis", [
    ("exp(S) ./ sum(exp(S), axis=1)", 1), ("exp(S) ./ (exp(S) ones(k) ones(k)')", 1),
    ("exp(S) ./ sum(exp(S), axis=0)", 0), ("exp(S) ./ (ones(m) ones(m)' exp(S))", 0)])
def test_a_softmax_written_out_is_the_softmax(text, axis):
    """The papers write attention's softmax out; it is read as softmax(S) (same function), so its derivative
    takes the softmax rule and its value and gradient stay finite where exp(S) overflows."""
    e = matcalc.parse(f"sum(G .* ({text}))", S="matrix(m,k)", G="matrix(m,k)")
    assert e is matcalc.parse(f"sum(G .* softmax(S, axis={axis}))", S="matrix(m,k)", G="matrix(m,k)")
    rng = np.random.default_rng(2)
    values = {"S": 800.0 * rng.normal(size=(3, 4)), "G": rng.normal(size=(3, 4))}
    d = matcalc.derive(e, "S", layout="denominator", warn=False)
    got = np.asarray(d.evaluate(**values), dtype=float)
    assert np.all(np.isfinite(got)) and np.isfinite(matcalc.evaluate(e, **values))
    small = {"S": values["S"] / 800.0, "G": values["G"]}
    want = first(e, next(s for s in N.symbols_of(e) if s.name == "S"), small, layout="denominator")
    np.testing.assert_allclose(d.evaluate(**small), want.reshape(3, 4), rtol=1e-6, atol=1e-8)


def test_other_quotients_of_exponentials_stay_quotients():
    for text in ("exp(S) ./ sum(exp(S))", "exp(S) ./ (exp(S) + 1)", "exp(S) ./ (exp(T) ones(k) ones(k)')"):
        e = matcalc.parse(text, S="matrix(m,k)", T="matrix(m,k)")
        assert not any(isinstance(n, N.SoftmaxRows) for n in N.walk(e)), text
