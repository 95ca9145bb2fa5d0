"""The explicit SymPy backend agrees with the NumPy evaluator, entry by entry, at random points."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import matcalc
from matcalc import nodes as N
from matcalc.errors import CheckError, UnknownNameError
from matcalc.numeric import evaluate
from matcalc.shapes import Dim
from matcalc.sympy_backend import default_sizes, numeric_value, symbol_matrices, to_explicit

n, m = Dim("n"), Dim("m")


def random_values(symbols, domain: str, rng) -> dict:
    """Random values for every explicit leaf: ``pos`` > 0, ``unit`` in (0, 1), ``spd`` for square matrices."""
    out = {}
    for name, leaf in symbols.items():
        shape = tuple(leaf.shape) if isinstance(leaf, sympy.MatrixBase) else ()
        if domain == "pos":
            v = rng.uniform(0.5, 2.0, size=shape)
        elif domain == "unit":
            v = rng.uniform(0.1, 0.9, size=shape)
        else:
            v = rng.normal(size=shape)
        square = len(shape) == 2 and shape[0] == shape[1] and shape[0] > 1
        if domain == "spd" and square:
            v = v @ v.T + shape[0] * np.eye(shape[0])
        shared = isinstance(leaf, sympy.MatrixBase) and len(set(leaf)) < len(leaf)
        if shared:
            v = (v + v.T) / 2
        out[name] = v
    return out


X = N.Symbol("X", (n, n))
M = N.Symbol("M", (n, m))

# text or node, declarations, value domain
CASES = [
    ("x' A x", {}, "normal"),
    ("2 A x + b", {}, "normal"),
    ("W x", {}, "normal"),
    ("x' W", {}, "normal"),
    ("A B", dict(A="matrix(n,m)", B="matrix(m,k)"), "normal"),
    ("x - y", {}, "normal"),
    ("-A'", dict(A="matrix(n,m)"), "normal"),
    ("A' x + A x", {}, "normal"),
    ("A / a", dict(A="matrix(n,m)"), "normal"),
    ("x .* y", {}, "normal"),
    ("x ./ z + a ./ z", {}, "pos"),
    ("dot(x, y)", {}, "normal"),
    ("sin(pi x) + π", {}, "normal"),  # the constant π (issue 17)
    ("a ^ 3 + c ^ 0.5", {}, "pos"),
    ("A ^ 2", {}, "normal"),
    ("A ^ -2", {}, "spd"),
    ("z .^ 1.5", {}, "pos"),
    ("sum(A)", dict(A="matrix(n,m)"), "normal"),
    ("mean(A)", dict(A="matrix(n,m)"), "normal"),
    ("logsumexp(W x)", {}, "normal"),
    ("norm(A)", dict(A="matrix(n,m)"), "normal"),
    ("norm1(x)", {}, "normal"),
    ("tr(A B)", dict(A="matrix(n,m)", B="matrix(m,n)"), "normal"),
    ("det(A)", {}, "normal"),
    ("det(A)", dict(A="matrix(4,4)"), "normal"),
    ("logdet(S)", dict(S="symmetric(n)"), "spd"),
    ("logdet(X)", dict(X="matrix(3,3)"), "spd"),
    ("inv(A)", {}, "spd"),
    ("inv(A)", dict(A="matrix(3,3)"), "spd"),
    ("softmax(W x)", {}, "normal"),
    ("diag(x) A", {}, "normal"),
    ("diag(A)", {}, "normal"),
    ("kron(A, B)", dict(A="matrix(n,m)", B="matrix(k,p)"), "normal"),
    ("outer(x, y)", dict(x="vector(n)", y="vector(m)"), "normal"),
    ("[a, b; c, d]", {}, "normal"),
    ("[a^2, sin(3b)]", {}, "normal"),
    ("eye + A", {}, "normal"),
    ("x + ones(n) + zeros(n)", {}, "normal"),
    ("vector(c) .* x + matrix(2) y", dict(y="vector(m)"), "normal"),
    ("max(0, x' y + b)", {}, "normal"),
    ("min(0, x)", {}, "normal"),
    ("sigmoid(A) .* tanh(A)", dict(A="matrix(n,m)"), "normal"),
    ("relu(W x + y) + step(x) .* sign(y)", dict(W="matrix(n,n)"), "normal"),
    ("softplus(x) + abs(x) + exp(x) + arctan(x)", {}, "normal"),
    ("sin(A) + cos(A) + tan(A)", dict(A="matrix(n,m)"), "unit"),
    ("log(x) + sqrt(x) + arcsin(x) + arccos(x)", {}, "unit"),
    # issue 15: the row-wise nodes, axes and broadcasting
    ("softmax(A) + log_softmax(A, axis=0)", dict(A="matrix(n,m)"), "normal"),
    ("logsumexp(A, axis=1) + max(A, axis=1) + min(A, axis=1)", dict(A="matrix(n,m)"), "normal"),
    ("maxmask(A) + var(A, axis=0) .* norm(A, axis=0)", dict(A="matrix(n,m)"), "normal"),
    ("max(x) + max(A) + var(x)", dict(A="matrix(n,m)"), "normal"),
    ("A .* x + y' + mean(A, axis=1)", dict(A="matrix(n,m)", y="vector(m)"), "normal"),
    ("erf(x) + gelu(A x) + silu(x) .* elu(y)", {}, "normal"),  # issue #15
    ("sinh(A) + cosh(A) + expm1(A) + log1p(A)", dict(A="matrix(n,m)"), "unit"),
    ("leaky_relu(W x, a) + clip(y, -1, b)", dict(W="matrix(n,n)"), "normal"),
    (N.Add(N.Numel(M), N.Sum(M)), {}, "normal"),
    (N.Trace(N.MatMul(N.Inv(X), N.Differential(X))), {}, "spd"),
    (N.MatMul(N.Differential(M), N.Transpose(M)), {}, "normal"),
    (N.Transpose(N.Ones((n, 1))), {}, "normal"),
    (N.MatMul(N.Commutation(n, m), N.Kron(N.DiagVec(N.MatMul(N.Transpose(M), M)), N.DiagVec(X))), {}, "normal"),
]


def _ids():
    return [c[0] if isinstance(c[0], str) else type(c[0]).__name__ for c in CASES]


@pytest.mark.parametrize("source, decls, domain", CASES, ids=_ids())
def test_explicit_agrees_with_numeric(source, decls, domain):
    node = matcalc.parse(source, **decls) if isinstance(source, str) else source
    sizes = default_sizes(node)
    symbols = symbol_matrices(node, sizes)
    explicit = to_explicit(node, sizes, symbols)
    rng = np.random.default_rng(7)
    for _ in range(2):
        values = random_values(symbols, domain, rng)
        expected = evaluate(node, values, sizes)
        got = numeric_value(explicit, symbols, values, node.shape)
        assert np.shape(got) == np.shape(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_every_node_type_and_function_is_covered():
    seen: set[str] = set()
    functions: set[str] = set()
    for source, decls, _ in CASES:
        node = matcalc.parse(source, **decls) if isinstance(source, str) else source
        stack = [node]
        while stack:
            k = stack.pop()
            seen.add(type(k).__name__)
            if isinstance(k, N.Apply):
                functions.add(k.function)
            stack.extend(k.children)
    # the calls' nodes: tests/test_ops.py runs each call record's example through SymPy (CALL_EXAMPLES)
    classes = {c.__name__ for c in vars(N).values()
               if isinstance(c, type) and issubclass(c, N.Node) and not issubclass(c, N.Call)}
    classes -= {"Node"} | {c for c in classes if c.startswith("_")}
    assert classes <= seen, classes - seen
    assert functions == set(N.ELEMENTWISE)


def test_default_sizes_are_distinct_and_start_at_two():
    e = matcalc.parse("kron(A, B)", A="matrix(n,m)", B="matrix(k,p)")
    sizes = default_sizes(e)
    assert sorted(sizes.values()) == [2, 3, 4, 5]
    assert set(sizes) == {"n", "m", "k", "p"}
    assert default_sizes(matcalc.parse("A", A="matrix(3,3)")) == {}


def test_symbol_names_and_kinds():
    e = matcalc.parse("x' A x + b", A="matrix(n,n)")
    s = symbol_matrices(e, {"n": 2})
    assert s["b"] == sympy.Symbol("b", real=True)
    assert s["x"].shape == (2, 1) and str(s["x"][1]) == "x_1"
    assert s["A"].shape == (2, 2) and str(s["A"][0, 1]) == "A_0_1"
    assert all(sym.is_real for leaf in s.values() for sym in sympy.Matrix([leaf]).free_symbols)


def test_symmetric_symbols_share_entries():
    e = matcalc.parse("logdet(S)", S="symmetric(n)")
    s = symbol_matrices(e, {"n": 3}, differentials=True)
    S, dS = s["S"], s["dS"]
    for i in range(3):
        for j in range(3):
            assert S[i, j] is S[j, i] or S[i, j] == S[j, i]
            assert dS[i, j] == dS[j, i]
    assert len(S.free_symbols) == 6 and len(dS.free_symbols) == 6
    assert S[0, 1] != S[0, 2]
    explicit = to_explicit(e, {"n": 3}, s)
    # The shared entry carries both positions: d logdet / dS_0_1 = 2 inv(S)[0, 1].
    value = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    grad = numeric_value(sympy.diff(explicit, S[0, 1]), s, {"S": value})
    assert grad == pytest.approx(2 * np.linalg.inv(value)[0, 1])
    with pytest.raises(CheckError, match="symmetric"):
        numeric_value(explicit, s, {"S": value + np.triu(np.ones((3, 3)), 1)})


def test_differential_symbols():
    e = N.MatMul(N.Differential(M), N.Transpose(M))
    s = symbol_matrices(e, {"n": 2, "m": 3})
    assert set(s) == {"dM", "M"}
    assert str(s["dM"][1, 2]) == "dM_1_2"
    assert set(symbol_matrices(M, {"n": 2, "m": 3}, differentials=True)) == {"M", "dM"}


def test_explicit_gradient_matches_closed_form():
    # The verifier's use: differentiate the explicit value entry by entry.
    e = matcalc.parse("x' A x", A="matrix(n,n)")
    s = symbol_matrices(e, {"n": 3})
    f = to_explicit(e, {"n": 3}, s)
    grad = sympy.Matrix([f]).jacobian(s["x"]).T
    rng = np.random.default_rng(3)
    A, x = rng.normal(size=(3, 3)), rng.normal(size=3)
    np.testing.assert_allclose(numeric_value(grad, s, {"A": A, "x": x}), (A + A.T) @ x)


def test_piecewise_functions():
    v = sympy.Symbol("v_0", real=True)
    relu = to_explicit(N.Apply("relu", N.Symbol("v", (2, 1))), {})[0]
    step = to_explicit(N.Apply("step", N.Symbol("v", (2, 1))), {})[0]
    assert relu == sympy.Piecewise((v, v > 0), (0, True))
    assert step == sympy.Piecewise((1, v > 0), (0, True))


def test_numbers_stay_exact():
    assert to_explicit(matcalc.parse("0.1 + 1/3"), {}) == sympy.Rational(13, 30)
    assert to_explicit(N.Numel(M), {"n": 2, "m": 3}) == 6


def test_numeric_value_forms_and_errors():
    e = matcalc.parse("A x", A="matrix(n,m)")
    s = symbol_matrices(e, {"n": 2, "m": 3})
    explicit = to_explicit(e, {"n": 2, "m": 3}, s)
    A, x = np.ones((2, 3)), np.arange(3.0)
    assert numeric_value(explicit, s, {"A": A, "x": x}).shape == (2,)
    assert numeric_value(explicit.T, s, {"A": A, "x": x}).shape == (2,)
    assert numeric_value(s["A"], s, {"A": A}).shape == (2, 3)
    assert type(numeric_value(explicit[0], s, {"A": A, "x": x})) is float
    by_node = {N.Symbol("A", (n, m)): A, N.Symbol("x", (m, 1)): x.reshape(3, 1)}
    np.testing.assert_allclose(numeric_value(explicit, s, by_node), A @ x)
    with pytest.raises(UnknownNameError, match="x"):
        numeric_value(explicit, s, {"A": A})
    with pytest.raises(CheckError):
        numeric_value(explicit, s, {"A": A, "x": np.ones(4)})


def test_missing_size_and_wrong_symbol_shape():
    e = matcalc.parse("A x", A="matrix(n,m)")
    with pytest.raises(CheckError, match="sizes"):
        to_explicit(e, {"n": 2})
    with pytest.raises(CheckError, match="x"):
        to_explicit(e, {"n": 2, "m": 3}, symbol_matrices(e, {"n": 2, "m": 4}))
