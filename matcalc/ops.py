"""The operation catalogue: everything matcalc knows about each function of the language, in one record.

Why: an operation used to be spread over a dozen files (grammar, nodes, typecheck, rules, numeric,
sympy_backend, the printers, code generation, verify), and a file that was missed failed silently (the
code printer would emit ``np.gelu``). Every consumer now reads this module instead of keeping its own
table, and ``tests/test_ops.py`` checks that every record is complete in every consumer.

Two kinds of record:

* :class:`Elementwise` - a scalar function applied to every entry (node :class:`matcalc.nodes.Apply`).
  Its record holds the whole operation: spellings, derivative, NumPy/SymPy evaluation, generated code per
  target, LaTeX/Unicode spellings and the facts verification and the code rewrites need. Adding one is
  one record here plus its tests and a line of docs (see docs/design.md, "How to add an operation").
* :class:`Function` - the other calls (reductions, ``det``, ``softmax``, ``kron`` ...): their spellings,
  arity, argument kinds, node class and LaTeX spelling. Their shape, differential and evaluation rules
  are methods of their node class in the consumers (one ``_print_<Class>``/``d_<Class>`` each).

This module imports nothing of matcalc (and neither NumPy nor SymPy): it sits at the bottom of the import
graph, and the callables below receive the module or builder they need as their first argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Elementwise", "Function", "ELEMENTWISE", "FUNCTIONS", "ALIASES", "FUNCTION_NAMES", "lookup"]


class Elementwise:
    """One element-wise function ``f``, applied entry by entry.

    ``derivative(d, u)`` builds f'(u) with the differentiation builder ``d`` (``d.apply(name, u)``,
    ``d.add``, ``d.neg``, ``d.mul``, ``d.had``, ``d.div``, ``d.square``, ``d.recip``, ``d.number(k)``,
    ``d.one``) and returns None where f' is 0 almost everywhere (sign, step). ``numpy(np, x)`` and
    ``sympy(sp, x)`` evaluate it. ``code`` maps a code-generation target (``numpy``, ``jax``, ``torch``)
    to a template over ``{x}`` (the argument), ``{x_unary}`` (the argument bracketed as an operand of
    unary minus) and ``{<name>}`` (the target module's function ``name``, e.g. ``{exp}`` is ``np.exp``);
    a target without a template calls the module's function of the same name; ``preamble`` holds, per
    target, the module-level definitions a template calls (NumPy has no erf). ``latex`` is the LaTeX
    command of the call form, or a template over ``{x}`` for a non-call form (``\\sqrt{{{x}}}``).
    """

    __slots__ = ("name", "aliases", "derivative", "numpy", "sympy", "code", "preamble", "latex", "unicode",
                 "letter", "kink", "nonnegative", "domain")

    def __init__(self, name: str, *, derivative: Callable, numpy: Callable, sympy: Callable,
                 code: dict[str, str] | None = None, preamble: dict[str, str] | None = None,
                 latex: str | None = None, unicode: str | None = None, letter: str | None = None,
                 aliases: tuple[str, ...] = (), kink: bool = False, nonnegative: bool = False,
                 domain: str | None = None):
        self.name = name
        #: other spellings the parser accepts (``ln`` for log, ``σ`` for sigmoid)
        self.aliases = aliases
        self.derivative = derivative
        self.numpy = numpy
        self.sympy = sympy
        self.code = code or {}
        #: per target, module-level source the template calls (a helper the library lacks: NumPy's erf);
        #: the helpers' names start with ``_matcalc_``, which generated code never gives a variable
        self.preamble = preamble or {}
        self.latex = latex if latex is not None else f"\\operatorname{{{name}}}"
        #: the Unicode printer's spelling of the name
        self.unicode = unicode or name
        #: the letter a named subexpression f(u) gets in printed derivations (σ(u) is a probability p)
        self.letter = letter
        #: non-differentiable at 0: verify keeps sample points away from the kink
        self.kink = kink
        #: every value is >= 0 (the code rewrites use it, e.g. sqrt of a weight)
        self.nonnegative = nonnegative
        #: None (all reals), "positive" (x > 0), "unit" (|x| < 1) or "above-1" (x > -1): where verify samples
        self.domain = domain

    def code_template(self, targets: tuple[str, ...]) -> str:
        """The code template of the first of ``targets`` that has one, else the plain call."""
        return self.code_and_preamble(targets)[0]

    def code_and_preamble(self, targets: tuple[str, ...]) -> tuple[str, str | None]:
        """The code template of the first of ``targets`` that has one and the preamble it needs (or None);
        else the plain call."""
        for target in targets:
            if target in self.code:
                return self.code[target], self.preamble.get(target)
        return "{" + self.name + "}({x})", None

    def __repr__(self) -> str:
        return f"Elementwise({self.name!r})"


class Function:
    """A call of the language that is not element-wise: its spellings, arity, argument kinds, node class.

    ``arity`` is (least, most) arguments, most None for any number. ``matrix_arg``: the argument is a
    square matrix (tr, det, logdet, inv). ``forces_vector``: an argument of undeclared kind is inferred to
    be a vector rather than a scalar. ``node`` names the :mod:`matcalc.nodes` class the call builds (None
    where it is rewritten: ``max(a, b) = b + relu(a - b)``; a size constant). ``axis``: the call takes the
    keyword ``axis=0|1|-1`` (``dim=`` too) of one argument (docs/language.md, "Axes"); ``rows`` names the
    node class of its row-wise form on a matrix, where it has one of its own.
    """

    __slots__ = ("name", "aliases", "arity", "node", "matrix_arg", "forces_vector", "latex", "axis", "rows")

    def __init__(self, name: str, node: str | None, arity: tuple[int, int | None] = (1, 1), *,
                 aliases: tuple[str, ...] = (), matrix_arg: bool = False, forces_vector: bool = False,
                 latex: str | None = None, axis: bool = False, rows: str | None = None):
        self.name = name
        self.axis = axis
        self.rows = rows
        self.node = node
        self.arity = arity
        self.aliases = aliases
        self.matrix_arg = matrix_arg
        self.forces_vector = forces_vector or matrix_arg
        self.latex = latex if latex is not None else f"\\operatorname{{{name}}}"

    def __repr__(self) -> str:
        return f"Function({self.name!r})"


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
    _E("erf", derivative=lambda d, u: d.div(d.mul(d.number(2), d.apply("exp", d.neg(d.square(u)))),
                                            d.apply("sqrt", d.pi)),
       numpy=_erf_numpy, sympy=lambda sp, x: sp.erf(x),
       code={"numpy": "_matcalc_erf({x})", "jax": "jax.scipy.special.erf({x})"},
       preamble={"numpy": ERF_PREAMBLE}),
    _E("gelu", derivative=_gelu_derivative, numpy=_gelu_numpy,
       sympy=lambda sp, x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
       code={"numpy": f"0.5 * ({{x}}) * _matcalc_erfc(({{x}}) * -{_SQRT_HALF!r})",
             "jax": "jax.nn.gelu({x}, approximate=False)", "torch": "torch.nn.functional.gelu({x})"},
       preamble={"numpy": ERF_PREAMBLE}, latex="\\operatorname{GELU}", unicode="gelu"),
    _E("silu", aliases=("swish",), derivative=_silu_derivative, numpy=_silu_numpy,
       sympy=lambda sp, x: x / (1 + sp.exp(-x)),
       code={"numpy": f"({{x}}) * {_SIGMOID}", "jax": "jax.nn.silu({x})", "torch": "torch.nn.functional.silu({x})"}),
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

# --- the other calls --------------------------------------------------------------------------------------
_F = Function
_FUNCTION_RECORDS = (
    # max(e) reduces (MaxRows, the row maxima; its derivative the tie-splitting MaxRowsMask);
    # max(a, b) = b + relu(a - b) is element-wise
    _F("max", "MaxRows", (1, 2), axis=True, rows="MaxRows"),
    _F("min", "MaxRows", (1, 2), axis=True, rows="MaxRows"),  # min(e) = -max(-e)
    _F("sum", "Sum", forces_vector=True, axis=True),
    _F("mean", "Mean", forces_vector=True, axis=True),
    _F("var", None, forces_vector=True, axis=True),  # mean((e - mean(e)).^2), biased as numpy.var
    _F("dot", "Dot", (2, 2), forces_vector=True),
    _F("norm", "Norm", forces_vector=True, aliases=("norm2",), axis=True),
    _F("norm1", "Norm", forces_vector=True),
    _F("tr", "Trace", aliases=("trace",), matrix_arg=True, latex="\\operatorname{tr}"),
    _F("det", "Det", matrix_arg=True, latex="\\det"),
    _F("logdet", "LogDet", matrix_arg=True, latex="\\log\\det"),
    _F("logsumexp", "LogSumExp", forces_vector=True, axis=True, rows="LogSumExpRows"),
    _F("inv", "Inv", matrix_arg=True),
    _F("diag", "DiagMat", forces_vector=True),  # diag(vector) is DiagMat; diag(matrix) is DiagVec
    _F("softmax", "Softmax", forces_vector=True, axis=True, rows="SoftmaxRows"),
    # maxmask(X): the derivative weights of max(X, axis=1), 1/t on each row's t tied largest entries
    _F("maxmask", "MaxRowsMask", forces_vector=True, axis=True, rows="MaxRowsMask"),
    _F("log_softmax", None, forces_vector=True, axis=True, latex="\\operatorname{log\\_softmax}"),
    _F("outer", "MatMul", (2, 2), forces_vector=True),
    _F("kron", "Kron", (2, 2), forces_vector=True),
    _F("ones", "Ones", (1, 2), forces_vector=True),
    _F("zeros", "Zeros", (1, 2), forces_vector=True),
    _F("eye", "Identity", (1, 1), forces_vector=True),
    _F("vector", "VectorLit", (1, None), forces_vector=True),
    _F("matrix", "MatrixLit", (1, None), forces_vector=True),
    _F("numel", "Numel", forces_vector=True),
    _F("leaky_relu", None, (2, 2)),  # leaky_relu(e, a) = relu(e) - a relu(-e)
    _F("clip", None, (3, 3)),  # clip(e, lo, hi) = lo + relu(e - lo) - relu(e - hi)
)

#: The other calls by canonical name.
FUNCTIONS: dict[str, Function] = {op.name: op for op in _FUNCTION_RECORDS}

#: Every spelling of a call (canonical names and aliases) -> its canonical name.
ALIASES: dict[str, str] = {}
for _op in (*_ELEMENTWISE_RECORDS, *_FUNCTION_RECORDS):
    for _spelling in (_op.name, *_op.aliases):
        ALIASES[_spelling] = _op.name
del _op, _spelling

#: Every function name the grammar accepts (its FUNCNAME terminal is generated from this), in order.
FUNCTION_NAMES: tuple[str, ...] = tuple(ALIASES)


def lookup(spelling: str) -> Elementwise | Function | None:
    """The record of a spelling of a call, or None."""
    name = ALIASES.get(spelling)
    return ELEMENTWISE.get(name) or FUNCTIONS.get(name) if name else None
