"""At least 40 textbook results, printed as the texts print them and checked numerically.

The rows: the cases of issue #18 (the table that showed misreadable or unsimplified forms), Parr and
Howard's, the Matrix Cookbook's, the usual ML losses and the layers of a network. Each asserts the printed
Unicode form (with named parts where the result repeats a subexpression) and compares the value with
central finite differences; docs/textbook.md records each printed length before and after issue #18.
"""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import first, random_values, second

from matcalc.diff import derive

D = "denominator"

#: (label, expression, variable, declarations, layout, order, printed Unicode form)
TEXTBOOK = [
    ('logistic loss', 'sum(log(1 + exp(-y .* (X w))))', 'w', {}, D, 1,
     '-(Xᵀ (y ⊙ σ(-(y ⊙ (X w)))))'),
    ('inverse determinant', 'det(X)^-1', 'X', {}, D, 1,
     '-(X⁻ᵀ / det(X))'),
    ('attention', "V' softmax(K q / sqrt(d))", 'q', {}, 'numerator', 1,
     '(Vᵀ (diag(s) - s sᵀ) K) / sqrt(d) where s = softmax((K q) / sqrt(d))'),
    ('Gaussian NLL, covariance', "0.5 logdet(S) + 0.5 (x - m)' inv(S) (x - m)", 'S', {'S': 'symmetric(n)'}, D, 1,
     '0.5 S⁻¹ - 0.5 S⁻¹ (x - m) (x - m)ᵀ S⁻¹'),
    ('Mahalanobis, S', "(x - y)' inv(S) (x - y)", 'S', {}, D, 1,
     '-(S⁻ᵀ (x - y) (x - y)ᵀ S⁻ᵀ)'),
    ('pseudo-Huber', 'sum(sqrt(1 + (X w - y).^2) - 1)', 'w', {}, D, 1,
     'Xᵀ ((X w - y) ⊘ sqrt((X w - y)⊙² + 1))'),
    ('d2l layered function',
     '(((w + x + y + z)^2 + (w + x - y - z)^2)^2 + ((w + x + y + z)^2 - (w + x - y - z)^2)^2)^2', 'w',
     {'w': 'scalar', 'x': 'scalar', 'y': 'scalar', 'z': 'scalar'}, D, 1,
     '2 ((u₁ + u₂)² + (u₁ - u₂)²) (2 (u₁ + u₂) (4 w + 4 x) + 2 (u₁ - u₂) (4 y + 4 z))'
     ' where u₁ = (w + x + y + z)², u₂ = (w + x - y - z)²'),
    ('network bias gradient', "-(y' log(σ(tanh(X W) v + c)) + (1 - y)' log(1 - σ(tanh(X W) v + c))) / N",
     'c', {'N': 'scalar'}, D, 1,
     'sum(σ(tanh(X W) v + c) - y) / N'),
    ('MSE over a batch', 'mean((X w - y).^2)', 'w', {}, D, 1,
     '(2 / n) Xᵀ (X w - y)'),
    ('cosine similarity', 'dot(x, y) / (norm(x) norm(y))', 'x', {}, D, 1,
     'y / (‖x‖ ‖y‖) - ((x · y) x) / (‖x‖³ ‖y‖)'),
    ('layer norm', '(x - mean(x)) / sqrt(mean((x - mean(x)).^2) + eps)', 'x', {}, 'numerator', 1,
     '(I - (𝟙 𝟙ᵀ) / n) / σ - (u uᵀ) / (n σ³) where u = x - mean(x), σ = sqrt(mean(u⊙²) + eps)'),
    ('P&H element-wise product', 'w .* x', 'x', {}, 'numerator', 1,
     'diag(w)'),
    ('P&H vector sum', 'sum(x)', 'x', {}, D, 1,
     '𝟙'),
    ('P&H scalar expansion', 'x + z', 'x', {'z': 'scalar'}, 'numerator', 1,
     'I'),
    ('P&H dot product', "w' x", 'w', {}, D, 1,
     'x'),
    ('P&H neuron', "relu(w' x + b)", 'w', {}, D, 1,
     'step(wᵀ x + b) x'),
    ('P&H neuron loss', "(relu(w' x + b) - y)^2", 'w', {'y': 'scalar'}, D, 1,
     '2 step(wᵀ x + b) (relu(wᵀ x + b) - y) x'),
    ('P&H batch MSE of a neuron', 'mean((relu(X w + b) - y).^2)', 'w', {'b': 'scalar'}, D, 1,
     '(2 / n) Xᵀ ((relu(X w + b) - y) ⊙ step(X w + b))'),
    ('P&H sum of squares', 'sum(x .^ 2)', 'x', {}, D, 1,
     '2 x'),
    ("Cookbook a'x", "a' x", 'x', {'a': 'vector(n)'}, D, 1,
     'a'),
    ("Cookbook x'Ax", "x' A x", 'x', {}, D, 1,
     '(A + Aᵀ) x'),
    ("Cookbook x'Sx, S symmetric", "x' S x", 'x', {'S': 'symmetric(n)'}, D, 1,
     '2 S x'),
    ('Cookbook tr(AX)', 'tr(A X)', 'X', {}, D, 1,
     'Aᵀ'),
    ("Cookbook tr(X'AX)", "tr(X' A X)", 'X', {}, D, 1,
     '(A + Aᵀ) X'),
    ("Cookbook tr(XAX')", "tr(X A X')", 'X', {}, D, 1,
     'X (A + Aᵀ)'),
    ('Cookbook det', 'det(X)', 'X', {}, D, 1,
     'det(X) X⁻ᵀ'),
    ('Cookbook logdet', 'logdet(X)', 'X', {}, D, 1,
     'X⁻ᵀ'),
    ("Cookbook a'Xb", "a' X b", 'X', {'a': 'vector(m)', 'b': 'vector(n)'}, D, 1,
     'a bᵀ'),
    ("Cookbook a'X'b", "a' X' b", 'X', {'a': 'vector(m)', 'b': 'vector(n)'}, D, 1,
     'b aᵀ'),
    ("Cookbook a'X^-1 b", "a' inv(X) b", 'X', {'a': 'vector(n)', 'b': 'vector(n)'}, D, 1,
     '-(X⁻ᵀ a bᵀ X⁻ᵀ)'),
    ('Cookbook tr(X^-1 A)', 'tr(inv(X) A)', 'X', {}, D, 1,
     '-(X⁻ᵀ Aᵀ X⁻ᵀ)'),
    ('Cookbook Frobenius norm', 'norm(X)^2', 'X', {}, D, 1,
     '2 X'),
    ('Cookbook norm', 'norm(x)', 'x', {}, D, 1,
     'x / ‖x‖'),
    ("Cookbook (Ax+b)'(Ax+b)", "(A x + b)' (A x + b)", 'x', {}, D, 1,
     '2 Aᵀ (A x + b)'),
    ('Cookbook logdet symmetric', 'logdet(S)', 'S', {'S': 'symmetric(n)'}, D, 1,
     'S⁻¹'),
    ('Cookbook tr(AS) symmetric', 'tr(A S)', 'S', {'S': 'symmetric(n)'}, D, 1,
     '0.5 (A + Aᵀ)'),
    ("Cookbook x'Sx wrt symmetric S", "x' S x", 'S', {'S': 'symmetric(n)'}, D, 1,
     'x xᵀ'),
    ('least squares', 'norm(X w - y)^2', 'w', {}, D, 1,
     '2 Xᵀ (X w - y)'),
    ('ridge', 'norm(X w - y)^2 + lam norm(w)^2', 'w', {'lam': 'scalar'}, D, 1,
     '2 Xᵀ (X w - y) + 2 lam w'),
    ('logistic loss, mean', "-(y' log(σ(X w)) + (1 - y)' log(1 - σ(X w))) / N", 'w', {'N': 'scalar'}, D, 1,
     '(Xᵀ (σ(X w) - y)) / N'),
    ('softmax cross-entropy', "-y' log(softmax(W x))", 'W', {}, D, 1,
     '(sum(y) softmax(W x) - y) xᵀ'),
    ('log-sum-exp', 'logsumexp(x)', 'x', {}, D, 1,
     'softmax(x)'),
    ('softplus', 'sum(softplus(x))', 'x', {}, D, 1,
     'σ(x)'),
    ('hinge', 'sum(relu(1 - y .* (X w)))', 'w', {}, D, 1,
     '-(Xᵀ (step(1 - y ⊙ (X w)) ⊙ y))'),
    ('mean absolute error', 'sum(abs(X w - y))', 'w', {}, D, 1,
     'Xᵀ sign(X w - y)'),
    ('Poisson', 'sum(exp(X w) - y .* (X w))', 'w', {}, D, 1,
     'Xᵀ (exp(X w) - y)'),
    ('L1', 'norm1(w)', 'w', {}, D, 1,
     'sign(w)'),
    ('logistic Hessian', 'sum(log(1 + exp(X w)) - y .* (X w))', 'w', {}, D, 2,
     'Xᵀ diag(σ(X w) ⊙ (1 - σ(X w))) X'),
    ('quadratic Hessian', "x' A x", 'x', {}, D, 2,
     'A + Aᵀ'),
    ('softmax Jacobian', 'softmax(x)', 'x', {}, 'numerator', 1,
     'diag(s) - s sᵀ where s = softmax(x)'),
    ('dense layer, bias', 'tanh(W x + b)', 'b', {}, 'numerator', 1,
     '1 - tanh(W x + b)⊙²'),
    ('dense layer, input', 'sigmoid(W x + b)', 'x', {}, 'numerator', 1,
     'diag(σ(W x + b) ⊙ (1 - σ(W x + b))) W'),
    ('ReLU layer, weights', 'sum(relu(W x))', 'W', {}, D, 1,
     'step(W x) xᵀ'),
    ('three-layer network', 'sum(tanh(W_3 tanh(W_2 tanh(W_1 x))))', 'W_1', {}, D, 1,
     '((1 - h₁⊙²) ⊙ (W_2ᵀ ((1 - h₂⊙²) ⊙ (W_3ᵀ (1 - tanh(W_3 h₂)⊙²))))) xᵀ where h₁ = tanh(W_1 x), h₂ = tanh(W_2 h₁)'),
    ('Gaussian NLL, mean', "0.5 (x - m)' inv(S) (x - m)", 'm', {'S': 'symmetric(n)'}, D, 1,
     'S⁻¹ (m - x)'),
    ('two-layer regression', 'norm(W_2 tanh(W_1 x) - y)^2', 'W_1', {}, D, 1,
     '2 ((1 - tanh(W_1 x)⊙²) ⊙ (W_2ᵀ (W_2 tanh(W_1 x) - y))) xᵀ'),
]

#: variables that need positive values (a log, a square root, a determinant)
POSITIVE = ("eps", "N", "d")
SPD = ("S",)


def test_the_table_is_large_enough():
    assert len(TEXTBOOK) >= 40


@pytest.mark.parametrize("label,text,wrt,decls,layout,order,printed", TEXTBOOK, ids=[r[0] for r in TEXTBOOK])
def test_textbook_result(label, text, wrt, decls, layout, order, printed):
    d = derive(text, wrt, layout=layout, order=order, **decls)
    assert d.unicode() == printed
    # no multiplication by I, no "⋅ -", and the whole expression is still .expr
    assert " I " not in f" {printed} ".replace("(I ", " ").replace(" I)", " ") or printed.strip() == "I"
    assert "⋅ -" not in printed
    for seed in (3, 4):
        values = random_values(d.function, seed=seed, positive=POSITIVE, spd=SPD)
        got = np.asarray(d.evaluate(**values), float)
        want = first(d.function, d.variable, values, layout) if order == 1 else second(d.function, d.variable, values)
        np.testing.assert_allclose(got, np.asarray(want, float), rtol=1e-4, atol=1e-5)


def test_named_parts_can_be_turned_off():
    d = derive("V' softmax(K q / sqrt(d))", "q", named=False)
    assert "where" not in d.unicode() and d.unicode().count("softmax") == 3
    assert "where s = softmax" in d.unicode(named=True) and "where s = softmax" in d.latex(named=True) or \
        "s = \\operatorname{softmax}" in d.latex(named=True)
    named = derive("V' softmax(K q / sqrt(d))", "q")
    assert named.expr is d.expr  # .expr is the whole expression either way


# --- named parts ------------------------------------------------------------------------------------
ATTENTION = "V' softmax(K q / sqrt(d))"


def test_named_parts_in_every_printer_and_the_steps():
    d = derive(ATTENTION, "q")
    assert d.unicode() == "(Vᵀ (diag(s) - s sᵀ) K) / sqrt(d) where s = softmax((K q) / sqrt(d))"
    assert d.text() == "(V' (diag(s) - s s') K) / sqrt(d) where s = softmax((K q) / sqrt(d))"
    assert d.latex().endswith("\\quad\\text{where } s = \\operatorname{softmax}\\left(\\frac{\\mathbf{K} "
                              "\\mathbf{q}}{\\sqrt{d}}\\right)")
    assert "where s = softmax" in str(d.steps)
    # str() and .expr stay whole, and str() parses back
    from matcalc import parse

    formula = str(d).split("\n")[0]  # the second line says what was assumed about each name
    assert "where" not in formula and parse(formula) is d.expr


def test_named_parts_off_in_the_cli(capsys):
    from matcalc.cli import main

    assert main(["derive", ATTENTION, "--wrt", "q", "--format", "unicode"]) == 0
    assert "where s = softmax" in capsys.readouterr().out
    assert main(["derive", ATTENTION, "--wrt", "q", "--format", "unicode", "--no-names"]) == 0
    formula = capsys.readouterr().out.split("\n")[0]  # the next line says what was assumed
    assert "where" not in formula and formula.count("softmax") == 3


def network(L: int) -> str:
    inner = "x"
    for i in range(1, L + 1):
        inner = f"tanh(W_{i} {inner})"
    return f"sum({inner})"


def test_printed_length_grows_linearly_with_depth():
    named, whole = {}, {}
    for L in (8, 16, 32):
        d = derive(network(L), "W_1", layout=D)
        named[L], whole[L] = len(d.unicode()), len(d.unicode(named=False))
    assert named[32] / named[16] < 2.3 and named[16] / named[8] < 2.3  # linear (subscripts gain a digit)
    assert whole[32] / whole[16] > 3  # printing the unshared tree grows like L²
    d = derive(network(3), "W_1", layout=D)
    values = random_values(d.function, seed=5)
    np.testing.assert_allclose(np.asarray(d.evaluate(**values), float),
                               np.asarray(first(d.function, d.variable, values, D), float), rtol=1e-5, atol=1e-6)


def test_a_name_part_never_takes_a_variable_name():
    d = derive("sum(tanh(W_3 tanh(W_2 tanh(h1 .* x))))", "x", h1="vector(n)")
    assert "h1_ = tanh(h1 .* x)" in d.text()


def test_the_printers_name_the_same_parts():
    """Which parts are named is decided on the Unicode text, so LaTeX (longer) names no more than it."""
    d = derive("dot(x, y) / (norm(x) norm(y))", "x", layout=D)
    assert "where" not in d.unicode() and "where" not in d.latex() and "where" not in d.text()
    d = derive("(x - mean(x)) / sqrt(mean((x - mean(x)).^2) + eps)", "x")
    assert d.latex().endswith("\\quad\\text{where } u = \\mathbf{x} - \\operatorname{mean}\\left(\\mathbf{x}\\right), "
                              "\\sigma = \\sqrt{\\operatorname{mean}\\left(u^{\\circ 2}\\right) + \\mathrm{eps}}")
    assert d.text().endswith(" where u = x - mean(x), sigma = sqrt(mean(u.^2) + eps)")
