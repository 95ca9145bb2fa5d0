"""Property: every derivative matcalc gives agrees with SymPy's entry-by-entry derivative.

Random well-typed expressions (depth up to 6) are built with the constructors of :mod:`matcalc.nodes`
over scalars ``a, b``, vectors ``x, y`` (length n) and matrices ``A, B`` (n x n), ``C`` (n x m). Every
operator and function of the language appears: + - * ⊙ ⊘ / · ^ .^ ' exp log sin cos tan arcsin arccos
arctan tanh sigmoid relu softplus sqrt abs sign max(0, e) min(0, e) erf gelu silu elu sinh cosh log1p expm1
leaky_relu clip sum mean dot norm norm1 tr det logdet logsumexp inv diag softmax outer kron, and (issue 15) the
axis-wise reductions sum mean var norm max min logsumexp with axis=0 and axis=1, one-argument max/min, row-
and column-wise softmax and log_softmax, and vectors broadcast against matrices, built by :mod:`matcalc.axes`
exactly as the parser builds them. Domains are kept safe by construction: log and sqrt see ``u.^2 + 1`` or
``exp(u)``, log1p those or ``0.5 tanh(u)``, arcsin and arccos see ``0.5 tanh(u)``, tan sees ``tanh(u)``,
divisors are positive forms, and inv / det / logdet see ``M M' + I``.

Each expression is differentiated with respect to its variables (numerator layout, and denominator for
some) and the result is checked with :func:`matcalc.verify.check_derivative` (numeric method). The only
acceptable outcomes are a passing check or :class:`~matcalc.NoMatrixFormError` for a derivative with three
or more axes; a mismatch fails the test, and so does a refusal of a derivative with at most two axes
(issue #16: a matrix-shaped derivative always has its matrix form). A third test does the same for
Jacobians of vectors with respect to vectors.

CI runs 30 fixed (derandomized) examples, so a landing never hangs on a newly drawn case;
``MATCALC_LONG=1`` runs 5000 random ones (see docs/verification.md).
"""

from __future__ import annotations

import os
from fractions import Fraction

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from matcalc import NoMatrixFormError, axes
from matcalc import nodes as N
from matcalc.diff import derive
from matcalc.printing import to_text
from matcalc.shapes import Dim
from matcalc.verify import check_derivative

LONG = os.environ.get("MATCALC_LONG") == "1"
MAX_EXAMPLES = int(os.environ.get("MATCALC_LONG_EXAMPLES", "5000")) if LONG else 30
#: Seconds per check; a check that runs out is counted (hypothesis event) but is not a failure.
TIME_BUDGET = 20.0 if LONG else 4.0
#: In the long run, a running tally of outcomes is appended here (one line per example), so a run that
#: is stopped early still says how far it got.
LOG = os.environ.get("MATCALC_LONG_LOG")


def _log(outcomes) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(" ".join(outcomes) + "\n")

n, m = Dim("n"), Dim("m")
a, b = N.Symbol("a", ()), N.Symbol("b", ())
x, y = N.Symbol("x", (n, 1)), N.Symbol("y", (n, 1))
A, B = N.Symbol("A", (n, n)), N.Symbol("B", (n, n))
C = N.Symbol("C", (n, m))
I_n = N.Identity(n)
HALF, ONE, TWO, THREE = N.Number(Fraction(1, 2)), N.Number(1), N.Number(2), N.Number(3)

LEAVES = {"s": [a, b], "v": [x, y], "M": [A, B], "C": [C]}
#: Element-wise functions that are defined and smooth enough everywhere (kinks are avoided by the checker).
SAFE = ["exp", "sin", "cos", "arctan", "tanh", "sigmoid", "relu", "softplus", "abs", "sign",
        "erf", "gelu", "silu", "elu", "sinh", "cosh", "expm1"]  # the last line: issue #15
MAX_DEPTH = 6


# --- safe forms -----------------------------------------------------------------------------------------------
def positive(u):
    """A strictly positive form of ``u`` (entry-wise): ``u.^2 + 1`` or ``exp(u)``."""
    if u.shape == ():
        return N.Add(N.Power(u, TWO), ONE)
    return N.Add(N.ElemPower(u, TWO), ONE)


def bounded(u):
    """``0.5 tanh(u)``: inside (-1/2, 1/2), for arcsin and arccos."""
    return N.MatMul(HALF, N.Apply("tanh", u))


def well_conditioned(M):
    """``M M' + I``: symmetric positive definite with eigenvalues >= 1."""
    return N.Add(N.MatMul(M, N.Transpose(M)), I_n)


def apply_fn(draw, u):
    f = draw(st.sampled_from(SAFE + ["log", "sqrt", "arcsin", "arccos", "tan", "min0", "max0", "log1p", "leaky",
                                     "clip"]))
    if f in ("log", "sqrt"):
        inner = positive(u) if draw(st.booleans()) else N.Apply("exp", u)
        return N.Apply(f, inner)
    if f == "log1p":  # u > -1: u.^2 + 1, exp(u) or 0.5 tanh(u)
        return N.Apply(f, draw(st.sampled_from([positive(u), N.Apply("exp", u), bounded(u)])))
    if f in ("leaky", "clip"):
        return _piecewise(draw, f, u)
    if f in ("arcsin", "arccos"):
        return N.Apply(f, bounded(u))
    if f == "tan":
        return N.Apply("tan", N.Apply("tanh", u))
    if f == "max0":  # max(0, e), as the parser builds it
        return N.Apply("relu", u)
    if f == "min0":  # min(0, e) = -relu(-e)
        return N.Neg(N.Apply("relu", N.Neg(u)))
    return N.Apply(f, u)


def _piecewise(draw, f, u):
    """``leaky_relu(u, slope)`` and ``clip(u, lo, hi)`` as the parser builds them (identities in relu)."""
    def minus(c):
        return N.Add(u, N.Neg(c))

    if f == "leaky":  # relu(u) - slope relu(-u)
        slope = draw(st.sampled_from([a, b, N.Number(Fraction(1, 100))]))
        return N.Add(N.Apply("relu", u), N.Neg(N.MatMul(slope, N.Apply("relu", N.Neg(u)))))
    lo, hi = draw(st.sampled_from([(N.Neg(HALF), ONE), (a, b), (N.Neg(ONE), a)]))
    return N.Add(lo, N.Apply("relu", minus(lo)), N.Neg(N.Apply("relu", minus(hi))))


# --- the strategy -------------------------------------------------------------------------------------------------
@st.composite
def expr(draw, kind: str, depth: int = MAX_DEPTH):
    if depth <= 0 or draw(st.integers(0, 9)) < 2:
        return draw(st.sampled_from(LEAVES[kind]))
    sub = lambda k: expr(k, depth - 1)  # noqa: E731
    return draw(st.sampled_from(BUILDERS[kind]))(draw, sub)


def shallow(s, kind):
    """The argument of inv / det / logdet / kron: at most one operation deep. SymPy's explicit inverse
    of a deep 2 x 2 expression swells past any sensible time budget; the rule is the same at any depth."""
    return expr(kind, 1)


def _scalar_builders():
    return [
        lambda d, s: N.Add(d(s("s")), d(s("s"))),
        lambda d, s: N.Add(d(s("s")), N.Neg(d(s("s")))),
        lambda d, s: N.MatMul(d(s("s")), d(s("s"))),
        lambda d, s: N.Div(d(s("s")), positive(d(s("s")))),
        lambda d, s: N.Power(d(s("s")), d(st.sampled_from([TWO, THREE]))),
        lambda d, s: N.Power(positive(d(s("s"))), d(st.sampled_from([HALF, N.Number(-1)]))),
        lambda d, s: N.Neg(d(s("s"))),
        lambda d, s: apply_fn(d, d(s("s"))),
        lambda d, s: N.Sum(d(s(d(st.sampled_from(["v", "M", "C"]))))),
        lambda d, s: N.Mean(d(s(d(st.sampled_from(["v", "M", "C"]))))),
        lambda d, s: N.Dot(d(s("v")), d(s("v"))),
        lambda d, s: N.Norm(positive(d(s("v"))), 2),
        lambda d, s: N.Power(N.Norm(d(s(d(st.sampled_from(["v", "C"])))), 2), TWO),
        lambda d, s: N.Norm(d(s(d(st.sampled_from(["v", "M"])))), 1),
        lambda d, s: N.Trace(d(s("M"))),
        lambda d, s: N.Det(well_conditioned(d(shallow(s, "M")))),
        lambda d, s: N.LogDet(well_conditioned(d(shallow(s, "M")))),
        lambda d, s: N.LogSumExp(d(s("v"))),
        lambda d, s: N.MatMul(N.Transpose(d(s("v"))), d(s("M")), d(s("v"))),
        lambda d, s: N.Sum(N.Kron(d(shallow(s, "v")), d(shallow(s, "v")))),
        lambda d, s: N.Trace(N.Kron(d(shallow(s, "M")), d(shallow(s, "M")))),
    ]


def _vector_builders():
    return [
        lambda d, s: N.Add(d(s("v")), d(s("v"))),
        lambda d, s: N.Add(d(s("v")), N.Neg(d(s("v")))),
        lambda d, s: N.Add(d(s("v")), d(s("s"))),
        lambda d, s: N.Neg(d(s("v"))),
        lambda d, s: N.MatMul(d(s("M")), d(s("v"))),
        lambda d, s: N.MatMul(d(s("s")), d(s("v"))),
        lambda d, s: N.MatMul(d(s("C")), N.Transpose(d(s("C"))), d(s("v"))),
        lambda d, s: N.Div(d(s("v")), positive(d(s("s")))),
        lambda d, s: N.Hadamard(d(s("v")), d(s("v"))),
        lambda d, s: N.ElemDiv(d(s("v")), positive(d(s("v")))),
        lambda d, s: N.ElemPower(d(s("v")), d(st.sampled_from([TWO, THREE]))),
        lambda d, s: N.ElemPower(positive(d(s("v"))), HALF),
        lambda d, s: apply_fn(d, d(s("v"))),
        lambda d, s: N.Softmax(d(s("v"))),
        lambda d, s: N.DiagVec(d(s("M"))),
        lambda d, s: N.MatMul(N.Inv(well_conditioned(d(shallow(s, "M")))), d(s("v"))),
    ]


def _matrix_builders():
    return [
        lambda d, s: N.Add(d(s("M")), d(s("M"))),
        lambda d, s: N.Add(d(s("M")), N.Neg(d(s("M")))),
        lambda d, s: N.Add(d(s("M")), d(s("s"))),
        lambda d, s: N.Neg(d(s("M"))),
        lambda d, s: N.MatMul(d(s("M")), d(s("M"))),
        lambda d, s: N.MatMul(d(s("s")), d(s("M"))),
        lambda d, s: N.Transpose(d(s("M"))),
        lambda d, s: N.Hadamard(d(s("M")), d(s("M"))),
        lambda d, s: N.ElemDiv(d(s("M")), positive(d(s("M")))),
        lambda d, s: N.ElemPower(d(s("M")), TWO),
        lambda d, s: N.Div(d(s("M")), positive(d(s("s")))),
        lambda d, s: apply_fn(d, d(s("M"))),
        lambda d, s: N.Inv(well_conditioned(d(shallow(s, "M")))),
        lambda d, s: N.DiagMat(d(s("v"))),
        lambda d, s: N.MatMul(d(s("v")), N.Transpose(d(s("v")))),  # outer(u, v)
        lambda d, s: N.MatMul(d(s("C")), N.Transpose(d(s("C")))),
        lambda d, s: N.Power(d(s("M")), TWO),
    ]


def _c_builders():
    return [
        lambda d, s: N.Add(d(s("C")), d(s("C"))),
        lambda d, s: N.Add(d(s("C")), N.Neg(d(s("C")))),
        lambda d, s: N.Neg(d(s("C"))),
        lambda d, s: N.MatMul(d(s("M")), d(s("C"))),
        lambda d, s: N.MatMul(d(s("s")), d(s("C"))),
        lambda d, s: N.Hadamard(d(s("C")), d(s("C"))),
        lambda d, s: apply_fn(d, d(s("C"))),
    ]


# --- issue 15: axes and broadcasting, as matcalc.axes builds them from the parser's calls --------------------
AXIS = st.sampled_from([0, 1])
REDUCE = [axes.axis_sum, axes.axis_mean, axes.axis_var, axes.axis_norm, axes.axis_max, axes.axis_min,
          axes.axis_logsumexp]


def _reduce(d, kind, s, axis):
    """``f(e, axis=axis)`` of a random reduction ``f`` of a random expression of ``kind``."""
    f = d(st.sampled_from(REDUCE))
    e = d(s(kind))
    return f(e, axis)


def _column_of_rows(d, s):
    """A column of length n from a reduction: along the rows of an n x n or n x m matrix, or the transpose
    of the reduction down the columns of an n x n one."""
    if d(st.booleans()):
        return _reduce(d, d(st.sampled_from(["M", "C"])), s, 1)
    return N.Transpose(_reduce(d, "M", s, 0))


def _broadcast(d, s, kind, op):
    """``op`` of a matrix with a vector repeated over its rows or columns (NumPy's broadcasting)."""
    matrix = d(s(kind))
    if kind == "M" and d(st.booleans()):
        vector = d(s("v"))  # a column of length n: over the columns
    else:
        vector = _reduce(d, kind, s, 0)  # a row of the matrix's width: over the rows
    operands = axes.broadcast([matrix, vector] if d(st.booleans()) else [vector, matrix])
    if op == "ediv":
        return N.ElemDiv(operands[0], positive(operands[1]))
    if op == "max":
        x_, y_ = operands
        return N.Add(y_, N.Apply("relu", N.Add(x_, N.Neg(y_))))  # max(a, b), as the parser builds it
    return (N.Add if op == "add" else N.Hadamard)(*operands)


def _axis_builders():
    return {
        "s": [lambda d, s: axes.axis_max(d(s(d(st.sampled_from(["v", "M", "C"])))), None),
              lambda d, s: axes.axis_min(d(s(d(st.sampled_from(["v", "C"])))), None),
              lambda d, s: axes.axis_var(d(s(d(st.sampled_from(["v", "C"])))), None),
              lambda d, s: N.Sum(axes.log_softmax(d(s("v")), None)),
              lambda d, s: N.Sum(_reduce(d, d(st.sampled_from(["M", "C"])), s, d(AXIS)))],
        "v": [lambda d, s: _column_of_rows(d, s),
              lambda d, s: axes.log_softmax(d(s("v")), None),
              lambda d, s: axes.softmax(d(s("v")), None)],
        "M": [lambda d, s: axes.softmax(d(s("M")), d(AXIS)),
              lambda d, s: axes.log_softmax(d(s("M")), d(AXIS)),
              lambda d, s: _broadcast(d, s, "M", d(st.sampled_from(["add", "had", "ediv", "max"])))],
        "C": [lambda d, s: axes.softmax(d(s("C")), d(AXIS)),
              lambda d, s: N.Add(d(s("C")), N.Neg(axes.expand(axes.axis_mean(d(s("C")), d(AXIS)), C.shape))),
              lambda d, s: _broadcast(d, s, "C", d(st.sampled_from(["add", "had", "max"])))],
    }


BUILDERS = {"s": _scalar_builders(), "v": _vector_builders(), "M": _matrix_builders(), "C": _c_builders()}
for _kind, _extra in _axis_builders().items():
    BUILDERS[_kind] += _extra
del _kind, _extra


# --- the property ------------------------------------------------------------------------------------------------
def _axes(node) -> int:
    """How many axes a value of this shape has (a vector has one, whichever its orientation)."""
    return 0 if node.shape == () else 1 if 1 in node.shape else 2


class Refused(AssertionError):
    """A derivative with at most two axes was refused."""


def _refused(e, variable, order: int, err: NoMatrixFormError) -> str:
    """A refusal is acceptable only for a derivative with three or more axes (issue #16): a matrix-shaped
    derivative always has its matrix form, so refusing it fails the test."""
    axes = order * _axes(variable) + _axes(e)
    if axes <= 2:
        _log(["REFUSED"])
        raise Refused(f"refused a derivative with {axes} axes: order {order} of {to_text(e)} "
                             f"wrt {variable.name}: {err}")
    return "nomatrixform"


def _verify(e, variable, layout):
    try:
        d = derive(e, variable, layout=layout)
    except NoMatrixFormError as err:
        return _refused(e, variable, 1, err)
    report = check_derivative(d, points=2, time_budget=TIME_BUDGET, exact=False)
    label = f"d({to_text(e)})/d{variable.name} [{layout}] = {d}"
    if report.method == "timeout":  # undecided, not wrong: SymPy's explicit form was too big to build
        event("check timed out")
        return "timeout"
    if report.method == "error" and report.points_checked == 0:
        # undecided, not wrong: no sample point avoids every kink and singularity (e.g. norm(x - x))
        event("no usable sample point")
        return "undecided"
    assert report.ok, f"{label}\n{report}"
    event(f"checked ({report.method})")
    return "tensor" if hasattr(d, "kronecker") else "ok"


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data(), kind=st.sampled_from(["s", "s", "s", "v", "v", "M"]))
def test_derivatives_agree_with_sympy(data, kind):
    e = data.draw(expr(kind), label="expression")
    variables = N.symbols_of(e)
    chosen = data.draw(st.lists(st.sampled_from(variables), min_size=1, max_size=3 if LONG else 2, unique=True),
                       label="wrt")
    outcomes = []
    for v in chosen:
        layout = data.draw(st.sampled_from(["numerator", "numerator", "denominator"]), label="layout")
        try:
            outcomes.append(_verify(e, v, layout))
        except Refused:
            raise
        except AssertionError:
            _log(outcomes + ["MISMATCH"])
            raise
        except Exception:
            _log(outcomes + ["CRASH"])
            raise
    _log(outcomes)


@settings(max_examples=max(10, MAX_EXAMPLES // 4), deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hessians_agree_with_sympy(data):
    e = data.draw(expr("s", 4), label="expression")
    scalars_and_vectors = [s for s in N.symbols_of(e) if s.shape == () or s.shape[1] == 1]
    if not scalars_and_vectors:
        _log(["novariable"])
        return
    v = data.draw(st.sampled_from(scalars_and_vectors), label="wrt")
    try:
        d = derive(e, v, order=2)
    except NoMatrixFormError as err:
        _refused(e, v, 2, err)
        _log(["nomatrixform"])
        return
    except Exception:
        _log(["CRASH"])
        raise
    report = check_derivative(d, points=2, time_budget=TIME_BUDGET, exact=False)
    if report.method == "timeout":
        event("check timed out")
        _log(["timeout"])
        return
    if report.method == "error" and report.points_checked == 0:
        event("no usable sample point")
        _log(["undecided"])
        return
    if not report.ok:
        _log(["MISMATCH"])
    assert report.ok, f"Hessian of {to_text(e)} wrt {v.name} = {d}\n{report}"
    _log(["hessian"])


@settings(max_examples=max(10, MAX_EXAMPLES // 4), deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_vector_jacobians_agree_with_sympy(data):
    """Jacobians of vectors with respect to vectors: n x n matrices, so never refused (issue #16)."""
    e = data.draw(expr("v", 5), label="expression")
    vectors = [s for s in N.symbols_of(e) if s.shape != () and s.shape[1] == 1]
    if not vectors:
        _log(["novariable"])
        return
    v = data.draw(st.sampled_from(vectors), label="wrt")
    layout = data.draw(st.sampled_from(["numerator", "denominator"]), label="layout")
    try:
        outcome = _verify(e, v, layout)
    except Refused:
        raise
    except AssertionError:
        _log(["MISMATCH"])
        raise
    except Exception:
        _log(["CRASH"])
        raise
    _log(["jacobian" if outcome == "ok" else outcome])
