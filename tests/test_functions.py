"""The functions of current networks (issue #15), table-driven, in every stage.

For each of erf, gelu, silu (swish), elu, sinh, cosh, log1p, expm1: its value against an independent
reference (the C library through ``math``, or the textbook formula), its derivative at points on both
sides of 0 against the analytic derivative, central finite differences and SymPy (``Derivative.check()``),
its second derivative for the smooth ones, each on a scalar, a vector and a matrix argument, and the
generated NumPy, JAX and PyTorch code against ``evaluate()``. Then leaky_relu(e, a) and clip(e, lo, hi)
(identities in relu), the NumPy erf without SciPy, and the constant π.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from codegen_targets import TARGETS, differences, run_code
from finite_differences import first, second

import matcalc
from matcalc import nodes as N
from matcalc import ops
from matcalc.codegen import compile_numpy, generate

SQRT2, SQRT_PI = math.sqrt(2.0), math.sqrt(math.pi)


def _sigmoid(t: float) -> float:
    return 1 / (1 + math.exp(-t)) if t >= 0 else math.exp(t) / (1 + math.exp(t))


def _phi(t: float) -> float:
    return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def _cdf(t: float) -> float:
    return math.erfc(-t / SQRT2) / 2


# name: (value, derivative, second derivative or None where it steps), all scalar references
REFERENCE = {
    "erf": (math.erf, lambda t: 2 / SQRT_PI * math.exp(-t * t), lambda t: -4 * t / SQRT_PI * math.exp(-t * t)),
    "gelu": (lambda t: t * (1 + math.erf(t / SQRT2)) / 2, lambda t: _cdf(t) + t * _phi(t),
             lambda t: (2 - t * t) * _phi(t)),
    "silu": (lambda t: t * _sigmoid(t), lambda t: _sigmoid(t) * (1 + t * (1 - _sigmoid(t))),
             lambda t: _sigmoid(t) * (1 - _sigmoid(t)) * (2 + t * (1 - 2 * _sigmoid(t)))),
    "elu": (lambda t: t if t > 0 else math.expm1(t), lambda t: 1.0 if t > 0 else math.exp(t),
            lambda t: 0.0 if t > 0 else math.exp(t)),
    "sinh": (math.sinh, math.cosh, math.sinh),
    "cosh": (math.cosh, math.sinh, math.cosh),
    "log1p": (math.log1p, lambda t: 1 / (1 + t), lambda t: -1 / (1 + t) ** 2),
    "expm1": (math.expm1, math.exp, math.exp),
}
REFERENCE["swish"] = REFERENCE["silu"]
NAMES = sorted(REFERENCE)
#: Points on both sides of 0 (elu's second derivative steps there); log1p's inside its domain u > -1.
POINTS = {None: [-2.5, -0.7, -0.1, 0.15, 0.6, 2.0], "above-1": [-0.9, -0.5, -0.1, 0.15, 0.6, 3.0]}
#: Variables of each kind, with values from the points (a 2 x 3 matrix uses all six).
KINDS = {"scalar": ("x", "scalar"), "vector": ("x", "vector(6)"), "matrix": ("X", "matrix(2, 3)")}


def _points(name: str) -> np.ndarray:
    return np.array(POINTS[ops.ELEMENTWISE[ops.ALIASES[name]].domain])


def _value(name: str, kind: str, index: int = 1):
    p = _points(name)
    return {"scalar": float(p[index]), "vector": p, "matrix": p.reshape(2, 3)}[kind]


def _entrywise(f, v) -> np.ndarray:
    return np.vectorize(f, otypes=[float])(v)


def test_the_table_covers_every_new_function():
    assert set(NAMES) - {"swish"} <= set(ops.ELEMENTWISE) and ops.ALIASES["swish"] == "silu"
    assert ops.ELEMENTWISE["log1p"].domain == "above-1" and ops.ELEMENTWISE["cosh"].nonnegative


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", NAMES)
def test_value_against_the_reference(name, kind):
    var, decl = KINDS[kind]
    for index in range(6) if kind == "scalar" else (0,):
        v = _value(name, kind, index)
        got = matcalc.evaluate(f"{name}({var}) where {var}: {decl}", **{var: v})
        want = _entrywise(REFERENCE[name][0], v)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", NAMES)
def test_derivative_against_the_formula_finite_differences_and_sympy(name, kind):
    var, decl = KINDS[kind]
    e = matcalc.parse(f"sum({name}({var})) where {var}: {decl}")
    d = matcalc.derive(e, var, layout="denominator")
    for index in range(6) if kind == "scalar" else (0,):
        v = _value(name, kind, index)
        got = np.asarray(d.evaluate(**{var: v}), dtype=float)
        np.testing.assert_allclose(got, _entrywise(REFERENCE[name][1], v), rtol=1e-12)
        fd = first(e, N.symbols_of(e)[0], {var: v}, layout="denominator")
        np.testing.assert_allclose(got, np.reshape(fd, np.shape(got)), rtol=1e-6, atol=1e-8)
    report = d.check(points=2)
    assert report.ok, report


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", NAMES)
def test_second_derivative(name, kind):
    var, decl = KINDS[kind]
    e = matcalc.parse(f"sum({name}({var})) where {var}: {decl}")
    h = matcalc.hessian(e, var)
    v = _value(name, kind, 4)
    got = np.asarray(h.evaluate(**{var: v}), dtype=float)
    entries = _entrywise(REFERENCE[name][2], v)
    want = entries if kind == "scalar" else np.diag(entries.reshape(-1)).reshape(got.shape)  # f''(x) on a diagonal
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    if kind != "matrix":  # finite differences of the function itself
        fd = second(e, N.symbols_of(e)[0], {var: v})
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6)
    report = h.check(points=2)
    assert report.ok, report


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", NAMES)
def test_generated_code_equals_evaluate(name, target):
    v = _points(name)
    values = {"x": v, "W": np.linspace(-0.4, 0.5, 36).reshape(6, 6) / 3}
    texts = [f"sum({name}(x))", f"{name}(W x) .* x", f"sum({name}(x / 2 - 1/8) .* x)"]
    for text in texts:
        for d in (matcalc.derive(f"{text} where x: vector(6), W: matrix(6, 6)", "x"),
                  matcalc.hessian(f"sum({name}(x)) where x: vector(6)", "x")):
            got = run_code(d, target, values)
            want = np.asarray(d.evaluate(**{k: values[k] for k in ("x", "W") if k in text or k == "x"}), float)
            assert not differences(got, want, rtol=1e-10), (text, target, got, want)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "sinh", "cosh", "expm1", "erf"])
def test_far_from_zero_no_overflow_nor_cancellation(name):
    big = np.array([-1000.0, -40.0, -1e-8, 1e-8, 40.0])
    if name in ("sinh", "cosh", "expm1"):
        big = np.array([-700.0, -40.0, -1e-8, 1e-8, 40.0, 700.0])
    ref = _entrywise(REFERENCE[name][0], big)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is right
        got = matcalc.evaluate(f"{name}(x) where x: vector({big.size})", x=big)
        code = compile_numpy(matcalc.derive(f"{name}(x) where x: vector({big.size})", "x"), value_and_grad=True)
        value, jacobian = code(big)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(value, ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.diag(jacobian), _entrywise(REFERENCE[name][1], big), rtol=1e-13, atol=1e-300)


def test_printed_derivatives_read_as_the_literature_writes_them():
    texts = {name: matcalc.to_text(matcalc.derive(f"{name}(x) where x: scalar", "x").expr) for name in NAMES}
    assert texts["erf"] == "(2 / sqrt(pi)) exp(-x^2)"
    assert texts["gelu"] == "0.5 erf(x / sqrt(2)) + (x exp(-0.5 x^2)) / sqrt(2 pi) + 0.5"  # Φ(x) + x φ(x)
    assert texts["silu"] == texts["swish"] and "sigmoid(x)" in texts["silu"]
    assert texts["elu"] == "exp(-relu(-x))"
    assert (texts["sinh"], texts["cosh"], texts["expm1"]) == ("cosh(x)", "sinh(x)", "exp(x)")
    assert texts["log1p"] == "1 / (x + 1)"
    for name, text in texts.items():  # the printed form parses back to the same values
        back = matcalc.parse(text + " where x: scalar")
        for t in _points(name):
            assert float(matcalc.evaluate(back, x=t)) == pytest.approx(REFERENCE[name][1](t), rel=1e-12)
    assert matcalc.to_latex(matcalc.parse("gelu(x)")) == "\\operatorname{GELU}\\left(\\mathbf{x}\\right)"


# --- leaky_relu(e, a) and clip(e, lo, hi) ------------------------------------------------------------------
X6 = np.array([-2.0, -0.5, -0.1, 0.2, 0.7, 1.6])


@pytest.mark.parametrize("wrt", ["x", "a"])
def test_leaky_relu_value_and_derivatives_in_both_arguments(wrt):
    e = matcalc.parse("sum(leaky_relu(W x, a) .* y) where W: matrix(6, 6), x, y: vector(6), a: scalar")
    assert matcalc.to_text(e) == "sum((relu(W x) - a relu(-(W x))) .* y)"
    rng = np.random.default_rng(15)
    values = {"W": rng.normal(size=(6, 6)), "x": X6, "y": rng.normal(size=6), "a": 0.07}
    z = values["W"] @ X6
    want = np.sum(np.where(z > 0, z, 0.07 * z) * values["y"])
    assert float(matcalc.evaluate(e, **values)) == pytest.approx(want, rel=1e-13)
    d = matcalc.derive(e, wrt, layout="denominator")
    got = np.asarray(d.evaluate(**values), float)
    fd = first(e, next(s for s in N.symbols_of(e) if s.name == wrt), values, layout="denominator")
    np.testing.assert_allclose(got, np.reshape(fd, got.shape), rtol=1e-6, atol=1e-8)
    slope = np.where(z > 0, 1.0, 0.07)
    exact = values["W"].T @ (slope * values["y"]) if wrt == "x" else np.sum(np.minimum(z, 0) * values["y"])
    np.testing.assert_allclose(got, exact, rtol=1e-12)
    assert d.check(points=2).ok
    for target in TARGETS:
        assert not differences(run_code(d, target, values), got, rtol=1e-10), target


@pytest.mark.parametrize("wrt", ["x", "lo", "hi"])
def test_clip_value_and_derivatives_in_every_argument(wrt):
    e = matcalc.parse("sum(clip(x, lo, hi) .* y) where x, y: vector(6), lo, hi: scalar")
    values = {"x": X6, "y": np.arange(1.0, 7.0), "lo": -0.3, "hi": 0.9}
    inside = (X6 > -0.3) & (X6 < 0.9)
    assert float(matcalc.evaluate(e, **values)) == pytest.approx(np.sum(np.clip(X6, -0.3, 0.9) * values["y"]))
    d = matcalc.derive(e, wrt, layout="denominator")
    got = np.asarray(d.evaluate(**values), float)
    exact = {"x": inside * values["y"], "lo": np.sum((X6 <= -0.3) * values["y"]),
             "hi": np.sum((X6 >= 0.9) * values["y"])}[wrt]
    np.testing.assert_allclose(got, exact, rtol=1e-13)
    fd = first(e, next(s for s in N.symbols_of(e) if s.name == wrt), values, layout="denominator")
    np.testing.assert_allclose(got, np.reshape(fd, got.shape), rtol=1e-6, atol=1e-8)
    assert d.check(points=2).ok
    for target in TARGETS:
        assert not differences(run_code(d, target, values), got, rtol=1e-10), target


def test_clip_with_literal_bounds_and_its_errors():
    e = matcalc.parse("clip(x, -1, 1) where x: vector(6)")
    assert matcalc.to_text(e) == "-1 + relu(x + 1) - relu(x - 1)"
    np.testing.assert_array_equal(matcalc.evaluate(e, x=3 * X6), np.clip(3 * X6, -1, 1))
    assert matcalc.to_text(matcalc.parse("clip(x, -pi/2, pi/2)")) == "-pi / 2 + relu(x + pi / 2) - relu(x - pi / 2)"
    np.testing.assert_array_equal(matcalc.evaluate("clip(x, 2, 2) where x: vector(6)", x=X6), np.full(6, 2.0))
    with pytest.raises(matcalc.MatcalcError, match="lower bound at most its upper bound") as info:
        matcalc.parse("clip(x, 1, -1/2)")
    assert info.value.position == 8
    with pytest.raises(matcalc.MatcalcError, match="lower bound") as info:
        matcalc.parse("relu(x) + clip(x, pi, 3)")
    assert info.value.position == 18
    with pytest.raises(matcalc.ShapeError, match="takes 3 arguments, not 4"):
        matcalc.parse("clip(x, 1, 2, 3)")
    with pytest.raises(matcalc.ShapeError, match="lower bound of clip\\(\\) must be a scalar") as info:
        matcalc.parse("clip(x, y, 1) where y: vector(n)")
    assert info.value.position == 8


def test_undeclared_parameters_are_scalars():
    e = matcalc.parse("leaky_relu(W x, alpha) + clip(y, lo, hi)")
    kinds = {s.name: s.shape for s in N.symbols_of(e)}
    assert kinds["alpha"] == kinds["lo"] == kinds["hi"] == () and len(kinds["x"]) == 2
    assert matcalc.parse("leaky_relu(x, a)").shape == matcalc.parse("x").shape
    assert matcalc.parse("leaky_relu(x, a) where x: scalar").shape == ()


# --- NumPy's erf without SciPy ---------------------------------------------------------------------------------
def _without_scipy(monkeypatch) -> dict:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    return ops.erf_functions(np)


def test_erf_without_scipy_is_the_c_librarys_on_10000_points(monkeypatch):
    fallback = _without_scipy(monkeypatch)
    erf, erfc = fallback["_matcalc_erf"], fallback["_matcalc_erfc"]
    assert not isinstance(erf, np.ufunc)  # the fallback, not scipy.special.erf
    t = np.concatenate([np.linspace(-6.0, 6.0, 9_000), np.geomspace(1e-300, 30.0, 1_000)])
    got, want = erf(t), np.array([math.erf(v) for v in t])
    assert got.dtype == np.float64 and got.shape == t.shape
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) <= 1e-15
    np.testing.assert_array_equal(erfc(t), [math.erfc(v) for v in t])
    assert erf(np.float64(0.5)).shape == () and erf(t.reshape(100, 100)).shape == (100, 100)


def test_generated_numpy_code_runs_without_scipy(monkeypatch):
    _without_scipy(monkeypatch)
    d = matcalc.derive("sum(gelu(W x) + erf(x)) where W: matrix(4, 4), x: vector(4)", "x")
    source = generate(d, "numpy")
    assert "import math as _matcalc_math" in source and source.count("def _matcalc_erf(") == 1
    W = np.eye(4) + 0.1
    x = np.array([-1.5, -0.2, 0.3, 2.0])
    got = compile_numpy(d)(W=W, x=x)
    assert not differences(got, d.evaluate(W=W, x=x), rtol=1e-14)


def test_scipy_and_the_fallback_agree():
    pytest.importorskip("scipy")
    t = np.linspace(-7.0, 7.0, 10_001)
    np.testing.assert_allclose(ops.erf_functions(np)["_matcalc_erf"](t), [math.erf(v) for v in t], rtol=1e-15)


# --- the constant π ----------------------------------------------------------------------------------------------
def test_pi_in_every_stage():
    e = matcalc.parse("sum(sin(pi x) + π^2 x)")
    assert N.Pi() in list(N.walk(e)) and not any(s.name in ("pi", "π") for s in N.symbols_of(e))
    assert matcalc.to_text(e) == "sum(sin(pi x) + pi^2 x)"
    assert matcalc.to_unicode(e) == "sum(sin(π x) + π² x)" or "π" in matcalc.to_unicode(e)
    assert "\\pi" in matcalc.to_latex(e)
    d = matcalc.derive(e, "x", layout="denominator")
    x = np.array([0.1, -0.4, 0.7])
    want = np.pi * np.cos(np.pi * x) + np.pi**2
    np.testing.assert_allclose(d.evaluate(x=x), want, rtol=1e-14)
    assert float(matcalc.evaluate("pi")) == math.pi
    assert d.check(points=2).ok
    for target in TARGETS:
        assert not differences(run_code(d, target, {"x": x}), want, rtol=1e-13), target
    assert "3.141592653589793" in generate(d, "torch")


def test_a_declared_pi_is_a_variable():
    for spelling in ("pi", "π"):
        e = matcalc.parse(f"sum({spelling} .* x) where {spelling}: vector(3)")
        assert N.Pi() not in list(N.walk(e)) and spelling in {s.name for s in N.symbols_of(e)}
        d = matcalc.derive(e, spelling, layout="denominator")
        np.testing.assert_array_equal(d.evaluate(**{spelling: np.zeros(3), "x": np.array([1.0, 2.0, 3.0])}),
                                      [1.0, 2.0, 3.0])
    assert matcalc.derive("pi^2 where pi: scalar", "pi").evaluate(pi=3.0) == 6.0


def test_constant_arguments_in_every_target():
    """``cosh(2 pi)`` is a Python float in generated code until made a tensor: PyTorch's functions take
    tensors only (also when the constant is a shared temporary)."""
    text = ("sum((gelu(2) + erf(pi) + silu(1/2) + elu(-1) + log1p(1) + sinh(pi/4) + cosh(2 pi) + expm1(1)) x"
            " .* gelu(x))")
    d = matcalc.derive(text, "x")
    x = np.array([0.3, -0.2, 1.1])
    want = np.asarray(d.evaluate(x=x), float)
    constant = (0.5 * 2 * (1 + math.erf(2 / SQRT2)) + math.erf(math.pi) + 0.5 * _sigmoid(0.5) + math.expm1(-1)
                + math.log1p(1) + math.sinh(math.pi / 4) + math.cosh(2 * math.pi) + math.expm1(1))
    gelu = _entrywise(REFERENCE["gelu"][0], x)
    np.testing.assert_allclose(want, constant * (gelu + x * _entrywise(REFERENCE["gelu"][1], x)), rtol=1e-12)
    for target in TARGETS:
        assert not differences(run_code(d, target, {"x": x}), want, rtol=1e-12), target
