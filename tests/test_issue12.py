"""Regression tests of issue #12 ("Never silently wrong"): every reproducer of the issue.

Generated code that dropped an identity, tensors w.r.t. a symmetric matrix whose code and printed forms
did not follow the symmetric convention, check_claim accepting wrong claims, literal division by zero
folded away, mixed Hessian blocks that failed their check. (Thread safety: tests/test_threads.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from codegen_targets import TARGETS, differences, run_code
from finite_differences import random_values

import matcalc
from matcalc import check_claim, derive, hessian
from matcalc import nodes as N
from matcalc.verify import check_derivative

# --- 1. generated code equals the derivative ------------------------------------------------------------------
CODE_CASES = [
    ("x (x' x)", "x", {}, 1, None),
    ("(x' x)^2", "x", {}, 2, None),
    ("y' outer(y, x)", "x", {}, 1, None),
    ("x (x' x) + A x", "x", {}, 1, None),
    ("sum(x) (x' x)", "x", {}, 2, None),
    ("x' x (a x' y)", "x", {}, 2, None),
    ("S x", "S", {"S": "symmetric(n)"}, 1, None),
    ("S A S", "S", {"S": "symmetric(n)"}, 1, None),
    ("inv(S) x", "S", {"S": "symmetric(n)"}, 1, None),
    ("x' S S x", "S", {"S": "symmetric(n)"}, 2, None),
    # found by the long run (seeds 45, 46): torch.logsumexp(u ** 0.5.reshape(-1)) reshaped the exponent
    ("logsumexp(logsumexp((y.^2 + 1).^0.5) sqrt(exp(y + x.^3)))", "x", {}, 1, None),
    ("logsumexp(x.^2) + logsumexp(x + y)", "x", {}, 2, None),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("text,wrt,decls,order,_", CODE_CASES, ids=[c[0] + " " + c[1] for c in CODE_CASES])
def test_generated_code_equals_evaluate(text, wrt, decls, order, _, target):
    d = derive(text, wrt, order=order, **decls)
    values = random_values(d.function, seed=3)
    if "S" in values:
        values["S"] = values["S"] + values["S"].T + 4 * np.eye(len(values["S"]))
    assert differences(run_code(d, target, values), d.evaluate(**values)) == []


def test_the_issues_values():
    d = derive("x (x' x)", "x")
    x = np.array([1.0, 2, 3])
    want = np.array([[16.0, 4, 6], [4, 22, 12], [6, 12, 32]])  # (x'x) I + 2 x x'
    np.testing.assert_allclose(d.evaluate(x=x), want)
    for target in TARGETS:
        np.testing.assert_allclose(run_code(d, target, {"x": x}), want)
    h = hessian("(x' x)^2", "x")
    for target in TARGETS:  # 4 (x'x) I + 8 x x'
        np.testing.assert_allclose(run_code(h, target, {"x": x}), 4 * 14 * np.eye(3) + 8 * np.outer(x, x))
    d = derive("y' outer(y, x)", "x")
    for target in TARGETS:  # (y'y) I, an n x n matrix
        np.testing.assert_allclose(run_code(d, target, {"y": x, "x": x[::-1].copy()}), 14 * np.eye(3))


def _symmetric_fd(text, S, x, h=1e-6):
    """T[i, k, l]: the derivative of text along (E_kl + E_lk)/2, by central differences."""
    n = len(S)
    T = np.zeros((n, n, n))
    for k in range(n):
        for m in range(n):
            E = np.zeros((n, n))
            E[k, m] += 0.5
            E[m, k] += 0.5
            e = matcalc.parse(text, S="symmetric(n)")
            plus, minus = (matcalc.evaluate(e, {"S": S + t * E, "x": x}) for t in (h, -h))
            T[:, k, m] = (plus - minus) / (2 * h)
    return T


def test_symmetric_tensor_follows_one_convention_in_values_code_and_index_form():
    d = derive("S x", "S", S="symmetric(n)")
    rng = np.random.default_rng(1)
    S = rng.normal(size=(3, 3))
    S = S + S.T
    x = rng.normal(size=3)
    truth = _symmetric_fd("S x", S, x)
    np.testing.assert_allclose(d.evaluate(S=S, x=x), truth, atol=1e-8)
    for target in TARGETS:
        np.testing.assert_allclose(run_code(d, target, {"S": S, "x": x}), truth, atol=1e-8)
    assert d.index == "∂(S x)_i/∂S_kl = (0.5) δ_ik x_l + (0.5) δ_il x_k"
    assert "symmetriser" in str(d) and "Nₙ" in d.unicode()
    assert check_derivative(d, time_budget=None).ok


def test_check_runs_the_generated_code(monkeypatch):
    """A defect of code generation fails check(), even when the closed form is right."""
    import sys

    d = derive("x (x' x)", "x")
    assert d.check().ok
    gen = sys.modules["matcalc.codegen.generate"]
    # a broken rewrite: a sum keeps only its first term (the closed form itself is untouched)
    broken = lambda expr, numpy=False: expr.children[0] if isinstance(expr, N.Add) else expr  # noqa: E731
    monkeypatch.setattr(gen, "for_evaluation", broken)
    report = d.check(time_budget=None)
    assert not report.ok and report.method == "code", str(report)
    assert "generated NumPy code" in str(report)


# --- 3. a sound check ---------------------------------------------------------------------------------------------
WRONG_CLAIMS = [
    ("1e7 x' x + sum(x)", "x", "2e7 x", "denominator", {}),
    ("x' A x", "x", "(A + A') x + 0.000001 x", "denominator", {}),
    ("x' A x", "x", "(A + A') x + 0.000000001 x", "denominator", {}),
    ("x' A x", "x", "(A + A') x + 1e-9 x", "denominator", {}),
    ("sum(exp(x))", "x", "exp(x)' + 1e-9 x'", "numerator", {}),
    ("x' S x", "S", "x x' + 1e-9 S", "numerator", {"S": "symmetric(n)"}),
]
RIGHT_CLAIMS = [
    ("1e7 x' x + sum(x)", "x", "2e7 x + 1", "denominator", {}),
    ("x' A x", "x", "(A + A') x", "denominator", {}),
    ("x' A x", "x", "2 A x", "denominator", {"A": "symmetric(n)"}),
    ("x' S x", "S", "x x'", "numerator", {"S": "symmetric(n)"}),
    ("logdet(S)", "S", "inv(S)", "denominator", {"S": "symmetric(n)"}),
    ("tr(A S)", "S", "(A + A')/2", "denominator", {"S": "symmetric(n)"}),
    ("sum(exp(x))", "x", "exp(x)'", "numerator", {}),
]


@pytest.mark.parametrize("expr,wrt,claim,layout,decls", WRONG_CLAIMS, ids=[c[2] for c in WRONG_CLAIMS])
def test_wrong_claims_are_rejected_with_entry_point_and_right_value(expr, wrt, claim, layout, decls):
    r = check_claim(expr, wrt, claim, layout=layout, **decls)
    assert not r.ok, r.message
    assert r.message.startswith("wrong")
    assert r.entry is not None and r.point is not None and r.expected is not None
    # the right value reported is the derivative's value there
    right = np.asarray(r.correct.evaluate(**r.point), dtype=float)
    if decls.get("S"):
        right = right if right.ndim < 2 else right + right.T - np.diag(np.diag(right))
    assert right[r.entry] == pytest.approx(r.expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("expr,wrt,claim,layout,decls", RIGHT_CLAIMS, ids=[c[2] for c in RIGHT_CLAIMS])
def test_right_claims_are_accepted(expr, wrt, claim, layout, decls):
    r = check_claim(expr, wrt, claim, layout=layout, **decls)
    assert r.ok, r.message


def test_cli_check_exits_1_on_the_wrong_claim(capsys):
    from matcalc.cli import main

    code = main(["check", "1e7 x' x + sum(x)", "--wrt", "x", "--claim", "2e7 x", "--layout", "denominator"])
    assert code == 1
    assert "wrong" in capsys.readouterr().out


def test_numeric_tolerance_is_per_entry():
    """A wrong small entry beside a large one fails numerically (exact phase off)."""
    from matcalc.diff import Derivative

    d = derive("1e7 x' x + sum(x)", "x", layout="denominator")
    wrong = Derivative(d.function, d.variable, matcalc.parse("2e7 x", x="vector(n)"), "denominator")
    report = check_derivative(wrong, exact=False, time_budget=None)
    assert not report.ok and report.method == "numeric"


# --- 4. literal division by zero ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,pos", [("sin(a) (1/0)", 9), ("(a/0)^2", 2), ("(0/0) a", 2), ("a ./ 0", 2),
                                      ("x / (0/2)", 2), ("0^-1 a", 1)])
def test_literal_division_by_zero_is_an_error_with_a_caret(text, pos):
    with pytest.raises(matcalc.DivisionByZeroError) as info:
        derive(text, "a" if "a" in text else "x")
    err = info.value
    assert isinstance(err, matcalc.MatcalcError)
    assert err.position == pos and text[pos] in "./^"
    assert "^" in str(err).splitlines()[-1]


def test_division_by_a_non_zero_literal_still_works():
    d = derive("(a/2)^2", "a")
    assert d.evaluate(a=3.0) == pytest.approx(1.5)


# --- 5. mixed Hessian blocks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["numerator", "denominator"])
def test_mixed_hessian_blocks_are_labelled_laid_out_and_checked(layout):
    h = hessian("x' A y", ["x", "y"], layout=layout)
    rng = np.random.default_rng(0)
    x, y, A = rng.normal(size=2), rng.normal(size=3), rng.normal(size=(2, 3))
    xy = h[0][1]
    assert xy.label == "∂²(xᵀ A y)/∂x∂y" and h[1][0].label == "∂²(xᵀ A y)/∂y∂x"
    want = A if layout == "numerator" else A.T  # entry (a, b) = ∂²f/∂x_a∂y_b in numerator layout
    np.testing.assert_allclose(xy.evaluate(x=x, y=y, A=A), want)
    np.testing.assert_allclose(h[1][0].evaluate(x=x, y=y, A=A), want.T)
    for row in h:
        for block in row:
            assert block.layout == layout
            assert block.check().ok


def test_mixed_blocks_of_a_scalar_and_a_vector():
    h = hessian("a^2 sum(x) + a x' A x", ["a", "x"])
    rng = np.random.default_rng(2)
    a, x, A = 0.7, rng.normal(size=3), rng.normal(size=(3, 3))
    # ∂²f/∂a∂x_b = 2 a + ((A + A') x)_b, a row in numerator layout
    np.testing.assert_allclose(h[0][1].evaluate(a=a, x=x, A=A), 2 * a + (A + A.T) @ x)
    assert h[0][1].shape[0] == 1
    for row in h:
        for block in row:
            assert block.check().ok


def test_a_sum_whose_matrix_terms_cancel_keeps_its_shape():
    """Found by the long code-generation run (seed 43): substituting a symmetric S for A in
    diag(((A + sqrt(a^2 + 1)) + norm(x)^2) - A) simplified the sum to the scalar sqrt(a^2 + 1) + norm(x)^2,
    and diag() of it raised a ShapeError. The broadcast scalar terms keep the matrix shape."""
    from matcalc import simplify as S
    from matcalc.diff.linear import substitute

    e = matcalc.parse("diag(((A + sqrt(a^2 + 1)) + norm(x)^2) - A)")
    A = next(s for s in N.symbols_of(e) if s.name == "A")
    sym = N.Symbol("S", A.shape, True)
    out = substitute(e, {A: sym})
    assert out.shape == e.shape
    values = {"a": 0.3, "x": np.array([0.1, -0.2, 0.4]), "S": np.eye(3)}
    sizes = {e.shape[0].name: 3}
    np.testing.assert_allclose(matcalc.evaluate(out, values, sizes=sizes), np.full(3, np.sqrt(1.09) + 0.21))
    two = S.add(N.Symbol("B", A.shape), N.Symbol("b", ()), N.Symbol("c", ()), N.Neg(N.Symbol("B", A.shape)))
    assert two.shape == A.shape


@pytest.mark.parametrize("order", [1, 2])
def test_a_vector_sum_whose_vector_terms_cancel_derives(order):
    """Found by the long code-generation run (seed 44): x - ((x - x) + (x + a)) + ... cancels to the scalar
    -a - ..., broadcast over n; derive() raised a ShapeError (dot of a scalar and a vector)."""
    u = "x - (((x - x) + (x + a)) + norm(x.^2 + 1))"
    d = derive(f"dot({u}, {u})", "x", order=order)
    assert d.check(exact=False).ok
