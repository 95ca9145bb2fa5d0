"""Derivatives with three or four axes: the linear map, the Kronecker form, the index form, and values."""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import _f, random_values

import matcalc
from matcalc.diff.tensor import TensorDerivative
from matcalc.numeric import evaluate

CASES = [
    ("W x", "W", {}, "dW x", "kron(xᵀ, I)", "∂(W x)_i/∂W_kl = δ_ik x_l"),
    ("tanh(W x + b)", "W", {"b": "vector(m)"}, None, "kron(xᵀ, diag(1 - tanh(W x + b)⊙²))", None),
    ("softmax(W x)", "W", {}, None, "kron(xᵀ, diag(softmax(W x)) - softmax(W x) softmax(W x)ᵀ)", None),
    ("x x'", "x", {}, "dx xᵀ + x dxᵀ", "kron(x, I) + kron(I, x)", "∂(x xᵀ)_ij/∂x_k = δ_ik x_j + x_i δ_jk"),
    ("A X B", "X", {}, "A dX B", "kron(Bᵀ, A)", "∂(A X B)_ij/∂X_kl = A_ik B_lj"),
    ("inv(X)", "X", {}, "-(X⁻¹ dX X⁻¹)", "-kron(X⁻ᵀ, X⁻¹)", "∂(X⁻¹)_ij/∂X_kl = -(X⁻¹)_ik (X⁻¹)_lj"),
    ("X^2", "X", {}, "dX X + X dX", "kron(Xᵀ, I) + kron(I, X)", "∂(X²)_ij/∂X_kl = δ_ik X_lj + X_ik δ_jl"),
    ("X'", "X", {}, "dXᵀ", None, "∂(Xᵀ)_ij/∂X_kl = δ_jk δ_il"),
    ("x' X", "X", {}, "xᵀ dX", "kron(I, xᵀ)", "∂(xᵀ X)_i/∂X_kl = x_k δ_il"),
    ("exp(A X)", "X", {}, None, None, None),
    # a broadcast or scaling scalar that depends on the matrix: index form and values, no Kronecker form
    ("x + x' A x", "A", {}, None, None, "∂(x + xᵀ A x)_i/∂A_kl = x_k x_l (𝟙)_i"),
    ("x (x' A x)", "A", {}, None, None, "∂(x (xᵀ A x))_i/∂A_kl = x_k x_l x_i"),
]


def numeric_tensor(function, variable, values, h=1e-6):
    f = _f(function, values, variable.name)
    x0 = np.asarray(values[variable.name], dtype=float)
    out = f(x0)
    T = np.zeros(out.shape + x0.shape)
    for idx in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[idx] = h
        T[(Ellipsis,) + idx] = (f(x0 + e) - f(x0 - e)) / (2 * h)
    return T


@pytest.mark.parametrize("text,wrt,decls,linear,kron,index", CASES, ids=[c[0] for c in CASES])
def test_tensor_derivative_forms_and_values(text, wrt, decls, linear, kron, index):
    d = matcalc.derive(text, wrt, **decls)
    assert isinstance(d, TensorDerivative)
    if linear:
        assert d.linear_map.split(" = ", 1)[1] == linear
    if kron:
        assert matcalc.to_unicode(d.kronecker) == kron
    if index:
        assert d.index == index
    values = random_values(d.function, seed=7)
    T = d.evaluate(**values)
    np.testing.assert_allclose(T, numeric_tensor(d.function, d.variable, values), rtol=1e-5, atol=1e-6)
    assert T.ndim == len(d.shape)
    if d.kronecker is not None:  # vec(dF) = K vec(dX), vec stacking columns
        K = np.atleast_2d(evaluate(d.kronecker, values, sizes=_sizes(T, d)))
        np.testing.assert_allclose(K.reshape(T.shape, order="F"), T, rtol=1e-8, atol=1e-10)


def _sizes(T, d):
    return {str(dim): n for dim, n in zip(d.shape, T.shape, strict=True) if not isinstance(dim, int)}


def test_hessian_with_respect_to_a_matrix_is_a_four_way_tensor():
    h = matcalc.hessian("tr(X' A X)", "X")
    assert isinstance(h, TensorDerivative) and len(h.shape) == 4
    assert matcalc.to_unicode(h.kronecker) == "kron(I, A + Aᵀ)"
    values = random_values(h.function, seed=2)
    g = matcalc.derive("tr(X' A X)", "X", layout="denominator")
    np.testing.assert_allclose(h.evaluate(**values), numeric_tensor(g.expr, g.variable, values), rtol=1e-5)


@pytest.mark.parametrize("text,wrt", [("W x", "W"), ("A X B", "X"), ("inv(X)", "X"), ("x x'", "x"),
                                      ("softmax(W x)", "W")])
def test_generated_code_for_tensors_agrees_with_evaluate(text, wrt):
    d = matcalc.derive(text, wrt)
    values = random_values(d.function, seed=9)
    f = d.compile()
    np.testing.assert_allclose(f(**values), d.evaluate(**values), rtol=1e-10, atol=1e-12)
    for target, module in (("jax", "jax"), ("torch", "torch")):
        try:
            __import__(module)
        except ImportError:
            continue
        namespace: dict = {}
        exec(compile(getattr(d, f"to_{target}")(), "<generated>", "exec"), namespace)  # matcalc's own code
        fn = next(v for k, v in namespace.items() if k.startswith("derivative_"))
        if target == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        got = np.asarray(fn(**{k: np.asarray(v, dtype=float) for k, v in values.items()}))
        np.testing.assert_allclose(got, d.evaluate(**values), rtol=1e-8, atol=1e-10)
