"""Issue #16: every derivative that is a matrix gets its matrix form.

Hessians and Jacobians whose differential passes through matrices that depend on the variable
(``diag(dx)``, outer products ``dx xᵀ``, ``(aᵀdx) M``, ``kron(dx, I)``, Hadamard products with a matrix,
inverses and determinants of matrices of ``x``, vector literals of expressions in ``x``), and gradients
through ``kron(A, X)``. Every value is compared with central finite differences; a few with SymPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import first, random_values, second

import matcalc
from matcalc.diff import derive

#: The rows of the issue's table, then more of the same families.
HESSIANS = [
    ("(x' A x)^2", "x", {}),
    ("exp(x' A x)", "x", {}),
    ("x' A x / (x' x)", "x", {}),
    ("sum(kron(-y, y))", "y", {}),
    ("logsumexp(softmax(x))", "x", {}),
    ("logdet(diag(y) diag(y)' + I)", "y", {}),
    ("sum(exp(x x'))", "x", {}),
    ("tr(inv(A A' + I + x x'))", "x", {}),
    ("logdet(A A' + I + x x')", "x", {}),
    ("det(A A' + I + diag(exp(x)))", "x", {}),
    ("norm(x x' - A)^2", "x", {}),
    ("y' inv(A A' + I + diag(exp(x))) y", "x", {}),
    ("(x' A x) sum(x)", "x", {}),
    ("y' ((x x') .* A) y", "x", {}),
    ("tr(A diag(x) B diag(x))", "x", {}),
    ("sum(kron(x, x).^2)", "x", {}),
    ("norm(kron(x, A x))^2", "x", {}),
    ("tr((x x')^2)", "x", {}),
    ("det(x x' + I)", "x", {}),
    ("x' diag(x) x", "x", {}),
    ("norm(diag(x) A)^2", "x", {}),
    ("tr(exp(x x') A)", "x", {}),
    ("y' (A + x x')^2 y", "x", {}),
    ("sum(exp(diag(x) A diag(x)))", "x", {}),
    ("tr((A .* (x x')) (B .* (x x')))", "x", {}),
    ("sum([x' A x, sum(exp(x)), norm(x)^2])", "x", {}),
    ("sum(((x x') ./ (A.^2 + 1)) B diag(x))", "x", {}),  # element-wise division inside a product
    ("tr(A ((y x') ./ (B.^2 + 1)) C)", "x", {"C": "matrix(n,n)"}),
    # found by the random sweep: a rank-one matrix of the tangent divided element-wise, inside a product
    ("sigmoid((x.^2 + 1).^0.5 + b)' (inv(diag(y) diag(y)' + I) - B') ./ (inv((B + B) (B + B)' + I).^2 + 1) "
     "diag(B + A) ./ (((y.^2 + 1).^0.5 ./ (x.^2 + 1)).^2 + 1)", "y", {}),
    # found by the random sweep: diag(dy) between two diagonal matrices (inverses), under a Hadamard product
    ("mean((B - A)' - (B B) ./ (inv(diag(y) diag(y)' + I).^2 + 1))", "y", {}),
    ("sum(B ./ (inv(diag(y) diag(y)' + I).^2 + 1))", "y", {}),
]

JACOBIANS = [
    ("inv(A + x x') b", "x", {"b": "vector(n)"}),
    ("[x' A x, sum(exp(x)), norm(x)]", "x", {}),
    ("[x' A x; norm(x)^2; sum(exp(x))]", "x", {}),
    ("x * x' * x", "x", {}),
    ("x * (x' * x)", "x", {}),
    ("diag(x x' A)", "x", {}),
    ("((x x') .* A) y", "x", {}),
    ("exp(x x') y", "x", {}),
    ("diag(exp(x x') A)", "x", {}),
    ("inv(diag(exp(x))) y", "x", {}),
    ("(A + x x')^2 y", "x", {}),
    ("diag(x) A diag(x) y", "x", {}),
    ("tr(x x') x", "x", {}),
    ("exp(A .* (x x')) y", "x", {}),
    ("(x x') * (x x') y", "x", {}),
    ("(x y') .* (y x') z", "x", {"z": "vector(n)"}),
    ("logdet(x x' + I) x", "x", {}),
    ("softmax(x x' y)", "x", {}),
    ("tanh((A .* (x x')) x)", "x", {}),
]

GRADIENTS = [  # through kron(A, X): text, wrt, declarations, closed form (numerator layout)
    ("norm(kron(A, X))^2", "X", {}, "2 ‖A‖² Xᵀ"),
    ("tr(kron(A, X))", "X", {"A": "matrix(n,n)", "X": "matrix(m,m)"}, "tr(A) I"),
    ("tr(kron(X, X))", "X", {"X": "matrix(m,m)"}, "2 tr(X) I"),
]


def _close(got, want, tol=1e-5):
    """Agreement up to ``tol`` relative to the largest entry (finite differences of exp(x xᵀ) are coarse)."""
    want = np.asarray(want, float)
    np.testing.assert_allclose(np.asarray(got, float), want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


def _values(d, seed=3):
    return random_values(d.function, seed=seed, sizes={"n": 3, "m": 2, "k": 2, "p": 2})


@pytest.mark.parametrize("text,wrt,decls", HESSIANS, ids=[c[0] for c in HESSIANS])
def test_hessians_through_matrix_intermediates(text, wrt, decls):
    h = derive(text, wrt, order=2, **decls)
    values = _values(h)
    got = np.asarray(h.evaluate(**values), float)
    _close(got, second(h.function, h.variable, values), 1e-4)
    np.testing.assert_allclose(got, got.T, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("text,wrt,decls", JACOBIANS, ids=[c[0] for c in JACOBIANS])
@pytest.mark.parametrize("layout", ["numerator", "denominator"])
def test_jacobians_through_matrix_intermediates(text, wrt, decls, layout):
    d = derive(text, wrt, layout=layout, **decls)
    values = _values(d)
    _close(d.evaluate(**values), first(d.function, d.variable, values, layout))


@pytest.mark.parametrize("text,wrt,decls,printed", GRADIENTS, ids=[c[0] for c in GRADIENTS])
def test_gradients_through_kron_of_a_matrix(text, wrt, decls, printed):
    d = derive(text, wrt, **decls)
    assert matcalc.to_unicode(d.expr) == printed
    values = _values(d)
    _close(d.evaluate(**values), first(d.function, d.variable, values))


@pytest.mark.parametrize("text,wrt,order", [("(x' A x)^2", "x", 2), ("inv(A + x x') y", "x", 1),
                                            ("[x' A x, sum(exp(x))]", "x", 1), ("sum(kron(-y, y))", "y", 2)])
def test_new_forms_agree_with_sympy(text, wrt, order):
    report = derive(text, wrt, order=order).check(points=2)
    assert report.ok, str(report)


def test_closed_forms_of_the_issue_table():
    assert matcalc.to_unicode(derive("sum(kron(-y, y))", "y", order=2).expr) == "-2 𝟙 𝟙ᵀ"
    assert matcalc.to_unicode(derive("x * x' * x", "x").expr) == "(xᵀ x) I + 2 x xᵀ"
    assert matcalc.to_unicode(derive("x * (x' * x)", "x").expr) == "(xᵀ x) I + 2 x xᵀ"


def test_a_vector_literal_stacks_the_gradients_as_rows():
    d = derive("[x' A x, sum(exp(x)), norm(x)]", "x")
    values = _values(d)
    xv, Av = values["x"], values["A"]
    rows = [xv @ (Av + Av.T), np.exp(xv), xv / np.linalg.norm(xv)]
    np.testing.assert_allclose(d.evaluate(**values), np.vstack(rows), rtol=1e-12)


def test_refusals_within_two_axes_say_matcalc_could_not_find_the_form():
    # a Hadamard product with a matrix inside a longer product: the form needs a four-index contraction
    with pytest.raises(matcalc.NoMatrixFormError) as err:
        derive("sum(tanh(A diag(x) B) x)", "x", order=2)
    assert "could not find" in str(err.value) and "no matrix form" not in str(err.value)


def test_a_broadcast_sum_of_scalars_keeps_its_shape_when_a_zero_vector_drops():
    # found by a random sweep: (C - C) Cᵀ x + (s + a) is the vector (s + a) 𝟙, not a scalar
    text = ("((x + a x) ./ ((x ./ (y.^2 + 1)).^2 + 1))' (A + (A + a)) .* tan(tanh(diag(x))) "
            "((C - C) C' x + (a / (a^2 + 1) + a))")
    d = derive(text, "x")
    values = _values(d)
    _close(d.evaluate(**values), first(d.function, d.variable, values))


#: Tensors with a transposed differential: the Kronecker form uses the commutation matrix K(m, n).
TRANSPOSED = [
    ("X'", {}, "K(n,m)"),
    ("A X' B", {}, "kron(Bᵀ, A) K(k,m)"),
    ("X' X", {}, "kron(Xᵀ, I) K(n,m) + kron(I, Xᵀ)"),
    ("X + X'", {"X": "matrix(n,n)"}, "I + K(n,n)"),
    ("X' A x", {}, "kron(xᵀ Aᵀ, I) K(n,m)"),
]


@pytest.mark.parametrize("text,decls,kron", TRANSPOSED, ids=[c[0] for c in TRANSPOSED])
def test_kronecker_form_with_a_transposed_differential(text, decls, kron):
    from matcalc.numeric import evaluate

    d = derive(text, "X", **decls)
    assert matcalc.to_unicode(d.kronecker) == kron
    sizes = {"n": 3, "m": 2, "k": 4, "p": 5}
    values = random_values(d.function, seed=5, sizes=sizes)
    T = d.evaluate(**values)
    K = np.atleast_2d(evaluate(d.kronecker, values, sizes=sizes))
    np.testing.assert_allclose(K.reshape(T.shape, order="F"), T, rtol=1e-10, atol=1e-12)
    # and T is the derivative: central differences of F in each entry of X
    X0 = values["X"]
    for idx in np.ndindex(X0.shape):
        e = np.zeros_like(X0)
        e[idx] = 1e-6
        diff = (np.asarray(evaluate(d.function, {**values, "X": X0 + e})) -
                np.asarray(evaluate(d.function, {**values, "X": X0 - e}))) / 2e-6
        np.testing.assert_allclose(T[(Ellipsis,) + idx], diff, rtol=1e-5, atol=1e-6)
    # compiled like the other Kronecker forms
    np.testing.assert_allclose(d.compile()(**values), T, rtol=1e-10, atol=1e-12)
    for target in ("jax", "torch"):
        pytest.importorskip(target)
        namespace: dict = {}
        exec(compile(getattr(d, f"to_{target}")(), "<generated>", "exec"), namespace)  # matcalc's own code
        fn = next(v for k, v in namespace.items() if k.startswith("derivative_"))
        if target == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        got = np.asarray(fn(**{k: np.asarray(v, dtype=float) for k, v in values.items()}))
        np.testing.assert_allclose(got, T, rtol=1e-8, atol=1e-10)


def test_commutation_matrix_in_every_printer_and_sympy():
    from matcalc import nodes as N
    from matcalc.shapes import Dim
    from matcalc.sympy_backend import to_explicit

    K = N.Commutation(Dim("m"), Dim("n"))
    assert matcalc.to_text(K) == "commutation(m, n)" and matcalc.to_latex(K) == "K_{m,n}"
    explicit = np.array(to_explicit(K, {"m": 2, "n": 3}).tolist(), dtype=float)
    A = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(explicit @ A.reshape(-1, order="F"), A.T.reshape(-1, order="F"))
