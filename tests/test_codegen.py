"""Generated NumPy / JAX / PyTorch code agrees with matcalc.numeric.evaluate on random values."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

import matcalc
from matcalc.codegen import CodegenError, compile_numpy, generate
from matcalc.shapes import Dim

# (expression, wrt, options, names that must be positive)
CASES = [
    ("x' A x", "x", {}, ""),
    ("x' A x", "x", {"layout": "denominator"}, ""),
    ("x' A x", "x", {"order": 2}, ""),
    ("x' S x", "x", {"S": "symmetric(n)", "layout": "denominator"}, ""),
    ("sum(exp(A x))", "x", {}, ""),
    ("sum(exp(A x))", "x", {"order": 2}, ""),
    ("sum(exp(A x))", "A", {"layout": "denominator"}, ""),
    ("-y*log(sigmoid(w·x)) - (1-y)*log(1-sigmoid(w·x))", "w", {"y": "scalar", "layout": "denominator"}, ""),
    ("-y*log(sigmoid(w·x)) - (1-y)*log(1-sigmoid(w·x))", "w", {"y": "scalar", "order": 2}, ""),
    ("-y·log(softmax(W x))", "W", {"layout": "denominator"}, ""),
    ("-y·log(softmax(W x))", "x", {}, ""),
    ("logsumexp(W x) - y·(W x)", "W", {"layout": "denominator"}, ""),
    ("tanh(W x + b)", "x", {"b": "vector(n)"}, ""),
    ("sum(relu(W x + b))", "W", {"b": "vector(n)", "layout": "denominator"}, ""),
    ("max(0, w·x + b)", "w", {}, ""),
    ("sigmoid(W x)", "x", {}, ""),
    ("softplus(W x) .* z", "x", {}, ""),
    ("tr(A X B)", "X", {}, ""),
    ("det(X)", "X", {}, ""),
    ("logdet(X)", "X", {"layout": "denominator"}, ""),
    ("tr(inv(X) A)", "X", {}, ""),
    ("x' inv(A) x", "x", {"layout": "denominator"}, ""),
    ("x' inv(A) x", "A", {}, ""),
    ("norm(X - U V)^2", "V", {"layout": "denominator"}, ""),
    ("norm(X - U V)^2", "U", {"layout": "denominator"}, ""),
    ("norm(A x - y)", "x", {}, ""),
    ("norm1(A x - y)", "x", {}, ""),
    ("sum(sqrt(x) .* log(x))", "x", {}, "x"),
    ("mean(x ./ (1 + x.^2))", "x", {}, ""),
    ("[x^2 * y, sin(3 x)]", "x", {"x": "scalar", "y": "scalar"}, ""),
    ("exp(a) * x", "a", {}, ""),
    ("x .* (A x)", "x", {}, ""),
    ("sum(diag(x) A x)", "x", {}, ""),
    ("sum(kron(A, B)) + x' x", "x", {}, ""),
    ("sum(A^3)", "A", {}, ""),
    ("x' (A + eye(n)) x + sum(x)", "x", {"A": "matrix(n,n)"}, ""),
    ("sum(cos(A x))", "x", {"order": 2}, ""),
    ("||W2 tanh(W1 x + b) - y||^2", "x", {"b": "vector(m)", "order": 2}, ""),
    ("x' B' diag(exp(x)) B x", "x", {"order": 2}, ""),
]


def _sizes(function) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for d in matcalc.nodes.dims_in(function):
        if isinstance(d, Dim):
            sizes.setdefault(d.name, 3 + len(sizes))
    return sizes


def random_values(function, positive: str = "", seed: int = 0) -> dict:
    """Random values for every symbol; square matrices diagonally dominant (invertible, det > 0)."""
    rng = np.random.default_rng(seed)
    sizes = _sizes(function)

    def size(d):
        return d if isinstance(d, int) else sizes[d.name]

    values = {}
    for s in matcalc.nodes.symbols_of(function):
        lo, hi = (0.5, 2.0) if s.name in positive.split() else (-1.0, 1.0)
        if s.shape == ():
            values[s.name] = float(rng.uniform(lo, hi))
        elif s.shape[1] == 1 or s.shape[0] == 1:
            values[s.name] = rng.uniform(lo, hi, size(s.shape[0] if s.shape[1] == 1 else s.shape[1]))
        else:
            m, n = size(s.shape[0]), size(s.shape[1])
            value = rng.uniform(-0.5, 0.5, (m, n))
            if m == n:
                value = value + n * np.eye(n)
                if s.symmetric:
                    value = (value + value.T) / 2
            values[s.name] = value
    return values


def _ids(cases):
    return [f"{e} wrt {w} {o}" for e, w, o, _ in cases]


@pytest.fixture(params=CASES, ids=_ids(CASES))
def case(request):
    expr, wrt, options, positive = request.param
    d = matcalc.derive(expr, wrt=wrt, **options)
    return d, random_values(d.function, positive)


def _close(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_numpy_matches_evaluate(case):
    d, values = case
    f = compile_numpy(d)
    _close(f(**values), d.evaluate(**values))


def test_numpy_value_and_grad(case):
    d, values = case
    value, grad = compile_numpy(d, value_and_grad=True)(**values)
    _close(value, matcalc.evaluate(d.function, values))
    _close(grad, d.evaluate(**values))


@pytest.mark.parametrize("target", ["numpy", "jax", "torch"])
def test_source_is_one_documented_function(case, target):
    d, _ = case
    source = generate(d, target)
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(functions) == 1
    doc = ast.get_docstring(functions[0])
    assert d.variable.name in doc and d.layout in doc
    if any(s.shape != () for s in matcalc.nodes.symbols_of(d.function)) or target != "numpy":
        assert ".shape" in source and "raise ValueError" in source
    params = [a.arg for a in functions[0].args.args]
    assert params == [s.name for s in matcalc.nodes.symbols_of(d.function)]


def test_jax_matches_evaluate(case):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    d, values = case
    for vg in (False, True):
        namespace: dict = {}
        source = generate(d, "jax", value_and_grad=vg, name="f")
        exec(source, namespace)
        out = jax.jit(namespace["f"])(**values)
        if vg:
            _close(out[0], matcalc.evaluate(d.function, values))
            out = out[1]
        _close(np.asarray(out), d.evaluate(**values))


def test_torch_matches_evaluate(case):
    torch = pytest.importorskip("torch")
    d, values = case
    for vg in (False, True):
        namespace: dict = {}
        exec(generate(d, "torch", value_and_grad=vg, name="f"), namespace)
        tensors = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in values.items()}
        out = namespace["f"](**tensors)
        if vg:
            _close(out[0].numpy(), matcalc.evaluate(d.function, values))
            out = out[1]
        _close(out.numpy(), d.evaluate(**values))


# --- the shape of the generated code ----------------------------------------------------------------
def test_matrix_vector_products_first_and_no_transposed_copy():
    d = matcalc.derive("x' A' B x", wrt="x", layout="denominator")
    value_line = next(line for line in generate(d, "numpy", value_and_grad=True).splitlines() if "value =" in line)
    assert "A.T" not in value_line and value_line.count("@ x") >= 1
    d = matcalc.derive("sum(exp(A x))", wrt="x", layout="denominator")
    src = generate(d, "jax")
    assert "A.T @" not in src and "@ A" in src  # v @ A, not A.T @ v


def test_diag_products_broadcast():
    d = matcalc.derive("sum(exp(A x))", wrt="x", order=2)
    src = generate(d, "numpy")
    assert "np.diag" not in src and "[:, None] *" in src


def test_common_subexpressions_computed_once():
    d = matcalc.derive("sum(exp(A x))", wrt="x")
    src = generate(d, "numpy", value_and_grad=True)
    assert src.count("np.exp(") == 1 and "t1 = np.exp(A @ x)" in src


def test_shape_checks_bind_and_check_dimensions():
    d = matcalc.derive("x' A x", wrt="x")
    f = compile_numpy(d)
    assert "(n,), (A_size1, A_size2) = x.shape, A.shape" in f.__matcalc_source__
    _close(f(x=[1.0, 2.0], A=[[1, 2], [3, 4]]), [12.0, 21.0])  # lists and integers are converted
    for x, A, got in [(np.ones(3), np.ones((3, 2)), "A (3, 2)"), (np.ones((3, 1)), np.ones((3, 3)), "x (3, 1)"),
                      (np.ones(3), np.ones(3), "A (3,)"), (np.ones(2), np.ones((3, 3)), "x (2,)")]:
        with pytest.raises(ValueError, match=re.escape(f"expected shapes x (n,), A (n, n); got x {x.shape}, ")) as e:
            f(x=x, A=A)
        assert got in str(e.value)
    d = matcalc.derive("W2 tanh(W1 x + b)", wrt="b", W1="matrix(m, k)", b="vector(m)")
    for target in ("numpy", "jax", "torch"):  # every target checks the same way
        src = generate(d, target)
        assert "W1_size1 != m" in src.replace("(W1_size1, k)", "") and "raise ValueError('derivative_b: " in src
    f = compile_numpy(d)
    with pytest.raises(ValueError, match=re.escape("got W2 (2, 4), W1 (3, 5), x (5,), b (3,)")):
        f(W2=np.ones((2, 4)), W1=np.ones((3, 5)), x=np.ones(5), b=np.ones(3))


def test_vectors_are_one_dimensional_and_scalars_float():
    d = matcalc.derive("w·x + b", wrt="w")
    out = compile_numpy(d, value_and_grad=True)(w=[1.0, 2.0], x=[3.0, 4.0], b=0.5)
    assert isinstance(out[0], float) and out[0] == 11.5
    assert out[1].shape == (2,)


def test_keyword_names_are_renamed():
    d = matcalc.derive("lambda * x' x", wrt="x")
    src = generate(d, "numpy")
    assert "def derivative_x(lambda_, x):" in src and "the variable lambda" in src
    f = compile_numpy(d)
    _close(f(lambda_=2.0, x=np.array([1.0, 2.0])), [4.0, 8.0])


def test_dimension_names_do_not_clash_with_variables():
    d = matcalc.derive("n' A n", wrt="n", n="vector(n)")
    f = compile_numpy(d)
    assert "(n_dim,), (A_size1, A_size2) = n.shape, A.shape" in f.__matcalc_source__
    values = {"n": np.array([1.0, 2.0]), "A": np.array([[1.0, 2.0], [3.0, 4.0]])}
    _close(f(**values), d.evaluate(**values))


def test_custom_name_and_bad_name():
    d = matcalc.derive("x' x", wrt="x")
    assert "def grad_f(x):" in generate(d, "numpy", name="grad_f")
    with pytest.raises(CodegenError):
        generate(d, "numpy", name="not valid")
    with pytest.raises(CodegenError):
        generate(d, "fortran")


def test_derivative_methods_delegate():
    d = matcalc.derive("x' A x", wrt="x")
    assert d.to_numpy().startswith("import numpy as np")
    assert "import jax.numpy as jnp" in d.to_jax()
    assert "import torch" in d.to_torch()
    values = random_values(d.function)
    _close(d.compile()(**values), d.evaluate(**values))


def test_large_shared_dag_is_linear_in_size():
    expr = "x"
    for _ in range(30):
        expr = f"tanh(W ({expr}))"
    d = matcalc.derive(f"sum({expr})", wrt="x", W="matrix(n, n)")
    src = generate(d, "numpy")
    assert len(src) < 40_000
    values = random_values(d.function)
    values["W"] = values["W"] / values["W"].shape[0]
    _close(compile_numpy(d)(**values), d.evaluate(**values))


def test_generated_code_evaluates_cheaply():
    # (A + A') x is printed for reading but computed as two matrix-vector products
    src = matcalc.derive("x' A x", "x", layout="denominator").to_numpy()
    assert "A @ x + x @ A" in src and "A.T" not in src
    # the coefficient scales the vector of an outer product, and squares are products
    src = matcalc.derive("||W2 tanh(W1 x + b) - y||^2", "W1", b="vector(m)", layout="denominator").to_numpy()
    assert "np.outer(t2, x)" in src and "power" not in src


@pytest.mark.parametrize("size", [3, 31, 32, 40])
def test_gram_hessians_use_a_symmetric_product(size):
    # A' diag(w) A with w >= 0 is generated as B' B (NumPy's symmetric rank-k update: half the work) from
    # 32 x 32 on, and as the general product below (lower fixed cost)
    for text, var in (("sum(exp(A x))", "x"), ("-sum(y .* log(σ(X w)) + (1 - y) .* log(1 - σ(X w)))", "w")):
        h = matcalc.hessian(text, var)
        src = h.to_numpy()
        assert "np.sqrt(w1)[:, None] *" in src and "rows1.T @ rows1" in src and ".shape) < 32:" in src
        rng = np.random.default_rng(size)
        values = {s.name: rng.standard_normal((size, size) if len(s.shape) == 2 and 1 not in s.shape else size)
                  for s in matcalc.nodes.symbols_of(h.function)}
        np.testing.assert_allclose(h.compile()(**values), h.evaluate(**values), rtol=1e-10)


@pytest.mark.parametrize("size", [3, 127, 128, 150])
@pytest.mark.parametrize("scale", [0.0, 0.01, 1.0, 10.0])
def test_weights_of_either_sign_split_into_two_symmetric_products(scale, size):
    # A' diag(w) A with w of unknown sign: P'P - Q'Q over the rows with w > 0 and the others from 128 x 128 on
    # (NumPy only; under jax.jit a shape cannot depend on values, so JAX keeps the general product)
    h = matcalc.hessian("sum(cos(A x))", "x")
    src = h.to_numpy()
    assert "> 0" in src and ".T @ p1 - rows1.T @ rows1" in src and "if min(A.shape) < 128:" in src
    assert "> 0" not in h.to_jax() and "> 0" not in h.to_torch()
    rng = np.random.default_rng(size)
    values = {"A": scale * rng.standard_normal((size, size)) / np.sqrt(size), "x": rng.standard_normal(size)}
    # scale 0: every weight is -1; 0.01: all negative; 1 and 10: mixed signs
    np.testing.assert_allclose(h.compile()(**values), h.evaluate(**values), rtol=1e-10, atol=1e-11)


def test_network_hessian_is_distributed_into_gram_products():
    # 2 W1' S (W2' W2 S - 2 diag(c)) W1 = 2 (W2 S W1)'(W2 S W1) - 4 W1' diag(s c) W1: the Gauss-Newton term
    # costs O(k n^2) as a Gram product instead of O(n^3) inside the sum
    h = matcalc.hessian("||W2 tanh(W1 x + b) - y||^2", "x", b="vector(m)")
    src = h.to_numpy()
    assert "t3 = W2 @ (t2[:, None] * W1)" in src and "w1 = -4.0 * (t1 * t2 *" in src and "2.0 * (t3.T @ t3) + t4" in src
    rng = np.random.default_rng(0)
    for m, k, n in [(7, 5, 3), (1, 1, 1), (12, 9, 2), (140, 130, 13)]:
        values = {"W2": rng.standard_normal((n, m)), "W1": rng.standard_normal((m, k)), "x": rng.standard_normal(k),
                  "b": rng.standard_normal(m), "y": rng.standard_normal(n)}
        np.testing.assert_allclose(h.compile()(**values), h.evaluate(**values), rtol=1e-10, atol=1e-12)
