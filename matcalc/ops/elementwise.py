"""The element-wise functions of the language, one :class:`~matcalc.ops.records.Elementwise` record each.

Adding one is one record here plus its tests and a line of docs (docs/design.md, "How to add an
operation"): the grammar, the typechecker, the evaluators, the printers, code generation and verify read
these records and nothing else about the function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .records import Elementwise

__all__ = ["ELEMENTWISE", "ERF_PREAMBLE", "erf_functions"]


# --- the element-wise functions ---------------------------------------------------------------------------
def _sigmoid_numpy(np: Any, x: Any) -> Any:
    # exp(-|x|) never overflows; pick the algebraically equal form that does not cancel.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def _sqrt1m2(d: Any, u: Any) -> Any:
    """sqrt(1 - u⊙²), the denominator of arcsin' and arccos'."""
    return d.apply("sqrt", d.add(d.one, d.neg(d.square(u))))


#: NumPy has no erf, and SciPy is no dependency of matcalc: SciPy's where it is installed, else the C
#: library's (math.erf, accurate to about 1 ulp) entry by entry. Evaluation and the generated NumPy code
#: (this text is its preamble) compute it the same way.
ERF_PREAMBLE = """\
try:  # erf and erfc: SciPy's where it is installed, else the C library's (math.erf), entry by entry
    from scipy.special import erf as _matcalc_erf, erfc as _matcalc_erfc
except ImportError:
    import math as _matcalc_math

    def _matcalc_erf(x):
        return np.asarray(np.frompyfunc(_matcalc_math.erf, 1, 1)(x), dtype=float)

    def _matcalc_erfc(x):
        return np.asarray(np.frompyfunc(_matcalc_math.erfc, 1, 1)(x), dtype=float)
"""
_ERF: dict[str, Callable] = {}


def erf_functions(np: Any) -> dict[str, Callable]:
    """``{"_matcalc_erf": ..., "_matcalc_erfc": ...}`` as :data:`ERF_PREAMBLE` defines them: the very code
    the generated NumPy functions run, so evaluation and code agree."""
    namespace: dict[str, Any] = {"np": np}
    exec(ERF_PREAMBLE, namespace)  # noqa: S102 - matcalc's own constant source
    return {k: v for k, v in namespace.items() if k.startswith("_matcalc_erf")}


def _erf_numpy(np: Any, x: Any, name: str = "_matcalc_erf") -> Any:
    if not _ERF:
        _ERF.update(erf_functions(np))
    return _ERF[name](x)


def _gelu_numpy(np: Any, x: Any) -> Any:
    # x Φ(x) with Φ(x) = erfc(-x/√2)/2: no cancellation of 1 + erf(x/√2) far below 0
    return 0.5 * x * _erf_numpy(np, -x * _SQRT_HALF, "_matcalc_erfc")


def _silu_numpy(np: Any, x: Any) -> Any:
    return x * _sigmoid_numpy(np, x)


def _gelu_derivative(d: Any, u: Any) -> Any:
    """GELU'(u) = Φ(u) + u φ(u), with Φ(u) = (1 + erf(u/√2))/2 and φ(u) = exp(-u²/2)/√(2π)."""
    half = d.number(_HALF)
    cdf = d.mul(half, d.add(d.one, d.apply("erf", d.div(u, d.apply("sqrt", d.number(2))))))
    pdf = d.div(d.apply("exp", d.neg(d.mul(half, d.square(u)))), d.apply("sqrt", d.mul(d.number(2), d.pi)))
    return d.add(cdf, d.had(u, pdf))


def _silu_derivative(d: Any, u: Any) -> Any:
    """silu'(u) = σ(u) (1 + u (1 - σ(u)))."""
    p = d.apply("sigmoid", u)
    return d.had(p, d.add(d.one, d.had(u, d.add(d.one, d.neg(p)))))


_HALF = "1/2"
_SQRT_HALF = 0.7071067811865476  # 1/√2 rounded to a float64
_SIGMOID = "{exp}(-{logaddexp}(0.0, -{x_unary}))"


_E = Elementwise
_ELEMENTWISE_RECORDS = (
    _E("exp", derivative=lambda d, u: d.apply("exp", u), numpy=lambda np, x: np.exp(x),
       sympy=lambda sp, x: sp.exp(x), latex="\\exp", letter="e", nonnegative=True),
    _E("log", aliases=("ln",), derivative=lambda d, u: d.recip(u), numpy=lambda np, x: np.log(x),
       sympy=lambda sp, x: sp.log(x), latex="\\log", letter="l", domain="positive"),
    _E("sin", derivative=lambda d, u: d.apply("cos", u), numpy=lambda np, x: np.sin(x),
       sympy=lambda sp, x: sp.sin(x), latex="\\sin"),
    _E("cos", derivative=lambda d, u: d.neg(d.apply("sin", u)), numpy=lambda np, x: np.cos(x),
       sympy=lambda sp, x: sp.cos(x), latex="\\cos"),
    _E("tan", derivative=lambda d, u: d.add(d.one, d.square(d.apply("tan", u))),
       numpy=lambda np, x: np.tan(x), sympy=lambda sp, x: sp.tan(x), latex="\\tan"),
    _E("arcsin", derivative=lambda d, u: d.recip(_sqrt1m2(d, u)), numpy=lambda np, x: np.arcsin(x),
       sympy=lambda sp, x: sp.asin(x), latex="\\arcsin", domain="unit"),
    _E("arccos", derivative=lambda d, u: d.neg(d.recip(_sqrt1m2(d, u))), numpy=lambda np, x: np.arccos(x),
       sympy=lambda sp, x: sp.acos(x), latex="\\arccos", domain="unit"),
    _E("arctan", derivative=lambda d, u: d.recip(d.add(d.one, d.square(u))),
       numpy=lambda np, x: np.arctan(x), sympy=lambda sp, x: sp.atan(x), latex="\\arctan"),
    _E("tanh", derivative=lambda d, u: d.add(d.one, d.neg(d.square(d.apply("tanh", u)))),
       numpy=lambda np, x: np.tanh(x), sympy=lambda sp, x: sp.tanh(x), latex="\\tanh", letter="h"),
    _E("sigmoid", aliases=("σ",),
       derivative=lambda d, u: d.had(d.apply("sigmoid", u), d.add(d.one, d.neg(d.apply("sigmoid", u)))),
       numpy=_sigmoid_numpy, sympy=lambda sp, x: 1 / (1 + sp.exp(-x)),
       code={"numpy": "{exp}(-{logaddexp}(0.0, -{x_unary}))", "jax": "jax.nn.sigmoid({x})",
             "torch": "torch.sigmoid({x})"},
       latex="\\sigma", unicode="σ", letter="p", nonnegative=True),
    _E("relu", derivative=lambda d, u: d.apply("step", u), numpy=lambda np, x: np.maximum(x, 0.0),
       sympy=lambda sp, x: sp.Piecewise((x, x > 0), (0, True)),
       code={"numpy": "{maximum}({x}, 0.0)", "torch": "torch.relu({x})"},
       letter="h", kink=True, nonnegative=True),
    _E("softplus", derivative=lambda d, u: d.apply("sigmoid", u), numpy=lambda np, x: np.logaddexp(0.0, x),
       sympy=lambda sp, x: sp.log(1 + sp.exp(x)),
       code={"numpy": "{logaddexp}(0.0, {x})", "torch": "torch.logaddexp({x}, torch.zeros_like({x}))"},
       nonnegative=True),
    _E("sqrt", derivative=lambda d, u: d.div(d.number(1), d.mul(d.number(2), d.apply("sqrt", u))),
       numpy=lambda np, x: np.sqrt(x), sympy=lambda sp, x: sp.sqrt(x), latex="\\sqrt{{{x}}}", letter="r",
       nonnegative=True, domain="positive"),
    _E("abs", derivative=lambda d, u: d.apply("sign", u), numpy=lambda np, x: np.abs(x),
       sympy=lambda sp, x: sp.Abs(x), latex="\\left|{x}\\right|", kink=True, nonnegative=True),
    _E("sign", derivative=lambda d, u: None, numpy=lambda np, x: np.sign(x), sympy=lambda sp, x: sp.sign(x),
       kink=True),
    _E("step", derivative=lambda d, u: None, numpy=lambda np, x: np.where(x > 0, 1.0, 0.0),
       sympy=lambda sp, x: sp.Piecewise((1, x > 0), (0, True)),
       code={"numpy": "{where}({x} > 0, 1.0, 0.0)", "torch": "({x} > 0).to(dtype)"},
       kink=True, nonnegative=True),
    _E("erf", derivative=lambda d, u: d.mul(d.div(d.number(2), d.apply("sqrt", d.pi)),  # (2/√π) exp(-u²)
                                            d.apply("exp", d.neg(d.square(u)))),
       numpy=_erf_numpy, sympy=lambda sp, x: sp.erf(x),
       code={"numpy": "_matcalc_erf({x})", "jax": "jax.scipy.special.erf({x})"},
       preamble={"numpy": ERF_PREAMBLE}),
    _E("gelu", derivative=_gelu_derivative, numpy=_gelu_numpy,
       sympy=lambda sp, x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
       code={"numpy": f"(0.5 * ({{x}}) * _matcalc_erfc(({{x}}) * -{_SQRT_HALF!r}))",
             "jax": "jax.nn.gelu({x}, approximate=False)", "torch": "torch.nn.functional.gelu({x})"},
       preamble={"numpy": ERF_PREAMBLE}, latex="\\operatorname{GELU}", unicode="gelu"),
    _E("silu", aliases=("swish",), derivative=_silu_derivative, numpy=_silu_numpy,
       sympy=lambda sp, x: x / (1 + sp.exp(-x)),
       code={"numpy": f"(({{x}}) * {_SIGMOID})", "jax": "jax.nn.silu({x})",
             "torch": "torch.nn.functional.silu({x})"}),
    _E("elu", derivative=lambda d, u: d.apply("exp", d.neg(d.apply("relu", d.neg(u)))),  # 1 above 0, exp(u) below
       numpy=lambda np, x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
       sympy=lambda sp, x: sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
       code={"numpy": "{where}({x} > 0, {x}, {expm1}({minimum}({x}, 0.0)))", "jax": "jax.nn.elu({x})",
             "torch": "torch.nn.functional.elu({x})"}),
    _E("sinh", derivative=lambda d, u: d.apply("cosh", u), numpy=lambda np, x: np.sinh(x),
       sympy=lambda sp, x: sp.sinh(x), latex="\\sinh"),
    _E("cosh", derivative=lambda d, u: d.apply("sinh", u), numpy=lambda np, x: np.cosh(x),
       sympy=lambda sp, x: sp.cosh(x), latex="\\cosh", nonnegative=True),
    _E("log1p", derivative=lambda d, u: d.recip(d.add(d.one, u)), numpy=lambda np, x: np.log1p(x),
       sympy=lambda sp, x: sp.log(1 + x), domain="above-1"),
    _E("expm1", derivative=lambda d, u: d.apply("exp", u), numpy=lambda np, x: np.expm1(x),
       sympy=lambda sp, x: sp.exp(x) - 1),
)

#: The element-wise functions by canonical name, in the language's order.
ELEMENTWISE: dict[str, Elementwise] = {op.name: op for op in _ELEMENTWISE_RECORDS}
