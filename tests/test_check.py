"""check() accepts right derivatives of textbook cases in both layouts; check_claim() tells right from wrong."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import check_claim, derive
from matcalc import nodes as N
from matcalc.diff import Derivative
from matcalc.errors import CheckError
from matcalc.verify import CheckReport, ClaimReport, check_derivative, check_sizes

LAYOUTS = ["numerator", "denominator"]

#: (expression, wrt, declarations): derivatives in every textbook.
TEXTBOOK = [
    ("x' A x", "x", {}),
    ("x' S x", "x", {"S": "symmetric(n)"}),
    ("a' x", "x", {"a": "vector(n)"}),
    ("A x", "x", {}),
    ("sum(exp(A x))", "x", {}),
    ("sum(exp(A x))", "A", {}),
    ("tr(A X)", "X", {}),
    ("tr(A X B)", "X", {}),
    ("tr(X' X)", "X", {}),
    ("det(X)", "X", {}),
    ("logdet(X)", "X", {}),
    ("logdet(S)", "S", {"S": "symmetric(n)"}),
    ("tr(S X)", "S", {"S": "symmetric(n)"}),
    ("x' S x", "S", {"S": "symmetric(n)"}),
    ("||X - U V||_F^2", "V", {}),
    ("||X - U V||_F^2", "U", {}),
    ("-y · log(softmax(W x))", "W", {}),
    ("-y · log(softmax(W x))", "x", {}),
    ("max(0, w·x + b)", "w", {}),
    ("max(0, w·x + b)", "b", {}),
    ("mean((X w - y).^2)", "w", {}),
    ("norm(A x - y)^2", "x", {}),
    ("norm(x)", "x", {}),
    ("logsumexp(x)", "x", {}),
    ("softmax(x)", "x", {}),
    ("sigmoid(w · x)", "w", {}),
    ("tanh(W x + h)", "x", {}),
    ("x ⊙ y", "x", {}),
    ("sum(log(1 + exp(x)))", "x", {}),
    ("tr(inv(X) A)", "X", {}),
    ("a ^ 2 sin(a)", "a", {}),
    ("exp(a) x", "a", {}),
    ("norm1(x)", "x", {}),
    ("y' inv(S) y", "S", {"S": "symmetric(n)"}),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("expr", "wrt", "decls"), TEXTBOOK, ids=[f"{e} wrt {w}" for e, w, _ in TEXTBOOK])
def test_textbook_derivatives_pass(expr, wrt, decls, layout):
    d = derive(expr, wrt, layout=layout, **decls)
    report = d.check()
    assert isinstance(report, CheckReport)
    assert report.ok, str(report)
    assert report.method in ("exact", "numeric")
    assert report.entry is None and report.point is None
    assert all(isinstance(v, int) and v >= 2 for v in report.sizes.values())
    assert report.elapsed < 10.5
    assert "OK" in str(report)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hessians_pass(layout):
    for expr, wrt in [("x' A x", "x"), ("sum(exp(A x))", "x"), ("logsumexp(x)", "x"), ("a^3 + exp(a)", "a")]:
        d = derive(expr, wrt, order=2, layout=layout)
        report = d.check()
        assert report.ok, str(report)


def test_tensor_derivatives_are_checked_entry_by_entry():
    for expr, wrt in [("A X B", "X"), ("tanh(W x)", "W"), ("inv(X)", "X"), ("x x'", "x")]:
        report = derive(expr, wrt).check()
        assert report.ok and report.method == "numeric", str(report)


def test_default_sizes_are_distinct_and_overridable():
    d = derive("tr(A X B)", "X")
    report = d.check(exact=False)
    assert sorted(report.sizes.values()) == list(range(2, 2 + len(report.sizes)))
    report = d.check(sizes={"n": 3}, exact=False)
    assert report.ok and report.sizes["n"] == 3
    with pytest.raises(CheckError):
        d.check(sizes={"zz": 3})
    assert check_sizes(d.function, sizes={"n": 5})["n"] == 5


def _wrong(d: Derivative, expr: N.Node) -> Derivative:
    return Derivative(d.function, d.variable, expr, d.layout, d.order)


def test_a_wrong_transpose_fails_with_entry_point_and_values():
    right = derive("tr(A X)", "X", layout="denominator")  # A'
    A = next(s for s in N.symbols_of(right.function) if s.name == "A")
    report = check_derivative(_wrong(right, A))  # A, not A': the wrong shape at distinct sizes
    assert not report.ok
    right = derive("x' A x", "x", layout="denominator")  # (A + A') x
    A, x = (next(s for s in N.symbols_of(right.function) if s.name == name) for name in "Ax")
    report = check_derivative(_wrong(right, N.MatMul(N.Number(2), A, x)))
    assert not report and report.method == "numeric"
    assert isinstance(report.entry, tuple) and len(report.entry) == 1
    assert set(report.point) == {"x", "A"}
    assert isinstance(report.point["A"], np.ndarray) and report.point["A"].shape == (2, 2)
    assert abs(report.expected - report.got) > 1e-3
    assert report.max_error > 1e-3
    text = str(report)
    assert "WRONG" in text and "entry" in text and "expected" in text


def test_a_wrong_sign_fails():
    right = derive("sum(exp(A x))", "x")
    report = check_derivative(_wrong(right, N.Neg(right.expr)))
    assert not report.ok and report.entry is not None


def test_numeric_only_and_exact():
    d = derive("x' A x", "x")
    assert d.check(exact=False).method == "numeric"
    assert d.check().method == "exact"


def test_a_tiny_budget_reports_instead_of_hanging():
    d = derive("sum(tanh(W tanh(W tanh(W tanh(W tanh(W x))))))", "W")
    report = d.check(time_budget=0.2)
    assert not report.ok and report.method == "timeout"
    assert report.elapsed < 3
    assert "budget" in str(report) or "stopped" in str(report)


def test_symmetric_convention():
    """d/dS of x' S x is x x' (symmetric gradient); the unconstrained-looking 2 x x' - diag is not it."""
    d = derive("x' S x", "S", S="symmetric(n)")
    assert d.check().ok
    x = next(s for s in N.symbols_of(d.function) if s.name == "x")
    wrong = N.MatMul(N.Number(2), x, N.Transpose(x))
    assert not check_derivative(_wrong(d, wrong)).ok
    assert "C_ij + C_ji" in str(d.check())


# --- claims ------------------------------------------------------------------------------------------------------
def test_canonical_claim():
    wrong = check_claim("x' A x", "x", "2 A x", layout="denominator")
    assert isinstance(wrong, ClaimReport)
    assert not wrong.ok
    assert wrong.entry is not None and wrong.point is not None
    assert isinstance(wrong.correct, Derivative)
    assert str(wrong.correct) in wrong.message
    assert "wrong" in wrong.message
    right = check_claim("x' A x", "x", "2 A x", layout="denominator", A="symmetric(n)")
    assert right.ok, right.message
    assert right.entry is None and right.point is None
    assert "right" in str(right)


def test_check_claim_is_exported():
    assert matcalc.check_claim is check_claim


@pytest.mark.parametrize(("expr", "wrt", "claim", "layout", "decls"), [
    ("x' A x", "x", "(A + A') x", "denominator", {}),
    ("x' A x", "x", "x' (A + A')", "numerator", {}),
    ("tr(A X)", "X", "A'", "denominator", {}),
    ("tr(A X)", "X", "A", "numerator", {}),
    ("det(X)", "X", "det(X) inv(X)'", "denominator", {}),
    ("logdet(X)", "X", "inv(X)", "numerator", {}),
    ("||X - U V||_F^2", "V", "-2 U' (X - U V)", "denominator", {}),
    ("sum(exp(A x))", "x", "A' exp(A x)", "denominator", {}),
    ("w · x + b", "w", "x", "denominator", {}),
    ("x' S x", "S", "x x'", "denominator", {"S": "symmetric(n)"}),
])
def test_right_claims_are_accepted(expr, wrt, claim, layout, decls):
    report = check_claim(expr, wrt, claim, layout=layout, **decls)
    assert report.ok, report.message


@pytest.mark.parametrize(("expr", "wrt", "claim", "layout", "why"), [
    ("tr(A X) where A, X: matrix(n, n)", "X", "A", "denominator", "transpose"),  # should be A'
    ("sum(exp(A x))", "x", "-A' exp(A x)", "denominator", "sign"),
    ("norm(A x - y)^2", "x", "A' (A x - y)", "denominator", "factor 2"),
    ("x' A x", "x", "(A + A') x", "numerator", "shape"),
    ("tr(A X)", "X", "A", "denominator", "shape"),
    ("a' x", "x", "a'", "denominator", "shape"),
])
def test_wrong_claims_are_rejected(expr, wrt, claim, layout, why):
    report = check_claim(expr, wrt, claim, layout=layout, a="vector(n)") if "a'" in expr else \
        check_claim(expr, wrt, claim, layout=layout)
    assert not report.ok, report.message
    assert isinstance(report.correct, Derivative)
    if why == "shape":
        assert "shape" in report.message
    else:
        assert report.entry is not None and report.point is not None
        assert report.expected != pytest.approx(report.got)


def test_claims_that_do_not_parse_or_use_other_names_are_wrong_not_crashes():
    assert not check_claim("sum(exp(x))", "x", "exp(x) +", layout="denominator").ok
    report = check_claim("sum(exp(x))", "x", "exp(y)", layout="denominator")
    assert not report.ok and "y" in report.message


# --- derive() bugs found by the property test (docs/verification.md), now regression tests ------------
# fixed: A B + 2a B factors as (A + 2a I) B, not (A + 2a) B (where 2a would broadcast)
@pytest.mark.parametrize(("expr", "wrt"), [
    ("a A B + a^2 B where a: scalar", "a"),
    ("tr(A X + b X) where b: scalar", "X"),
])
def test_bug_common_factor_with_a_scalar_term(expr, wrt):
    assert derive(expr, wrt).check(exact=False).ok
