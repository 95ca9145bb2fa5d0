"""The Matrix Cookbook's derivative rows that have a matrix closed form (sections 2.1-2.8), each checked
against central finite differences in both layouts; the classic closed forms are asserted too."""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import first, random_values

import matcalc

V = "vector"
ROWS = [
    # linear and quadratic forms (2.4)
    ("a' X b", "X", {"a": f"{V}(m)", "b": f"{V}(n)"}, "a bᵀ"),
    ("a' X' b", "X", {"a": f"{V}(n)", "b": f"{V}(m)"}, "b aᵀ"),
    ("a' X a", "X", {"a": f"{V}(n)", "X": "matrix(n,n)"}, "a aᵀ"),
    ("b' X' X c", "X", {"b": f"{V}(n)", "c": f"{V}(n)"}, "X (c bᵀ + b cᵀ)"),
    ("(X b + c)' D (X b + c)", "X", {"b": f"{V}(n)", "c": f"{V}(m)", "D": "matrix(m,m)"}, "(D + Dᵀ) (X b + c) bᵀ"),
    ("b' X' D X c", "X", {"b": f"{V}(n)", "c": f"{V}(n)", "D": "matrix(m,m)"}, "D X c bᵀ + Dᵀ X b cᵀ"),
    ("a' X X' b", "X", {"a": f"{V}(m)", "b": f"{V}(m)"}, "(a bᵀ + b aᵀ) X"),
    ("a' X^2 b", "X", {"a": f"{V}(n)", "b": f"{V}(n)"}, None),
    ("a' X^3 b", "X", {"a": f"{V}(n)", "b": f"{V}(n)"}, None),
    ("x' B x", "x", {}, "(B + Bᵀ) x"),
    ("b' A x", "x", {"b": f"{V}(m)"}, "Aᵀ b"),
    ("(A x + b)' C (D x + e)", "x", {"b": f"{V}(m)", "e": f"{V}(k)", "C": "matrix(m,k)", "D": "matrix(k,n)"}, None),
    ("||A x - b||^2", "x", {"b": f"{V}(m)"}, "2 Aᵀ (A x - b)"),
    ("(x - s)' inv(S) (x - s)", "s", {"S": "symmetric(n)", "s": f"{V}(n)"}, "2 S⁻¹ (s - x)"),
    # inverses (2.2)
    ("a' inv(X) b", "X", {"a": f"{V}(n)", "b": f"{V}(n)"}, "-(X⁻ᵀ a bᵀ X⁻ᵀ)"),
    ("tr(A inv(X) B)", "X", {}, "-(X⁻ᵀ Aᵀ Bᵀ X⁻ᵀ)"),
    ("tr(inv(X))", "X", {}, None),
    # traces (2.5)
    ("tr(X)", "X", {}, "I"), ("tr(X A)", "X", {}, "Aᵀ"), ("tr(A X B)", "X", {}, "Aᵀ Bᵀ"),
    ("tr(A X' B)", "X", {}, "B A"), ("tr(X' A)", "X", {}, "A"), ("tr(X X)", "X", {}, "2 Xᵀ"),
    ("tr(X B X)", "X", {}, "Xᵀ Bᵀ + Bᵀ Xᵀ"), ("tr(X' B X)", "X", {}, "(B + Bᵀ) X"), ("tr(X X')", "X", {}, "2 X"),
    ("tr(X B X')", "X", {}, None), ("tr(A X B X)", "X", {}, "Aᵀ Xᵀ Bᵀ + Bᵀ Xᵀ Aᵀ"), ("tr(X' X)", "X", {}, "2 X"),
    ("tr(B' X' C X B)", "X", {}, "(C + Cᵀ) X B Bᵀ"), ("tr(X' B X C)", "X", {}, "B X C + Bᵀ X Cᵀ"),
    ("tr(A X B X' C)", "X", {}, None), ("tr((A X b + c)(A X b + c)')", "X", {"b": f"{V}(m)", "c": f"{V}(k)"}, None),
    ("tr(X^2)", "X", {}, "2 Xᵀ"), ("tr(X^3)", "X", {}, "3 (Xᵀ)²"), ("tr(B X^3)", "X", {}, None),
    ("tr(inv(X' C X) A)", "X", {"C": "symmetric(m)", "A": "matrix(n,n)"}, None),
    ("tr(X' X)^2", "X", {}, "4 tr(Xᵀ X) X"),
    # determinants (2.1)
    ("det(X)", "X", {}, "det(X) X⁻ᵀ"), ("logdet(X)", "X", {}, "X⁻ᵀ"),
    ("det(A X B)", "X", {"A": "matrix(n,n)", "X": "matrix(n,n)", "B": "matrix(n,n)"}, None),
    ("det(X' C X)", "X", {"C": "symmetric(m)"}, "2 det(Xᵀ C X) C X (Xᵀ C X)⁻¹"),
    ("logdet(X' X)", "X", {}, "2 X (Xᵀ X)⁻¹"), ("logdet(X' C X)", "X", {"C": "symmetric(m)"}, "2 C X (Xᵀ C X)⁻¹"),
    ("det(X^2)", "X", {}, None), ("det(inv(X))", "X", {}, None),
    # norms (2.6) and element-wise
    ("norm(X)", "X", {}, "X / ‖X‖"), ("||X||_F^2", "X", {}, "2 X"), ("norm(x - a)", "x", {"a": f"{V}(n)"}, None),
    ("sum(X)", "X", {}, "𝟙"), ("sum(diag(X))", "X", {}, "I"), ("sum(exp(X))", "X", {}, "exp(X)"),
    ("a' diag(x) b", "x", {"a": f"{V}(n)", "b": f"{V}(n)"}, "a ⊙ b"),
    ("x' A x / (x' x)", "x", {}, None),
]


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
@pytest.mark.parametrize("text,wrt,decls,printed", ROWS, ids=[f"{r[0]} d/d{r[1]}" for r in ROWS])
def test_cookbook_row(text, wrt, decls, printed, layout):
    d = matcalc.derive(text, wrt, layout=layout, **decls)
    if printed is not None and layout == "denominator":
        assert matcalc.to_unicode(d.expr) == printed
    symmetric = tuple(name for name, kind in decls.items() if kind.startswith("symmetric"))
    for seed in (1, 2):
        values = random_values(d.function, seed=seed, spd=symmetric)
        got = np.asarray(d.evaluate(**values), dtype=float)
        want = np.asarray(first(d.function, d.variable, values, layout), dtype=float)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{text} d/d{wrt}: {d}")
