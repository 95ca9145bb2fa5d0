"""matcalc.numeric.evaluate against hand-written NumPy, node type by node type."""

from __future__ import annotations

import math

import numpy as np
import pytest

import matcalc
from matcalc import nodes as N
from matcalc.errors import CheckError, UnknownNameError
from matcalc.numeric import NumpyEvaluator, evaluate, to_user
from matcalc.shapes import Dim

rng = np.random.default_rng(1234)
n, m = Dim("n"), Dim("m")

A = rng.normal(size=(3, 3))
B = rng.normal(size=(3, 3))
C = rng.normal(size=(2, 4))
W = rng.normal(size=(4, 3))
x = rng.normal(size=3)
y = rng.normal(size=3)
z = np.abs(rng.normal(size=3)) + 0.5
SPD = A @ A.T + 3 * np.eye(3)
a, b, c, d = 0.7, -1.3, 2.1, 0.4
VALUES = dict(A=A, B=B, C=C, W=W, x=x, y=y, z=z, a=a, b=b, c=c, d=d, S=SPD)


def sig(v):
    return 1 / (1 + np.exp(-v))


# text, declarations, expected value (NumPy by hand)
CASES = [
    ("x' A x", {}, x @ A @ x),
    ("2 A x", {}, 2 * A @ x),
    ("x' A", {}, x @ A),
    ("a b", {}, a * b),
    ("A B x", {}, A @ B @ x),
    ("W x", {}, W @ x),
    ("x + y - z", {}, x + y - z),
    ("x + 1", {}, x + 1),
    ("A + a", {}, A + a),
    ("-x", {}, -x),
    ("A / a", {}, A / a),
    ("x .* y", {}, x * y),
    ("a .* x", {}, a * x),
    ("x ./ z", {}, x / z),
    ("a ./ z", {}, a / z),
    ("dot(x, y)", {}, x @ y),
    ("x · y", {}, x @ y),
    ("a ^ 3", {}, a**3),
    ("c ^ 0.5", {}, c**0.5),
    ("A ^ 2", {}, A @ A),
    ("A ^ 3", {}, A @ A @ A),
    ("A ^ -1", {}, np.linalg.inv(A)),
    ("z .^ 1.5", {}, z**1.5),
    ("A .^ 2", {}, A**2),
    ("A'", {}, A.T),
    ("x'", {}, x),
    ("C'", dict(C="matrix(m,k)"), C.T),
    ("sum(exp(A x))", {}, np.sum(np.exp(A @ x))),
    ("sum(A)", {}, np.sum(A)),
    ("mean(A)", {}, np.mean(A)),
    ("mean(x)", {}, np.mean(x)),
    ("logsumexp(x)", {}, np.log(np.sum(np.exp(x)))),
    ("norm(x)", {}, np.linalg.norm(x)),
    ("norm(A)", {}, np.linalg.norm(A, "fro")),
    ("||A||_F", {}, np.linalg.norm(A, "fro")),
    ("norm1(x)", {}, np.sum(np.abs(x))),
    ("norm1(A)", {}, np.sum(np.abs(A))),
    ("tr(A)", {}, np.trace(A)),
    ("det(A)", {}, np.linalg.det(A)),
    ("logdet(S)", dict(S="symmetric(n)"), np.log(np.linalg.det(SPD))),
    ("logdet(X)", {}, np.log(np.linalg.det(SPD))),
    ("inv(A)", {}, np.linalg.inv(A)),
    ("softmax(W x)", {}, np.exp(W @ x) / np.sum(np.exp(W @ x))),
    ("diag(x)", {}, np.diag(x)),
    ("diag(A)", {}, np.diag(A)),
    ("kron(A, B)", {}, np.kron(A, B)),
    ("kron(A, C)", dict(C="matrix(m,k)"), np.kron(A, C)),
    ("outer(x, y)", {}, np.outer(x, y)),
    ("[a, b; c, d]", {}, np.array([[a, b], [c, d]])),
    ("[a, b, c]", {}, np.array([a, b, c])),
    ("[a^2, sin(3b)]", {}, np.array([a**2, np.sin(3 * b)])),
    ("[x' y, a; b, sum(A)]", {}, np.array([[x @ y, a], [b, np.sum(A)]])),
    ("eye + A", {}, np.eye(3) + A),
    ("I + A", {}, np.eye(3) + A),
    ("x + ones(n)", {}, x + 1),
    ("x + zeros(n)", {}, x),
    ("x + vector(2)", {}, x + 2),
    ("A + matrix(c)", {}, A + c),
    ("max(0, x' y + b)", {}, max(0.0, x @ y + b)),
    ("min(0, x)", {}, np.minimum(0, x)),
]

FUNCTION_CASES = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "tanh": np.tanh,
    "sigmoid": sig, "relu": lambda v: np.maximum(v, 0), "softplus": lambda v: np.log1p(np.exp(v)),
    "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign, "step": lambda v: np.where(np.asarray(v) > 0, 1.0, 0.0),
    # issue #15, against the C library entry by entry and the textbook formulas
    "erf": np.vectorize(math.erf), "sinh": np.vectorize(math.sinh), "cosh": np.vectorize(math.cosh),
    "log1p": np.vectorize(math.log1p), "expm1": np.vectorize(math.expm1),
    "gelu": lambda v: v * (1 + np.vectorize(math.erf)(v / math.sqrt(2))) / 2, "silu": lambda v: v / (1 + np.exp(-v)),
    "elu": lambda v: np.where(np.asarray(v) > 0, v, np.exp(v) - 1),
}


@pytest.mark.parametrize("text, decls, expected", CASES, ids=[c[0] for c in CASES])
def test_against_numpy(text, decls, expected):
    e = matcalc.parse(text, **decls)
    values = dict(VALUES, X=SPD)
    got = evaluate(e, values)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert np.shape(got) == np.shape(expected)


@pytest.mark.parametrize("name", N.ELEMENTWISE)
def test_elementwise_functions(name):
    v = rng.uniform(-0.9, 0.9, size=(3, 1))
    if name in ("log", "sqrt"):
        v = np.abs(v) + 0.1
    for arg, value in ((N.Symbol("v", (n, 1)), v), (N.Symbol("s", ()), 0.3), (N.Symbol("M", (n, m)), C)):
        arg_value = value if name not in ("log", "sqrt", "arcsin", "arccos", "log1p") else np.abs(value) / 3 + 0.05
        got = evaluate(N.Apply(name, arg), {arg.name: arg_value})
        expected = np.reshape(FUNCTION_CASES[name](arg_value), np.shape(got))  # columns come back 1-D
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_stable_functions_at_extremes():
    v = N.Symbol("v", (n, 1))
    big = np.array([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(evaluate(N.Apply("sigmoid", v), {"v": big}), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(evaluate(N.Apply("softplus", v), {"v": big}), [0.0, np.log(2), 1000.0])
    np.testing.assert_allclose(evaluate(N.Softmax(v), {"v": big}), [0.0, 0.0, 1.0])
    assert evaluate(N.LogSumExp(v), {"v": big}) == pytest.approx(1000.0)
    assert evaluate(N.LogSumExp(v), {"v": np.full(3, -np.inf)}) == -np.inf
    np.testing.assert_array_equal(evaluate(N.Apply("step", v), {"v": np.array([-1.0, 0.0, 2.0])}), [0, 0, 1])
    np.testing.assert_array_equal(evaluate(N.Apply("relu", v), {"v": np.array([-1.0, 0.0, 2.0])}), [0, 0, 2])


def test_logdet_negative_determinant_is_nan():
    X = N.Symbol("X", (n, n))
    assert np.isnan(evaluate(N.LogDet(X), {"X": np.diag([1.0, -2.0])}))
    assert evaluate(N.LogDet(X), {"X": np.diag([1.0, 0.0])}) == -np.inf
    assert evaluate(N.LogDet(X), {"X": np.diag([2.0, 3.0])}) == pytest.approx(np.log(6.0))


def test_numel_and_constant_leaves():
    M = N.Symbol("M", (n, m))
    assert evaluate(N.Numel(M), {"M": C}) == 8.0
    assert evaluate(N.Numel(N.Symbol("s", ())), {"s": 1.0}) == 1.0
    assert evaluate(N.Number("1/3"), {}) == pytest.approx(1 / 3)
    np.testing.assert_array_equal(evaluate(N.Identity(n), {}, sizes={"n": 2}), np.eye(2))
    np.testing.assert_array_equal(evaluate(N.Identity(4), {}), np.eye(4))
    np.testing.assert_array_equal(evaluate(N.Ones((1, n)), {}, sizes={"n": 3}), np.ones(3))
    np.testing.assert_array_equal(evaluate(N.Zeros((n, m)), {}, sizes={"n": 2, "m": 3}), np.zeros((2, 3)))
    assert evaluate(N.Ones((1, 1)), {}) == 1.0
    np.testing.assert_array_equal(evaluate(N.Fill(N.Number(5), (n, 1)), {}, sizes={"n": 2}), [5.0, 5.0])


def test_dimproduct_sizes():
    kron_id = N.Identity(N.Kron(N.Symbol("P", (n, n)), N.Symbol("Q", (m, m))).shape[0])
    assert evaluate(kron_id, {}, sizes={"n": 2, "m": 3}).shape == (6, 6)
    # A symbol whose shape is a product gets its factor from the value once the other is known.
    V = N.Symbol("V", (N.Kron(N.Symbol("P", (n, n)), N.Symbol("Q", (m, m))).shape[0], 1))
    e = N.Add(N.Sum(V), N.Sum(N.Symbol("u", (n, 1))), N.Sum(N.Ones((m, 1))))
    assert evaluate(e, {"V": np.ones(6), "u": np.ones(2)}) == 6 + 2 + 3
    with pytest.raises(CheckError, match="multiple"):
        evaluate(e, {"V": np.ones(7), "u": np.ones(2)})


def test_differentials_by_node_and_by_name():
    X = N.Symbol("X", (n, n))
    dX = N.Differential(X)
    e = N.Trace(N.MatMul(N.Inv(X), dX))  # d logdet(X)
    D = rng.normal(size=(3, 3))
    expected = np.trace(np.linalg.inv(SPD) @ D)
    assert evaluate(e, {"X": SPD, dX: D}) == pytest.approx(expected)
    assert evaluate(e, {X: SPD, "dX": D}) == pytest.approx(expected)
    with pytest.raises(UnknownNameError, match="dX"):
        evaluate(e, {"X": SPD})


def test_shared_subexpressions_evaluated_once():
    calls = []

    class Counting(NumpyEvaluator):
        def _eval_Apply(self, node):
            calls.append(node)
            return super()._eval_Apply(node)

    v = N.Symbol("v", (n, 1))
    inner = N.Apply("exp", v)
    for _ in range(30):  # 2^30 paths through the tree: only a DAG walk finishes
        inner = N.Add(inner, inner)
    expr = N.Sum(N.Hadamard(inner, inner))
    value = Counting({"v": np.zeros(2)}).eval(expr)
    assert len(calls) == 1
    assert value == pytest.approx(2 * (2.0**30) ** 2)


def test_deep_chain_does_not_recurse():
    v = N.Symbol("v", (n, 1))
    e = v
    for _ in range(5000):
        e = N.Apply("tanh", e)
    out = evaluate(e, {"v": np.array([0.5, -0.5])})
    assert out.shape == (2,) and np.all(np.abs(out) < 0.05)


# --- conversions ------------------------------------------------------------------------------------
def test_input_forms():
    e = matcalc.parse("x' A x")
    expected = x @ A @ x
    assert evaluate(e, {"x": x.reshape(3, 1), "A": A}) == pytest.approx(expected)
    assert evaluate(matcalc.parse("a b"), {"a": np.array(2.0), "b": 3}) == 6.0
    row = N.Symbol("r", (1, n))
    np.testing.assert_array_equal(evaluate(row, {"r": x}), x)
    np.testing.assert_array_equal(evaluate(row, {"r": x.reshape(1, 3)}), x)


def test_output_forms():
    assert type(evaluate(matcalc.parse("x' A x"), VALUES)) is float
    assert evaluate(matcalc.parse("A x"), VALUES).shape == (3,)
    assert evaluate(matcalc.parse("x' A"), VALUES).shape == (3,)
    assert evaluate(matcalc.parse("A B"), VALUES).shape == (3, 3)
    assert type(to_user(np.float64(2.0), ())) is float
    assert to_user(np.ones((1, 1)), ()) == 1.0
    assert to_user(np.ones((4, 1)), (n, 1)).shape == (4,)
    assert to_user(np.ones((1, 4)), (1, n)).shape == (4,)
    assert to_user(np.ones((2, 4)), (m, n)).shape == (2, 4)
    # A vector stays a vector when its dimension is 1.
    assert evaluate(matcalc.parse("A x"), {"A": np.ones((1, 1)), "x": np.ones(1)}).shape == (1,)


def test_result_does_not_alias_input():
    out = evaluate(matcalc.parse("x"), {"x": x})
    out[0] = 99.0
    assert x[0] != 99.0


# --- errors -----------------------------------------------------------------------------------------
def test_size_mismatch_names_symbol_and_sizes():
    with pytest.raises(CheckError) as info:
        evaluate(matcalc.parse("x' A x"), {"A": np.ones((4, 4)), "x": np.ones(3)})
    message = str(info.value)
    assert "x" in message and "3" in message and "4" in message and "n" in message


def test_size_mismatch_with_sizes_argument():
    with pytest.raises(CheckError, match="sizes"):
        evaluate(matcalc.parse("A x"), {"A": A, "x": x}, sizes={"n": 5})


def test_fixed_integer_size_mismatch():
    with pytest.raises(CheckError, match="z"):
        evaluate(N.Symbol("z", (3, 1)), {"z": np.ones(4)})


def test_missing_value():
    with pytest.raises(UnknownNameError, match="x"):
        evaluate(matcalc.parse("x' A x"), {"A": A})


def test_unbound_dimension_asks_for_sizes():
    with pytest.raises(CheckError, match="sizes"):
        evaluate(matcalc.parse("vector(2)"), {})
    np.testing.assert_array_equal(evaluate(matcalc.parse("vector(2)"), {}, sizes={"n": 2}), [2.0, 2.0])


def test_wrong_number_of_axes():
    with pytest.raises(CheckError, match="scalar"):
        evaluate(matcalc.parse("a b"), {"a": np.ones(2), "b": 1.0})
    with pytest.raises(CheckError, match="matrix"):
        evaluate(matcalc.parse("A x"), {"A": np.ones(3), "x": x})
    with pytest.raises(CheckError):
        evaluate(matcalc.parse("A x"), {"A": A, "x": np.ones((1, 3))})
    with pytest.raises(CheckError, match="not a real"):
        evaluate(matcalc.parse("a b"), {"a": "two", "b": 1.0})


def test_symmetric_value_checked():
    e = matcalc.parse("logdet(S)", S="symmetric(n)")
    with pytest.raises(CheckError, match="symmetric"):
        evaluate(e, {"S": A})
