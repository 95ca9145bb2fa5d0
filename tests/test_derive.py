"""derive(): every result checked numerically by central finite differences, in both layouts.

The rows follow the source texts: Parr and Howard's tables (element-wise operations, scalar expansion,
sums, dot products, the vector chain rule, the neuron and its MSE loss), the d2l chapter's examples, and
the Matrix Cookbook's rows for traces, determinants, inverses and norms. Textbook cases also have their
printed form asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import first, random_values, second

import matcalc
from matcalc import nodes as N
from matcalc.diff import derive, hessian
from matcalc.numeric import evaluate

# (expression, wrt, declarations, options for random values)
CASES = [
    # Parr & Howard: element-wise binary operations, with respect to either side
    ("w + x", "x", {}, {}), ("w + x", "w", {}, {}), ("w - x", "x", {}, {}), ("w - x", "w", {}, {}),
    ("w .* x", "x", {}, {}), ("w ⊗ x", "w", {}, {}), ("w ./ x", "x", {}, {"positive": "x"}),
    ("w ⊘ x", "w", {}, {"positive": "x"}),
    # scalar expansion, with respect to the vector and to the scalar
    ("x + z", "x", {"z": "scalar"}, {}), ("x + z", "z", {"z": "scalar"}, {}), ("x - z", "z", {"z": "scalar"}, {}),
    ("x * z", "x", {"z": "scalar"}, {}), ("x * z", "z", {"z": "scalar"}, {}),
    ("x / z", "x", {"z": "scalar"}, {"positive": "z"}), ("x / z", "z", {"z": "scalar"}, {"positive": "z"}),
    ("z ./ x", "x", {"z": "scalar"}, {"positive": "x"}),
    # sums, dot products, matrix-vector products
    ("sum(x)", "x", {}, {}), ("sum(exp(x))", "x", {}, {}), ("sum(w .* x)", "w", {}, {}),
    ("w·x + b", "w", {}, {}), ("w·x + b", "b", {}, {}), ("dot(w, x)", "x", {}, {}),
    ("A x", "x", {}, {}), ("x' A", "x", {}, {}), ("x' A x", "x", {}, {}), ("β' x", "x", {"β": "vector(n)"}, {}),
    ("x' x", "x", {}, {}), ("x' S x", "x", {"S": "symmetric(n)"}, {}),
    # scalar functions and rules
    ("3x^2 y", "x", {}, {}), ("3x^2 y", "y", {}, {}), ("exp(a x)", "a", {}, {}),
    ("sin(x^2) / x", "x", {}, {"positive": "x"}),
    ("sqrt(x' x)", "x", {}, {}), ("log(sum(exp(x)))", "x", {}, {}), ("logsumexp(x)", "x", {}, {}),
    ("norm(x)", "x", {}, {}), ("||x||^2", "x", {}, {}), ("norm1(x)", "x", {}, {}), ("mean(x .^ 2)", "x", {}, {}),
    # every element-wise function, through the chain rule
    ("exp(A x)", "x", {}, {}), ("log(x)", "x", {}, {"positive": "x"}), ("sin(A x)", "x", {}, {}),
    ("cos(x)", "x", {}, {}), ("tan(x / 4)", "x", {}, {}), ("arcsin(x / 4)", "x", {}, {}),
    ("arccos(x / 4)", "x", {}, {}), ("arctan(x)", "x", {}, {}), ("tanh(W x + b)", "x", {"b": "vector(m)"}, {}),
    ("tanh(W x + b)", "b", {"b": "vector(m)"}, {}), ("sigmoid(x)", "x", {}, {}), ("σ(w·x)", "w", {}, {}),
    ("relu(x)", "x", {}, {}), ("softplus(A x)", "x", {}, {}), ("sqrt(x)", "x", {}, {"positive": "x"}),
    ("abs(x)", "x", {}, {}), ("x .^ 3", "x", {}, {}), ("x .^ a", "a", {}, {"positive": "x"}),
    ("2 .^ x", "x", {}, {}), ("min(0, x)", "x", {}, {}), ("max(x, 0)", "x", {}, {}),
    # the functions of current networks (issue #15)
    ("erf(A x)", "x", {}, {}), ("gelu(W x + b)", "x", {"b": "vector(m)"}, {}), ("sum(silu(X w))", "w", {}, {}),
    ("swish(x)", "x", {}, {}), ("elu(A x)", "x", {}, {}), ("sinh(x) .* cosh(x)", "x", {}, {}),
    ("log1p(x .^ 2)", "x", {}, {}), ("expm1(A x)", "x", {}, {}), ("leaky_relu(W x, a)", "x", {}, {}),
    ("leaky_relu(W x, a)", "a", {}, {}), ("clip(x, lo, hi)", "x", {}, {}), ("sum(clip(x, lo, hi))", "hi", {}, {}),
    # vector functions: softmax, literals
    ("softmax(z)", "z", {}, {}), ("softmax(W x)", "x", {}, {}), ("[ln(x^2), sin(3x)]", "x", {}, {"positive": "x"}),
    ("[x y, x + y]", "y", {}, {}),
    # the neuron and its loss (X is N x d)
    ("max(0, w·x + b)", "w", {}, {}), ("max(0, w·x + b)", "b", {}, {}),
    ("(1/N) sum((y - max(0, X w + b)).^2)", "w", {"N": "scalar"}, {}),
    ("(1/N) sum((y - max(0, X w + b)).^2)", "b", {"N": "scalar"}, {}),
    # vector chain rule through layers
    ("sum(tanh(W2 tanh(W1 x)))", "x", {}, {}), ("W2 tanh(W1 x)", "x", {}, {}),
    # matrices: traces, determinants, inverses, norms (Matrix Cookbook)
    ("tr(A X)", "X", {}, {}), ("tr(X A)", "X", {}, {}), ("tr(X' A X)", "X", {}, {}), ("tr(X)", "X", {}, {}),
    ("tr(A X B)", "X", {}, {}), ("tr(X' X)", "X", {}, {}), ("tr(X X)", "X", {}, {}), ("tr(inv(X))", "X", {}, {}),
    ("tr(A inv(X) B)", "X", {}, {}), ("det(X)", "X", {}, {}), ("logdet(X)", "X", {}, {}),
    ("det(A X B)", "X", {"A": "matrix(n,n)", "X": "matrix(n,n)", "B": "matrix(n,n)"}, {}),
    ("a' inv(X) b", "X", {"a": "vector(n)", "b": "vector(n)"}, {}),
    ("a' X b", "X", {"a": "vector(m)", "b": "vector(n)"}, {}),
    ("a' X' b", "X", {"a": "vector(n)", "b": "vector(m)"}, {}),
    ("a' X' X b", "X", {"a": "vector(n)", "b": "vector(n)"}, {}),
    ("||X - U V||_F^2", "V", {}, {}), ("||X - U V||_F^2", "U", {}, {}), ("norm(X)", "X", {}, {}),
    ("norm1(X)", "X", {}, {}), ("sum(X .^ 2)", "X", {}, {}), ("sum(exp(X))", "X", {}, {}),
    ("tr(X^2)", "X", {}, {}), ("tr(X^3)", "X", {}, {}), ("x' X x", "X", {}, {}),
    ("logdet(S)", "S", {"S": "symmetric(n)"}, {"spd": "S"}), ("tr(A S)", "S", {"S": "symmetric(n)"}, {}),
    ("x' inv(S) x", "S", {"S": "symmetric(n)"}, {"spd": "S"}),
    # losses of machine learning
    ("||X w - y||^2 + λ * ||w||^2", "w", {}, {}), ("||X w - y||^2 + λ ||w||^2", "w", {}, {}),
    ("sum(log(1 + exp(-y .* (X w))))", "w", {}, {}), ("sum(softplus(-y .* (X w)))", "w", {}, {}),
    ("-sum(y .* log(σ(X w)) + (1 - y) .* log(1 - σ(X w)))", "w", {}, {}),
    ("tr(A diag(x) B)", "x", {}, {}), ("kron(a, y)", "y", {"a": "vector(m)"}, {}),
    ("kron(y, a)", "y", {"a": "vector(m)"}, {}), ("sum(kron(a, y.^3))", "y", {"a": "vector(m)"}, {}),
    ("logdet(S + diag(x))", "x", {"S": "symmetric(n)"}, {"spd": "S"}),
    ("-y' log(softmax(W x))", "W", {}, {}), ("-y' log(softmax(W x))", "x", {}, {}),
    ("sum(tanh(W x + b))", "W", {"b": "vector(m)"}, {}),
    ("sum((W2 relu(W1 x) - y) .^ 2)", "W1", {}, {}), ("sum((W2 relu(W1 x) - y) .^ 2)", "W2", {}, {}),
    ("||X - U V||_F^2 + λ * (||U||_F^2 + ||V||_F^2)", "U", {}, {}),
]


def _ids(case):
    return f"{case[0]} d/d{case[1]}"


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_derivative_matches_finite_differences(case, layout):
    text, wrt, decls, opts = case
    d = derive(text, wrt, layout=layout, **decls)
    for seed in (1, 2):
        values = random_values(d.function, seed=seed, positive=opts.get("positive", ()), spd=opts.get("spd", ()))
        got = np.asarray(d.evaluate(**values), dtype=float)
        want = np.asarray(first(d.function, d.variable, values, layout), dtype=float)
        assert got.shape == want.shape, (str(d), got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{text} d/d{wrt}: {d}")


# the printed form a textbook gives, in Unicode (numerator layout unless stated)
PRINTED = [
    ("sum(x)", "x", {}, "numerator", "𝟙ᵀ"),
    ("w·x + b", "w", {}, "numerator", "xᵀ"),
    ("w·x + b", "b", {}, "numerator", "1"),
    ("sum(w .* x)", "w", {}, "numerator", "xᵀ"),
    ("w .* x", "x", {}, "numerator", "diag(w)"),
    ("w + x", "x", {}, "numerator", "I"),
    ("w - x", "x", {}, "numerator", "-I"),
    ("w ./ x", "w", {}, "numerator", "diag(1 ⊘ x)"),
    ("x + z", "z", {"z": "scalar"}, "numerator", "𝟙"),
    ("x * z", "x", {"z": "scalar"}, "numerator", "z I"),
    ("[ln(x^2), sin(3x)]", "x", {}, "numerator", "[2 / x, 3 cos(3 x)]"),
    ("max(0, w·x + b)", "w", {}, "numerator", "step(w · x + b) xᵀ"),
    ("max(0, w·x + b)", "b", {}, "numerator", "step(w · x + b)"),
    ("β' x", "x", {"β": "vector(n)"}, "denominator", "β"),
    ("sum(gelu(X w))", "w", {}, "denominator",  # Xᵀ (Φ(X w) + (X w) ⊙ φ(X w))
     "Xᵀ (0.5 erf((X w) / sqrt(2)) + ((X w) ⊙ exp(-0.5 (X w)⊙²)) / sqrt(2 π) + 0.5)"),
    ("sum(silu(X w))", "w", {}, "denominator", "Xᵀ (σ(X w) ⊙ (X w - (X w) ⊙ σ(X w) + 1))"),
    ("sum(erf(x))", "x", {}, "denominator", "(2 / sqrt(π)) exp(-x⊙²)"),
    ("elu(x)", "x", {}, "numerator", "diag(exp(-relu(-x)))"),
    ("leaky_relu(W x, a)", "a", {}, "numerator", "-relu(-(W x))"),
    ("clip(x, -1, 1)", "x", {}, "numerator", "diag(step(x + 1) - step(x - 1))"),
    ("sum(log1p(exp(x)))", "x", {}, "denominator", "σ(x)"),
    ("x' A x", "x", {}, "denominator", "(A + Aᵀ) x"),
    ("x' A x", "x", {}, "numerator", "xᵀ (A + Aᵀ)"),
    ("tr(A X)", "X", {}, "denominator", "Aᵀ"),
    ("tr(X' A X)", "X", {}, "denominator", "(A + Aᵀ) X"),
    ("det(X)", "X", {}, "denominator", "det(X) X⁻ᵀ"),
    ("logdet(X)", "X", {}, "denominator", "X⁻ᵀ"),
    ("a' inv(X) b", "X", {"a": "vector(n)", "b": "vector(n)"}, "denominator", "-(X⁻ᵀ a bᵀ X⁻ᵀ)"),
    ("||X - U V||_F^2", "V", {}, "denominator", "-2 Uᵀ (X - U V)"),
    ("softmax(z)", "z", {}, "numerator", "diag(softmax(z)) - softmax(z) softmax(z)ᵀ"),
    ("logsumexp(z)", "z", {}, "denominator", "softmax(z)"),
    ("norm(x)", "x", {}, "denominator", "x / ‖x‖"),
    ("sum(softplus(-y .* (X w)))", "w", {}, "denominator", "-(Xᵀ (σ(-(y ⊙ (X w))) ⊙ y))"),
    ("-sum(y .* log(σ(X w)) + (1 - y) .* log(1 - σ(X w)))", "w", {}, "denominator", "Xᵀ (σ(X w) - y)"),
    ("-y*log(σ(w·x)) - (1-y)*log(1-σ(w·x))", "w", {"y": "scalar"}, "numerator", "(σ(w · x) - y) xᵀ"),
    ("(1/2) x' Q x - b' x", "x", {"Q": "symmetric(n)", "b": "vector(n)"}, "denominator", "Q x - b"),
    ("x' A x + b' x + c", "x", {"b": "vector(n)"}, "denominator", "(A + Aᵀ) x + b"),
    ("-sum(y .* log(σ(X w)) + (1 - y) .* log(1 - σ(X w))) / N", "w", {"N": "scalar"}, "denominator",
     "(Xᵀ (σ(X w) - y)) / N"),
    ("tanh(x)", "x", {}, "numerator", "diag(1 - tanh(x)⊙²)"),
    ("-y' log(softmax(W x))", "W", {}, "denominator", "(sum(y) softmax(W x) - y) xᵀ"),
    ("tanh(W x + b)", "x", {"b": "vector(m)"}, "numerator", "diag(1 - tanh(W x + b)⊙²) W"),
]


@pytest.mark.parametrize("text,wrt,decls,layout,printed", PRINTED, ids=[f"{p[0]} d/d{p[1]}" for p in PRINTED])
def test_textbook_printed_form(text, wrt, decls, layout, printed):
    d = derive(text, wrt, layout=layout, **decls)
    assert matcalc.to_unicode(d.expr) == printed
    values = random_values(d.function, seed=3)
    np.testing.assert_allclose(np.asarray(d.evaluate(**values), float),
                               np.asarray(first(d.function, d.variable, values, layout), float),
                               rtol=1e-5, atol=1e-6)


def test_gradient_of_3x2y_and_its_jacobian():
    ds = derive("3x^2 y", ["x", "y"])
    assert [matcalc.to_unicode(d.expr) for d in ds] == ["6 x y", "3 x²"]
    assert ds.evaluate(x=2.0, y=5.0) == [60.0, 12.0]
    np.testing.assert_allclose(ds.evaluate_jacobian(x=2.0, y=5.0), [60.0, 12.0])
    # the Jacobian of [3x²y, 2x + y⁸] with respect to [x, y]
    J = derive("[3x^2 y, 2x + y^8]", ["x", "y"])
    np.testing.assert_allclose(J.evaluate_jacobian(x=2.0, y=1.5), [[6 * 2 * 1.5, 3 * 4], [2, 8 * 1.5**7]])


def test_d2l_four_level_chain():
    # d2l 18.4.20: f = (u + v)², u = (a + b)², v = (a - b)², a = (w + x + y + z)², b = (w + x - y - z)²
    a, b = "(w + x + y + z)^2", "(w + x - y - z)^2"
    text = f"(({a} + {b})^2 + ({a} - {b})^2)^2"
    d = derive(text, "w", w="scalar", x="scalar", y="scalar", z="scalar")
    assert d.evaluate(w=-1.0, x=0.0, y=-2.0, z=1.0) == pytest.approx(-4096.0)


def test_hessians():
    cases = [
        ("x' A x", {}, "A + Aᵀ"),
        ("sum(exp(A x))", {}, "Aᵀ diag(exp(A x)) A"),
        ("||A x - b||^2", {"b": "vector(m)"}, None),
        ("logsumexp(x)", {}, None),
        ("sum(log(1 + exp(-y .* (X w))))", {}, None),
        ("-sum(y .* log(σ(X w)) + (1 - y) .* log(1 - σ(X w)))", {}, "Xᵀ diag(σ(X w) ⊙ (1 - σ(X w))) X"),
        ("logsumexp(x)", {}, "diag(softmax(x)) - softmax(x) softmax(x)ᵀ"),
        ("||A x - b||^2", {"b": "vector(m)"}, "2 Aᵀ A"),
        ("logdet(S + diag(x))", {"S": "symmetric(n)"}, "-((S + diag(x))⁻¹)⊙²"),
        ("-y' log(softmax(x))", {}, "sum(y) (diag(softmax(x)) - softmax(x) softmax(x)ᵀ)"),
        ("sum(tanh(W x))", {}, None),
    ]
    for text, decls, printed in cases:
        syms = [s for s in N.symbols_of(matcalc.parse(text, **decls)) if s.name in ("x", "w")]
        h = hessian(text, syms[0].name, **decls)
        if printed:
            assert matcalc.to_unicode(h.expr) == printed
        values = random_values(h.function, seed=4, spd=("S",))
        np.testing.assert_allclose(np.asarray(h.evaluate(**values), float),
                                   second(h.function, h.variable, values), rtol=1e-4, atol=1e-5)


def test_wrt_list_and_zero_derivative():
    ds = derive("max(0, w·x + b)", ["w", "b"])
    assert len(ds) == 2 and [d.variable.name for d in ds] == ["w", "b"]
    d = derive("A y + x", "x")  # d/dx is I, and a variable that does not occur is an error
    assert matcalc.to_unicode(d.expr) == "I"
    with pytest.raises(matcalc.UnknownNameError):
        derive("A x", "z")


def test_no_matrix_form_is_reported_not_guessed():
    # a vector of expressions in a vector: the gradients stacked as rows (issue #16; it used to be refused)
    d = derive("[dot(x, y), sum(x)]", "x")
    xv, yv = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    assert np.allclose(d.evaluate(x=xv, y=yv), np.vstack([yv, np.ones(3)]))
    # its second derivative has three axes: offered as a tensor (linear map and index form), not refused
    t = derive("[dot(x, y), sum(x)]", "x", order=2)
    assert t.index is not None and np.allclose(t.evaluate(x=xv, y=yv), 0)
    # a vector with respect to a matrix is a 3-way tensor, given as a linear map and index form instead
    assert "δ_ik x_l" in str(derive("W x", "W"))


def test_deep_network_grows_linearly():
    sizes = []
    for layers in (2, 4, 8, 16):
        text = "x"
        for i in range(1, layers + 1):
            text = f"tanh(W{i} {text})"
        d = derive(f"sum({text})", "x", layout="denominator")
        sizes.append(N.count_nodes(d.expr))
    growth = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    # each doubling adds a number of nodes proportional to the layers added: linear, not quadratic
    assert growth[2] <= 2.2 * growth[1] <= 4.5 * growth[0]


def test_softmax_cross_entropy_notes_the_probability_form():
    d = derive("-y' log(softmax(W x))", "W", layout="denominator")
    assert d.notes == ["when sum(y) = 1 (a one-hot or probability vector y): (softmax(W x) - y) xᵀ"]
    values = random_values(d.function, seed=5)
    values["y"] = np.abs(values["y"]) / np.abs(values["y"]).sum()
    s = np.exp(values["W"] @ values["x"])
    s /= s.sum()
    np.testing.assert_allclose(d.evaluate(**values), np.outer(s - values["y"], values["x"]), rtol=1e-10)


def test_mixed_second_derivatives():
    blocks = hessian("x' A y + sum(exp(x))", ["x", "y"])
    forms = [[matcalc.to_unicode(b.expr) for b in row] for row in blocks]
    assert forms == [["diag(exp(x))", "A"], ["Aᵀ", "0"]]
    values = random_values(blocks[0][0].function, seed=8)
    f = blocks[0][0].function
    n, m = len(values["x"]), len(values["y"])
    full = np.block([[np.asarray(b.evaluate(**values), float).reshape(n if i == 0 else m, n if j == 0 else m)
                      for j, b in enumerate(row)] for i, row in enumerate(blocks)])
    # compare with the Hessian of f in the stacked variable (x, y)
    h = 1e-4
    num = np.zeros((n + m, n + m))
    base = np.concatenate([values["x"], values["y"]])

    def fv(z):
        return float(evaluate(f, {**values, "x": z[:n], "y": z[n:]}))

    for i in range(n + m):
        for j in range(n + m):
            ei, ej = np.eye(n + m)[i] * h, np.eye(n + m)[j] * h
            num[i, j] = (fv(base + ei + ej) - fv(base + ei - ej) - fv(base - ei + ej)
                         + fv(base - ei - ej)) / (4 * h * h)
    np.testing.assert_allclose(full, num, rtol=1e-4, atol=1e-5)
