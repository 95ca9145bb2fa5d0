"""Derivation steps: intermediate variables, partials with their rules, the chain, the result."""

from __future__ import annotations

import numpy as np
from finite_differences import first, random_values

import matcalc


def test_parr_howard_sum_of_products_steps():
    d = matcalc.derive("sum(w .* x)", "w")
    text = str(d.steps)
    assert "u1 = w ⊙ x" in text and "y = sum(u1)" in text
    assert "∂u1/∂w = diag(x)" in text and "∂y/∂u1 = 𝟙ᵀ" in text
    assert "∂y/∂w = ∂y/∂u1 ∂u1/∂w" in text
    assert text.rstrip().endswith("= xᵀ")
    values = random_values(d.function, seed=0)
    np.testing.assert_allclose(d.evaluate(**values), first(d.function, d.variable, values))


def test_neuron_steps_name_each_rule():
    steps = matcalc.derive("max(0, w·x + b)", "w").steps
    kinds = [s.kind for s in steps]
    assert kinds[0] == "define" and kinds[-1] == "result" and "chain" in kinds
    rules = {s.rule for s in steps if s.kind == "partial"}
    assert {"dot product", "sum rule", "element-wise function relu"} <= rules
    assert "step(w · x + b) xᵀ" in steps.items[-1].text


def test_matrix_intermediates_are_given_as_differentials():
    steps = matcalc.derive("||X - U V||_F^2", "V", layout="denominator").steps
    assert any(s.text == "du1 = U dV" for s in steps)
    assert "-2 Uᵀ (X - U V)" in str(steps)
    assert steps._repr_markdown_().startswith("**")


def test_steps_with_a_zero_partial():
    steps = str(matcalc.derive("sign(diag(x + a b) / (a^2 + 1))^2", "x").steps)
    assert "= 0" in steps
