"""Verification: every closed-form derivative checked against SymPy's entry-by-entry derivative.

:func:`check_derivative` (also ``Derivative.check()``) instantiates the symbolic dimensions at small,
distinct sizes (2, 3, 4, ... by default, so a transposed result cannot pass), writes the original function
out entry by entry as explicit SymPy matrices (:func:`matcalc.sympy_backend.to_explicit`), and
differentiates it with SymPy to get the ground truth, arranged in the layout of the closed form:

=====================  ==================  ===============================  ==========================
function F             variable X          numerator layout                 denominator layout
=====================  ==================  ===============================  ==========================
any                    scalar              dF/dx, shaped like F             the transpose if F is a
                                                                            vector, else the same
scalar                 vector (n)          row 1 x n                        column n x 1
scalar                 matrix (m x n)      n x m (the transpose)            m x n
vector (p)             vector (n)          p x n (the Jacobian)             n x p
scalar, order 2        scalar or vector    the Hessian (n x n)              the same
=====================  ==================  ===============================  ==========================

*Symmetric variables.* matcalc's gradient with respect to a symmetric matrix ``S`` is the symmetric
gradient ``(G + Gᵀ)/2`` (``G`` the unconstrained gradient). SymPy writes ``S`` with one symbol per pair
``S_ij = S_ji``, and the derivative with respect to that shared symbol is ``G_ij + G_ji``. So for
``i != j`` SymPy's derivative is compared with ``C_ij + C_ji`` and on the diagonal with ``C_ii``, where
``C`` is the closed form: a closed form that is right on symmetric matrices passes.

The comparison is numeric first (the closed form through :func:`matcalc.numeric.evaluate`, the truth
through :func:`matcalc.sympy_backend.numeric_value`, at ``points`` random points where everything is
defined), then exact (``simplify(truth - closed) == 0`` entry by entry) in what is left of the time
budget. The whole check runs in a forked worker process that is killed at the deadline, so a check never
hangs: it reports ``method="timeout"`` (or keeps the numeric verdict if only the exact phase was cut).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import nodes as N
from . import ops
from .errors import CheckError, MatcalcError, NoMatrixFormError
from .shapes import Dim, is_column, is_matrix, is_row, is_vector

__all__ = ["CheckReport", "ClaimReport", "check_derivative", "judge_claim", "check_sizes"]

#: Arguments closer than this to a kink (relu, abs, sign, step, norm1) are rejected as sample points.
KINK_DISTANCE = 1e-6
#: Denominators, log/sqrt arguments and negative-power bases must be at least this far from 0.
POLE_DISTANCE = 1e-2
#: A numeric entry passes when |closed - truth| <= TOLERANCE * |truth| + ABS_FLOOR: each entry against its
#: own magnitude (a wrong small entry next to large ones is caught), with a small absolute floor for
#: entries that are 0 or nearly (float64 rounding of a cancelling sum).
TOLERANCE = 1e-7
ABS_FLOOR = 1e-9
#: The exact phase evaluates the difference truth - closed of an entry at the sample points with this
#: many certified significant digits (exact rational inputs, SymPy's evalf(strict=True)): a value beyond
#: NONZERO * max(1, |truth|) proves the entry differs, whatever simplify() says or fails to say.
DIGITS = 50
NONZERO = 1e-30

#: Facts of the element-wise functions, from the catalogue: kinks, and domains to sample inside.
_KINKS = {name for name, op in ops.ELEMENTWISE.items() if op.kink}
_POSITIVE = {name for name, op in ops.ELEMENTWISE.items() if op.domain == "positive"}
_UNIT = {name for name, op in ops.ELEMENTWISE.items() if op.domain == "unit"}
_ABOVE_MINUS_ONE = {name for name, op in ops.ELEMENTWISE.items() if op.domain == "above-1"}
#: Sampling regimes (low, high) for the entries of the variables, tried in turn when a point is rejected.
_REGIMES = {"generic": (-1.0, 1.0), "positive": (0.3, 1.3), "small": (-0.45, 0.45),
            "small-positive": (0.1, 0.45)}


# --- reports ------------------------------------------------------------------------------------------------
def _fmt_value(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=4, suppress_small=True, separator=", ").replace("\n", "")
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _fmt_pair(expected, got) -> tuple[str, str]:
    """Two numbers with just enough digits to show that they differ (at most 17)."""
    if not (isinstance(expected, float) and isinstance(got, float)):
        return _fmt_value(expected), _fmt_value(got)
    for digits in range(6, 18):
        a, b = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if a != b:
            break
    return a, b


@dataclass
class CheckReport:
    """The verdict of :func:`check_derivative`.

    ``ok``: the closed form agrees with SymPy. ``method``: ``"exact"`` (every entry of the difference
    simplified to 0), ``"numeric"`` (agreement at ``points_checked`` random points), ``"timeout"`` (the
    check did not finish in its time budget; ``ok`` is False) or ``"error"`` (it could not be carried out;
    ``note`` says why). On a failure ``entry`` is the index of a differing entry (``()`` for a scalar,
    ``(i,)`` for a vector, ``(i, j)`` for a matrix), ``point`` the values of the variables there, and
    ``expected`` (SymPy) and ``got`` (the closed form) the two numbers.
    """

    ok: bool
    method: str
    sizes: dict[str, int]
    max_error: float | None = None
    points_checked: int = 0
    entry: tuple | None = None
    point: dict[str, Any] | None = None
    expected: float | None = None
    got: float | None = None
    note: str = ""
    elapsed: float = 0.0
    what: str = ""
    compared: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "no symbolic sizes"
        head = f"{self.what}: " if self.what else ""
        if self.ok:
            how = ("exactly (the difference simplifies to 0)" if self.method == "exact"
                   else f"numerically at {self.points_checked} random point(s)")
            err = "" if self.max_error is None else f", max error {self.max_error:.2g}"
            out = f"OK {head}agrees with SymPy {how} at {sizes}{err}"
        elif self.method == "timeout":
            out = f"UNDECIDED {head}the check did not finish within its time budget at {sizes}"
        elif self.method == "error":
            out = f"ERROR {head}the check could not be carried out at {sizes}"
        else:
            against = "evaluate()" if self.method == "code" else "SymPy"
            out = f"WRONG {head}differs from {against} at {sizes}"
            if self.entry is not None:
                e, g = _fmt_pair(self.expected, self.got)
                out += f"\n  entry {self.entry}: expected {e}, got {g}"
            if self.max_error is not None:
                out += f" (error {self.max_error:.3g})"
            if self.point:
                out += "\n  at " + ", ".join(f"{k} = {_fmt_value(v)}" for k, v in self.point.items())
        if self.compared:
            out += f"\n  ({self.compared})"
        if self.note:
            out += f"\n  note: {self.note}"
        return out


@dataclass
class ClaimReport:
    """The verdict of :func:`matcalc.check_claim`: ``ok``, a readable ``message``, the ``correct`` Derivative
    (None when matcalc has no matrix form for it), and where a wrong claim differs (``entry``, ``point``,
    ``expected`` = the right value, ``got`` = the claim's value). ``check`` is the underlying
    :class:`CheckReport` (None when the claim could not even be compared, e.g. a wrong shape)."""

    ok: bool
    message: str
    correct: Any = None
    entry: tuple | None = None
    point: dict[str, Any] | None = None
    expected: Any = None
    got: Any = None
    check: CheckReport | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message


# --- sizes -----------------------------------------------------------------------------------------------------
def check_sizes(*nodes: N.Node, sizes: Mapping | None = None) -> dict[str, int]:
    """Concrete sizes for the symbolic dimensions of ``nodes``: distinct 2, 3, 4, ... in order of first
    appearance (as :func:`matcalc.sympy_backend.default_sizes`), overridden by ``sizes`` (by name)."""
    dims: list[Dim] = []
    for node in nodes:
        for d in N.dims_in(node):
            if d not in dims:
                dims.append(d)
    out = {d.name: 2 + i for i, d in enumerate(dims)}
    for key, value in (sizes or {}).items():
        name = key.name if isinstance(key, Dim) else str(key)
        if name not in out:
            known = ", ".join(out) or "none"
            raise CheckError(f"sizes names the dimension {name!r}, which does not occur (dimensions: {known})")
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise CheckError(f"the size of {name} must be a positive integer, not {value!r}")
        out[name] = int(value)
    return out


# --- the ground truth ------------------------------------------------------------------------------------------
def _as_matrix(v):
    import sympy

    return v if isinstance(v, sympy.MatrixBase) else sympy.Matrix([[v]])


def _flat_kinks(e):
    """Zero for the derivative of sign and step away from their kink (where every sample point lies):
    SymPy writes it as DiracDelta, or leaves ``Derivative(sign(u), x)`` unevaluated when it cannot tell
    that ``u`` is real."""
    import sympy

    def is_kink(a) -> bool:
        if isinstance(a, sympy.DiracDelta):
            return True
        return isinstance(a, sympy.Derivative) and isinstance(a.expr, sympy.sign | sympy.Heaviside)

    return e.replace(is_kink, lambda a: sympy.Integer(0))


def _truth(F: N.Node, X: N.Symbol, layout: str, order: int, f, xv, first=None):
    """SymPy's derivative of the explicit ``f`` (F written out) by the explicit variable ``xv``, in the
    layout of matcalc's closed form, as a sympy Matrix (1 x 1 for a scalar). ``first`` (explicit) is the
    other variable of a mixed second derivative ∂²f/∂first∂X: the Jacobian, with respect to X, of the
    gradient with respect to ``first`` (len(first) x len(X) in numerator layout, its transpose in denominator)."""
    import sympy

    fm = _as_matrix(f)
    if first is not None:
        mixed = fm.jacobian(list(_as_matrix(first))).T.jacobian(list(_as_matrix(xv)))
        return (mixed if layout == "numerator" else mixed.T).applyfunc(_flat_kinks)
    if order == 2:
        if F.shape != ():
            raise NoMatrixFormError("a second derivative of a non-scalar has no matrix form")
        if X.shape == ():
            return fm.applyfunc(lambda e: _flat_kinks(sympy.diff(e, xv, 2)))
        if not is_column(X.shape):
            raise NoMatrixFormError("the Hessian with respect to a matrix has no matrix form")
        xs = list(xv)
        g = fm.jacobian(xs).T
        return g.jacobian(xs).applyfunc(_flat_kinks)
    if X.shape == ():
        out = fm.applyfunc(lambda e: sympy.diff(e, xv))
        if layout == "denominator" and is_vector(F.shape):
            out = out.T
        return out.applyfunc(_flat_kinks)
    if F.shape == ():
        grad = xv.applyfunc(lambda s: sympy.diff(f, s))  # shaped like X; shared symbols when symmetric
        out = grad.T if layout == "numerator" else grad
        return out.applyfunc(_flat_kinks)
    if is_vector(F.shape) and is_column(X.shape):
        col = fm.T if is_row(F.shape) else fm
        J = col.jacobian(list(xv))
        return (J if layout == "numerator" else J.T).applyfunc(_flat_kinks)
    raise NoMatrixFormError(f"the derivative of a {'vector' if is_vector(F.shape) else 'matrix'} with respect "
                            f"to a matrix has no matrix form to check")


def _symmetric_fold(C):
    """``C_ij + C_ji`` off the diagonal, ``C_ii`` on it (works for sympy matrices and 2-D arrays)."""
    if isinstance(C, np.ndarray):
        return C + C.T - np.diag(np.diag(C))
    import sympy

    return sympy.Matrix(C.rows, C.cols, lambda i, j: C[i, i] if i == j else C[i, j] + C[j, i])


def _symmetric_variable(deriv) -> bool:
    X = deriv.variable
    return bool(X.symmetric) and deriv.function.shape == () and deriv.order == 1


# --- sample points ---------------------------------------------------------------------------------------------


def _guards(nodes) -> tuple[list, list, list, list, set[str]]:
    """Subexpressions whose values decide whether a point is usable, and the features of the nodes."""
    kinks, poles, units, nonzero = [], [], [], []
    features: set[str] = set()
    for root in nodes:
        for n in N.walk(root):
            if isinstance(n, N.Apply):
                u = n.args[1]
                if n.function in _KINKS:
                    kinks.append(u)
                elif n.function in _POSITIVE:
                    poles.append(u)
                    features.add("positive")
                elif n.function in _UNIT:
                    units.append(u)
                    features.add("small")
                elif n.function in _ABOVE_MINUS_ONE:  # log1p(u): a pole at u = -1, NaN below (not finite)
                    poles.append(N.Add(N.Number(1), u))
                elif n.function == "tan":
                    features.add("small")
            elif isinstance(n, N.Call) and n.record.avoid is not None:  # ‖u‖₁: a kink; ‖u‖: u ≠ 0
                kind, u = n.record.avoid(n)
                (kinks if kind == "kink" else nonzero).append(u)
            elif isinstance(n, (N.Div, N.ElemDiv)):
                poles.append(n.args[1])
            elif isinstance(n, (N.Power, N.ElemPower)):
                base, e = n.args
                if isinstance(e, N.Number):
                    if e.value.denominator != 1:
                        features.add("positive")
                        poles.append(base)
                    elif e.value < 0:
                        poles.append(base)
                        if base.shape != ():
                            features.add("square")
                else:
                    features.add("positive")
                    poles.append(base)
            elif isinstance(n, N.Call) and n.record.conditioned:  # inv, det, logdet
                features.add("square")
    return kinks, poles, units, nonzero, features


def _regimes(features: set[str]) -> list[str]:
    if "positive" in features and "small" in features:
        first = "small-positive"
    elif "positive" in features:
        first = "positive"
    elif "small" in features:
        first = "small"
    else:
        first = "generic"
    return [first] + [r for r in _REGIMES if r != first]


def _sample(symbols: list[N.Symbol], sizes: dict[str, int], rng, regime: str, shift: bool) -> dict[str, Any]:
    from .numeric import SizeBinder

    lo, hi = _REGIMES[regime]
    binder = SizeBinder(sizes)
    out: dict[str, Any] = {}
    for s in symbols:
        shape = binder.concrete(s.shape, s.name)
        if shape == ():
            out[s.name] = float(rng.uniform(lo, hi))
            continue
        v = rng.uniform(lo, hi, size=shape)
        if s.symmetric:
            v = (v + v.T) / 2
        if shift and is_matrix(s.shape) and shape[0] == shape[1] and shape[0] > 1:
            v = v + (shape[0] + 1) * np.eye(shape[0])
        out[s.name] = v.reshape(-1) if is_vector(s.shape) else v
    return out


def _min_abs(v, skip_zeros: bool = False) -> float:
    a = np.abs(np.asarray(v, dtype=np.float64)).reshape(-1)
    if skip_zeros:  # an entry exactly 0 at a random point is structurally 0 (diag(x) off the diagonal)
        a = a[a != 0]
    return float(np.min(a)) if a.size else math.inf


def _usable(values, sizes, nodes, guards) -> bool:
    """Every node finite at ``values`` and no guard near its singularity."""
    from .numeric import NumpyEvaluator

    kinks, poles, units, nonzero, _ = guards
    ev = NumpyEvaluator(values, sizes)
    try:
        with np.errstate(all="ignore"):
            for n in nodes:
                if not np.all(np.isfinite(ev.eval(n))):
                    return False
            for u in kinks:
                if _min_abs(ev.eval(u), skip_zeros=True) < KINK_DISTANCE:
                    return False
            for u in poles:
                if _min_abs(ev.eval(u)) < POLE_DISTANCE:
                    return False
            for u in nonzero:
                if float(np.sqrt(np.sum(np.square(ev.eval(u))))) < POLE_DISTANCE:
                    return False
            for u in units:
                if float(np.max(np.abs(ev.eval(u)))) > 0.98:
                    return False
    except (np.linalg.LinAlgError, FloatingPointError, OverflowError, ZeroDivisionError, ValueError):
        return False
    return True


# --- the worker ------------------------------------------------------------------------------------------------
def _user_entry(index: tuple[int, int], shape) -> tuple:
    """A 2-D index as the user indexes the closed form's value: () scalar, (k,) vector, (i, j) matrix."""
    if shape == ():
        return ()
    if is_vector(shape):
        return (int(index[0]) if is_column(shape) else int(index[1]),)
    return tuple(int(i) for i in index)


def _is_sym_matrix(v) -> bool:
    import sympy

    return isinstance(v, sympy.MatrixBase)


def _numbers(value, like):
    """A value as SymPy numbers, in the form ``symbol_matrices`` gives the symbol (scalar or Matrix)."""
    import sympy

    if not _is_sym_matrix(like):
        return sympy.Float(float(value), 17)
    arr = np.asarray(value, dtype=np.float64).reshape(like.shape)
    return sympy.Matrix(arr.shape[0], arr.shape[1], [sympy.Float(float(x), 17) for x in arr.ravel()])


def _only_symbolic(symbols: dict, name, values: dict | None = None) -> dict:
    """The symbol table with every variable but ``name`` (a name, or a set of names) made a number: its
    value at a sample point, or zero (enough to learn shapes). SymPy then differentiates far smaller
    explicit entries."""
    import sympy

    keep = {name} if isinstance(name, str) else set(name)

    def number(k, v):
        if values is not None:
            return _numbers(values[k], v)
        return sympy.zeros(*_as_matrix(v).shape) if _is_sym_matrix(v) else sympy.Integer(0)

    return {k: (v if k in keep else number(k, v)) for k, v in symbols.items()}


def _first(deriv):
    """The first variable of a mixed second derivative ∂²f/∂u∂v (a Hessian block), else None."""
    return getattr(deriv, "first", None)


def _kept(deriv) -> set:
    """The names that stay symbols when SymPy differentiates at a sample point."""
    first = _first(deriv)
    return {deriv.variable.name} | ({first.name} if first is not None else set())


def _internal(value, rows: int, cols: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != rows * cols:
        raise CheckError(f"the closed form has {arr.size} entries here but the derivative has {rows} x {cols}")
    return arr.reshape(rows, cols)


class _Job:
    """The check proper; ``emit(kind, payload)`` reports progress ("stage", "report")."""

    def __init__(self, deriv, sizes, points, seed, exact, emit):
        self.d = deriv
        self.sizes = sizes
        self.points = points
        self.seed = seed
        self.exact = exact
        self.emit = emit
        self.compared = ""
        self.code_note = ""

    def report(self, **kw) -> CheckReport:
        kw.setdefault("sizes", dict(self.sizes))
        if self.code_note and kw.get("ok"):  # say when the code could not be compared
            kw["note"] = "; ".join(n for n in (kw.get("note", ""), self.code_note) if n)
        return CheckReport(**kw)

    def run(self) -> None:
        from .sympy_backend import symbol_matrices, to_explicit

        d, sizes = self.d, self.sizes
        if _is_tensor(d):
            self.run_tensor()
            return
        F, X, closed = d.function, d.variable, d.expr
        sym = _symmetric_variable(d)
        self.compared = ("symmetric variable: SymPy's derivative by the shared entry compared with C_ij + C_ji "
                         "off the diagonal" if sym else "")
        self.emit("stage", "building the explicit SymPy function")
        symbols = symbol_matrices(F, sizes)
        if self.exact:
            f = to_explicit(F, sizes, symbols)
            self.emit("stage", "differentiating with SymPy")
            truth = _truth(F, X, d.layout, d.order, f, symbols[X.name], self._first_explicit(symbols))
        else:
            # numeric only: at each point the other variables enter SymPy as numbers, so it differentiates
            # a far smaller expression (only the variable's entries are symbols); see _truth_at
            truth = None
        rows, cols = self._truth_shape(truth, symbols)
        # the closed form's concrete shape must be the truth's
        from .numeric import SizeBinder

        cshape = SizeBinder(sizes).concrete(closed.shape, "the closed form")
        cshape2 = (1, 1) if cshape == () else cshape
        if cshape2 != (rows, cols):
            self.emit("report", self.report(
                ok=False, method="shape", compared=self.compared,
                note=f"the closed form is {cshape2[0]} x {cshape2[1]} here but the derivative in "
                     f"{d.layout} layout is {rows} x {cols}"))
            return
        numeric, used = self.numeric_phase(truth, symbols, rows, cols)
        if numeric is None:
            return
        code = self.code_phase(used)
        if code is not None:
            self.emit("report", code)
            return
        self.emit("numeric", numeric)
        if not self.exact:
            self.emit("report", numeric)
            return
        self.emit("report", self.exact_phase(truth, symbols, numeric, used))

    def numeric_phase(self, truth, symbols, rows: int, cols: int):
        """Compare at ``points`` random points, entry by entry; returns the report and the points used
        (None and [] after reporting that no point was usable)."""
        from .numeric import evaluate
        from .sympy_backend import numeric_value

        d, sizes, closed = self.d, self.sizes, self.d.expr
        self.emit("stage", "choosing sample points")
        syms = N.symbols_of(d.function)
        guards = _guards([d.function, closed])
        regimes = _regimes(guards[4])
        rng = np.random.default_rng(self.seed)
        worst, failure, used, attempts = 0.0, None, [], 0
        while len(used) < self.points and attempts < 60 * max(1, self.points):
            regime = regimes[(attempts // 15) % len(regimes)]
            attempts += 1
            values = _sample(syms, sizes, rng, regime, "square" in guards[4])
            if not _usable(values, sizes, [d.function, closed], guards):
                continue
            self.emit("stage", f"evaluating at point {len(used) + 1}")
            try:
                with np.errstate(all="ignore"):
                    if truth is None:
                        exp_v = self._truth_at(values, symbols).reshape(rows, cols)
                    else:
                        exp_v = np.asarray(numeric_value(truth, symbols, values), dtype=np.float64).reshape(rows, cols)
            except (ZeroDivisionError, OverflowError, ValueError, TypeError):
                continue
            if not np.all(np.isfinite(exp_v)):
                continue
            got_v = _internal(evaluate(closed, values, sizes), rows, cols)
            if _symmetric_variable(d):
                got_v = _symmetric_fold(got_v)
            err = _entry_errors(got_v, exp_v)
            used.append(values)
            k = _worst(err)
            worst = max(worst, float(err[k]) * TOLERANCE)
            if not err[k] <= 1.0 and not (truth is None and self._rounding_at(values, symbols, k)):
                failure = (k, values, float(exp_v[k]), float(got_v[k]), float(err[k]) * TOLERANCE)
                break
        if not used:
            self.emit("report", self.report(
                ok=False, method="error", compared=self.compared,
                note=f"no usable sample point found in {attempts} tries (every point was singular, "
                     "non-finite or at a kink); pass other sizes"))
            return None, []
        if failure is None:
            return self.report(ok=True, method="numeric", max_error=worst, points_checked=len(used),
                               compared=self.compared), used
        k, values, e, g, err = failure
        return self.report(ok=False, method="numeric", max_error=err, points_checked=len(used),
                           entry=_user_entry(k, closed.shape), point=values, expected=e, got=g,
                           compared=self.compared), used

    def exact_phase(self, truth, symbols, numeric: CheckReport, used: list) -> CheckReport:
        """SymPy's exact comparison, entry by entry; when it finishes its verdict is final (see
        docs/verification.md): an entry whose difference is non-zero at a sample point, evaluated with
        DIGITS digits from exact inputs, rejects the derivative; one that simplifies to 0 is proven."""
        from .sympy_backend import to_explicit

        self.emit("stage", "comparing exactly")
        closed = self.d.expr
        C = _as_matrix(to_explicit(closed, self.sizes, symbols))
        if _symmetric_variable(self.d):
            C = _symmetric_fold(C)
        rows, cols = truth.shape
        first = [] if numeric.ok else [_internal_index(numeric.entry, rows, cols)]
        points = [_exact_point(symbols, v) for v in used]
        unproven = []
        for i, j in first + [(i, j) for i in range(rows) for j in range(cols) if (i, j) not in first]:
            kind, info = _compare_precisely(truth[i, j], C[i, j], points)
            if kind == "differs":
                if not numeric.ok and (i, j) == first[0]:  # the numeric failure, confirmed exactly
                    numeric.note = "SymPy's exact difference at this entry is not 0 either"
                    return numeric
                p, t, c = info
                return self.report(
                    ok=False, method="exact", points_checked=len(used), entry=_user_entry((i, j), closed.shape),
                    point=used[p], expected=t, got=c, max_error=abs(t - c) / max(1.0, abs(t)),
                    compared=self.compared,
                    note=f"SymPy's exact difference at this entry is not 0 (it is {t - c:.3g} at this point, "
                         f"evaluated to {DIGITS} digits)")
            if not _is_zero(truth[i, j] - C[i, j]):
                unproven.append(((i, j), kind))
        if not unproven:
            note = "" if numeric.ok else (f"the numeric mismatch at entry {numeric.entry} was rounding: "
                                          "the difference simplifies to 0")
            return self.report(ok=True, method="exact", max_error=0.0 if not numeric.ok else numeric.max_error,
                               points_checked=len(used), compared=self.compared, note=note)
        if all(kind == "equal" for _, kind in unproven):
            numeric.ok, numeric.entry, numeric.point, numeric.expected, numeric.got = True, None, None, None, None
            numeric.note = (f"SymPy could not simplify {len(unproven)} entr{'y' if len(unproven) == 1 else 'ies'} "
                            f"of the difference to 0, but {'they agree' if len(unproven) > 1 else 'it agrees'} "
                            f"to {DIGITS} digits at every sample point")
            return numeric
        numeric.note = ("SymPy could not simplify every entry of the difference to 0, nor evaluate it at the "
                        "sample points; the numeric verdict stands")
        return numeric

    def code_phase(self, used: list) -> CheckReport | None:
        """The generated NumPy code against ``evaluate()`` at the sample points, entry by entry: a defect of
        code generation cannot pass a check. None when they agree (or no code can be generated)."""
        from .codegen import compile_numpy
        from .codegen.printer import CodegenError

        d = self.d
        self.emit("stage", "running the generated NumPy code")
        try:
            code = compile_numpy(d)
        except CodegenError as exc:
            self.code_note = f"no NumPy code to compare ({exc.message})"
            return None
        for values in used:
            with np.errstate(all="ignore"):
                want = np.asarray(d.evaluate(**values), dtype=np.float64)
                got = np.asarray(code(**values), dtype=np.float64)
            if got.shape != want.shape:
                return self.report(ok=False, method="code", points_checked=len(used), point=values,
                                   compared=self.compared,
                                   note=f"the generated NumPy code returns shape {got.shape}, evaluate() "
                                        f"{want.shape}")
            err = _entry_errors(got, want)
            k = _worst(err) if err.size else ()
            if err.size and not err[k] <= 1.0:
                return self.report(ok=False, method="code", points_checked=len(used), point=values,
                                   entry=k, expected=float(want[k]), got=float(got[k]),
                                   max_error=float(err[k]) * TOLERANCE, compared=self.compared,
                                   note="the generated NumPy code differs from evaluate() (expected is "
                                        "evaluate()'s value, got the code's)")
        return None

    def _rounding_at(self, values, symbols, k) -> bool:
        """Numeric-only checks: is a numeric mismatch at entry ``k`` rounding? The entry's difference is
        evaluated with DIGITS digits (the other variables as the sample's numbers)."""
        from .sympy_backend import to_explicit

        d = self.d
        name = d.variable.name
        table = _only_symbolic(symbols, _kept(d), values)
        truth = _truth(d.function, d.variable, d.layout, d.order, to_explicit(d.function, self.sizes, table),
                       symbols[name], self._first_explicit(symbols))
        C = _as_matrix(to_explicit(d.expr, self.sizes, table))
        if _symmetric_variable(d):
            C = _symmetric_fold(C)
        kept = {k: symbols[k] for k in _kept(d)}
        kind, _ = _compare_precisely(truth[k], C[k], [_exact_point(kept, values)])
        return kind == "equal"

    def _truth_shape(self, truth, symbols) -> tuple[int, int]:
        """The concrete shape of the derivative in the closed form's layout."""
        if truth is not None:
            return truth.shape

        from .sympy_backend import to_explicit

        d = self.d
        shape_f = _as_matrix(to_explicit(d.function, self.sizes, _only_symbolic(symbols, d.variable.name))).shape
        xv = _as_matrix(symbols[d.variable.name])
        nf = shape_f[0] * shape_f[1]
        nx = xv.shape[0] * xv.shape[1]
        scalar_f, scalar_x = d.function.shape == (), d.variable.shape == ()
        if _first(d) is not None:
            nu = _as_matrix(symbols[_first(d).name]).shape[0]
            return (nu, nx) if d.layout == "numerator" else (nx, nu)
        if d.order == 2:
            return (nx, nx) if not scalar_x else (1, 1)
        if scalar_x:
            return shape_f if not (d.layout == "denominator" and shape_f[1] == 1 and nf > 1) else (1, nf)
        if scalar_f:
            xs = xv.shape
            if xs[1] == 1:
                return (1, xs[0]) if d.layout == "numerator" else (xs[0], 1)
            return (xs[1], xs[0]) if d.layout == "numerator" else xs
        return (nf, nx) if d.layout == "numerator" else (nx, nf)

    def _truth_at(self, values, symbols) -> np.ndarray:
        """SymPy's derivative at one point, with every variable but the one differentiated given as numbers."""
        from .sympy_backend import numeric_value, to_explicit

        d = self.d
        name = d.variable.name
        kept = _kept(d)
        f = to_explicit(d.function, self.sizes, _only_symbolic(symbols, kept, values))
        truth = _truth(d.function, d.variable, d.layout, d.order, f, symbols[name], self._first_explicit(symbols))
        return np.asarray(numeric_value(truth, {k: symbols[k] for k in kept}, {k: values[k] for k in kept}),
                          dtype=np.float64)

    def _first_explicit(self, symbols):
        first = _first(self.d)
        return None if first is None else symbols[first.name]

    def run_tensor(self) -> None:
        """A 3- or 4-way derivative: ``T[out..., var...] = dF[out...]/dX[var...]``, compared numerically
        (``derivative.evaluate``) with SymPy's Jacobian of the flattened entries."""
        import sympy

        from .sympy_backend import numeric_value, symbol_matrices, to_explicit

        d, sizes = self.d, self.sizes
        F, X = d.function, d.variable
        compared = "tensor derivative: every entry dF[out...]/dX[var...] compared numerically"
        if X.symmetric:
            compared += "; symmetric variable: SymPy's derivative by a shared entry against T_kl + T_lk"
        self.emit("stage", "building the explicit SymPy function")
        symbols = symbol_matrices(F, sizes)
        xv = _as_matrix(symbols[X.name])

        def jacobian_of(table):
            entries = list(_as_matrix(to_explicit(F, sizes, table)))
            return sympy.Matrix(entries).jacobian(list(xv)).applyfunc(_flat_kinks)

        # the other variables enter as numbers at each point (only X's entries are symbols): far smaller
        self.emit("stage", "differentiating with SymPy")
        f = _as_matrix(to_explicit(F, sizes, _only_symbolic(symbols, X.name)))  # for the output's shape
        out_axes = tuple(n for n in (f.shape if is_matrix(F.shape) else (len(f),)) if F.shape != ())
        var_axes = tuple(xv.shape) if is_matrix(X.shape) else (len(xv),)
        shape = out_axes + var_axes
        syms = N.symbols_of(F)
        guards = _guards([F])
        regimes = _regimes(guards[4])
        rng = np.random.default_rng(self.seed)
        worst, failure, checked, attempts, used = 0.0, None, 0, 0, []
        while checked < self.points and attempts < 60 * self.points:
            regime = regimes[(attempts // 15) % len(regimes)]
            attempts += 1
            values = _sample(syms, sizes, rng, regime, "square" in guards[4])
            if not _usable(values, sizes, [F], guards):
                continue
            try:
                with np.errstate(all="ignore"):
                    J = jacobian_of(_only_symbolic(symbols, X.name, values))
                    exp_v = np.asarray(numeric_value(J, {X.name: symbols[X.name]}, {X.name: values[X.name]}),
                                       dtype=np.float64).reshape(shape)
            except (ZeroDivisionError, OverflowError, ValueError, TypeError):
                continue
            if not np.all(np.isfinite(exp_v)):
                continue
            got_v = _tensor_value(d, values, shape, var_axes)
            err = _entry_errors(got_v, exp_v)
            checked += 1
            used.append(values)
            k = _worst(err)
            worst = max(worst, float(err[k]) * TOLERANCE)
            if not err[k] <= 1.0:
                failure = (k, values, float(exp_v[k]), float(got_v[k]), float(err[k]) * TOLERANCE)
                break
        self.compared = compared
        self.emit("report", self.tensor_report(used, checked, attempts, worst, failure))

    def tensor_report(self, used: list, checked: int, attempts: int, worst: float, failure) -> CheckReport:
        """The report of :meth:`run_tensor`: its numeric comparison, then the generated code's."""
        compared = self.compared
        code = self.code_phase(used) if checked else None
        if checked == 0:
            return self.report(ok=False, method="error", compared=compared,
                               note=f"no usable sample point found in {attempts} tries")
        if code is not None:
            return code
        if failure is None:
            return self.report(ok=True, method="numeric", max_error=worst, points_checked=checked,
                               compared=compared)
        k, values, e, g, err = failure
        return self.report(ok=False, method="numeric", max_error=err, points_checked=checked,
                           entry=k, point=values, expected=e, got=g, compared=compared)


def _tensor_value(d, values: dict, shape: tuple, var_axes: tuple) -> np.ndarray:
    """matcalc's tensor at ``values``, shaped as SymPy's; for a symmetric variable, by a shared entry:
    ``T_kl + T_lk`` off the diagonal (the symmetric convention halves each of the pair)."""
    got = np.asarray(d.evaluate(**values), dtype=np.float64).reshape(shape)
    if d.variable.symmetric:
        got = got + np.swapaxes(got, -1, -2) - np.einsum("...kk->...k", got)[..., None] * np.eye(var_axes[0])
    return got


def _entry_errors(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Each entry's error in units of its own allowance ``TOLERANCE |truth| + ABS_FLOOR``: <= 1 passes."""
    return np.abs(got - expected) / (TOLERANCE * np.abs(expected) + ABS_FLOOR)


def _worst(err: np.ndarray) -> tuple:
    """The index of the worst entry (a nan, if any, is the worst)."""
    bad = np.isnan(err)
    if bad.any():
        return tuple(int(i) for i in np.argwhere(bad)[0])
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))


def _exact_point(symbols: dict, values: dict) -> dict:
    """SymPy substitutions putting the sample point's values, as exact rationals, for the entry symbols."""
    import sympy

    subs: dict = {}
    for name, like in symbols.items():
        if name not in values:
            continue
        if _is_sym_matrix(like):
            arr = np.asarray(values[name], dtype=np.float64).reshape(like.shape)
            for sym, v in zip(like, arr.ravel(), strict=True):
                if isinstance(sym, sympy.Symbol):
                    subs.setdefault(sym, sympy.Rational(float(v)))
        elif isinstance(like, sympy.Symbol):
            subs[like] = sympy.Rational(float(values[name]))
    return subs


def _precise(e, subs, strict: bool = False) -> float | None:
    """``e`` at a point with DIGITS significant digits (None when it has no finite real value there).
    ``strict``: the digits are certified (SymPy's ``evalf(strict=True)``); a value SymPy cannot tell from 0
    at its highest working precision is 0."""
    import sympy
    from sympy.core.evalf import PrecisionExhausted

    try:
        v = sympy.sympify(e).xreplace(subs).evalf(DIGITS, maxn=8 * DIGITS, strict=strict)
        out = complex(v)
    except PrecisionExhausted:
        return 0.0
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    if not (math.isfinite(out.real) and math.isfinite(out.imag)) or abs(out.imag) > abs(out.real) * 1e-20 + 1e-40:
        return None
    return out.real


def _compare_precisely(truth_e, closed_e, points: list[dict]) -> tuple[str, Any]:
    """One entry at the sample points (exact substitutions), with DIGITS digits: ``("differs", (index of
    the point, truth, closed))`` where the difference is beyond NONZERO * max(1, |truth|); else ``("equal",
    None)`` when it was evaluated at some point, ``("unknown", None)`` when no point gave a finite value."""
    diff = truth_e - closed_e
    if diff == 0:
        return "equal", None
    kind = "unknown"
    for p, subs in enumerate(points):
        d = _precise(diff, subs, strict=True)
        t = _precise(truth_e, subs)
        if d is None or t is None:
            continue
        if abs(d) > NONZERO * max(1.0, abs(t)):
            c = _precise(closed_e, subs)
            return "differs", (p, t, t - d if c is None else c)
        kind = "equal"
    return kind, None


def _internal_index(entry: tuple, rows: int, cols: int) -> tuple[int, int]:
    """The (row, column) of the internal rows x cols matrix for a user entry (inverse of _user_entry)."""
    if len(entry) == 2:
        return entry
    if not entry:
        return (0, 0)
    return (entry[0], 0) if cols == 1 else (0, entry[0])


def _is_tensor(d) -> bool:
    from .diff.tensor import TensorDerivative

    return isinstance(d, TensorDerivative)


def _is_zero(e) -> bool:
    import sympy

    if e == 0:
        return True
    for how in (sympy.expand, sympy.cancel):
        try:
            if how(e) == 0:
                return True
        except (sympy.PolynomialError, TypeError, ValueError, NotImplementedError):
            pass
    try:
        return sympy.simplify(e) == 0
    except (TypeError, ValueError, NotImplementedError, RecursionError):
        return False


def _describe(deriv) -> str:
    from .printing import to_text

    what = "d²" if deriv.order == 2 else "d"
    wrt = f"{what}{deriv.variable.name}{'²' if deriv.order == 2 else ''}"
    if _first(deriv) is not None:  # a mixed block ∂²f/∂u∂v
        wrt = f"d{_first(deriv).name}d{deriv.variable.name}"
    text = to_text(deriv.function)
    if len(text) > 60:
        text = text[:57] + "..."
    closed = to_text(deriv.differential) if _is_tensor(deriv) else to_text(deriv.expr)
    if len(closed) > 60:
        closed = closed[:57] + "..."
    return f"{what}({text})/{wrt} = {closed} [{deriv.layout}]"


# --- running with a deadline ---------------------------------------------------------------------------------
def _child(conn, job_args):
    def emit(kind, payload):
        conn.send((kind, payload))

    try:
        from .budget import cap_worker_memory, die_with_parent, unbudgeted
        from .recursion import deep_recursion

        die_with_parent()
        cap_worker_memory()
        with deep_recursion(), unbudgeted():
            _Job(*job_args, emit).run()
    except MatcalcError as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc.message}"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _run_forked(job_args, deadline):
    """Run the job in a forked process; yields its messages until done or the deadline."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, job_args), daemon=True)
    proc.start()
    send.close()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not recv.poll(remaining):
                yield ("deadline", None)
                return
            try:
                msg = recv.recv()
            except (EOFError, OSError):
                yield ("error", f"the check's worker process died (exit code {proc.exitcode})")
                return
            yield msg
            if msg[0] in ("report", "error"):
                return
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(1.0)
        recv.close()


def _run_thread(job_args, deadline):
    """Fallback without fork: a daemon thread (abandoned, not killed, at the deadline)."""
    import queue

    q: queue.Queue = queue.Queue()

    def target():
        try:
            from .budget import unbudgeted
            from .recursion import deep_recursion

            with deep_recursion(), unbudgeted():
                _Job(*job_args, lambda k, p: q.put((k, p))).run()
        except MatcalcError as exc:
            q.put(("error", f"{type(exc).__name__}: {exc.message}"))
        except BaseException as exc:  # noqa: BLE001
            q.put(("error", f"{type(exc).__name__}: {exc}"))

    threading.Thread(target=target, daemon=True, name="matcalc-check").start()
    while True:
        remaining = deadline - time.monotonic()
        try:
            msg = q.get(timeout=max(remaining, 0.0)) if remaining > 0 else q.get_nowait()
        except queue.Empty:
            yield ("deadline", None)
            return
        yield msg
        if msg[0] in ("report", "error"):
            return


def _can_fork() -> bool:
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        return False
    return not mp.current_process().daemon


def check_budget(time_budget) -> None:
    """``time_budget`` is None or a finite number of seconds >= 0 (``inf`` would overflow the deadline)."""
    import math

    if time_budget is None:
        return
    if isinstance(time_budget, bool) or not isinstance(time_budget, int | float) or not math.isfinite(time_budget) \
            or time_budget < 0:
        raise CheckError(f"time_budget must be a finite number of seconds >= 0, or None for no limit; "
                         f"not {time_budget!r}")


def check_derivative(derivative, sizes: Mapping | None = None, points: int = 3, time_budget: float | None = 10.0,
                     seed: int = 0, exact: bool = True, isolate: bool | None = None) -> CheckReport:
    """Check ``derivative`` (a :class:`matcalc.Derivative`) against SymPy; returns a :class:`CheckReport`.

    ``sizes`` overrides the default sizes (2, 3, 4, ... per dimension) by dimension name. ``points``
    random points are compared numerically; with ``exact=True`` the difference is then simplified entry
    by entry to prove it is 0. ``time_budget`` (seconds, None for no limit) bounds the whole check: it
    runs in a forked worker (``isolate``; a thread where fork is unavailable) that is stopped at the
    deadline. A check cut during simplification keeps its numeric verdict; one cut earlier reports
    ``ok=False, method="timeout"``. The check never raises for a wrong derivative; it raises
    :class:`~matcalc.errors.CheckError` only for bad arguments (unknown dimension names in ``sizes``).
    """
    start = time.monotonic()
    check_budget(time_budget)
    if isinstance(points, bool) or not isinstance(points, int):
        raise CheckError(f"points must be a positive integer, not {points!r}")
    if points < 1:
        raise CheckError(f"points must be at least 1, not {points!r}")
    if derivative.order not in (1, 2):
        raise CheckError(f"cannot check a derivative of order {derivative.order}")
    roots = [derivative.function, derivative.variable]
    if isinstance(getattr(derivative, "expr", None), N.Node):
        roots.append(derivative.expr)
    concrete = check_sizes(*roots, sizes=sizes)
    what = _describe(derivative)
    job_args = (derivative, concrete, points, seed, exact)
    if time_budget is None and not isolate:
        out: list = []
        try:
            from .budget import unbudgeted
            from .recursion import deep_recursion

            with deep_recursion(), unbudgeted():
                _Job(*job_args, lambda k, p: out.append((k, p))).run()
        except MatcalcError as exc:
            out.append(("error", f"{type(exc).__name__}: {exc.message}"))
        messages = iter(out)
    else:
        deadline = start + (1e9 if time_budget is None else max(float(time_budget), 0.0))
        forked = _can_fork() if isolate is None else isolate
        messages = (_run_forked if forked else _run_thread)(job_args, deadline)
    final = _verdict(messages, concrete, time_budget)
    final.elapsed = time.monotonic() - start
    final.what = what
    return final


def _verdict(messages, concrete: dict, time_budget: float | None) -> CheckReport:
    """The report from the job's messages (stage, numeric verdict, final report, error, deadline): at the
    deadline, the numeric verdict if there is one, else a timeout naming the stage it stopped in."""
    numeric = None
    stage = "starting"
    final = None
    for kind, payload in messages:
        if kind == "stage":
            stage = payload
        elif kind == "numeric":
            numeric = payload
        elif kind == "report":
            final = payload
        elif kind == "error":
            final = CheckReport(ok=False, method="error", sizes=concrete, note=payload)
        elif kind == "deadline":
            if numeric is not None:
                final = numeric
                final.note = (final.note + "; " if final.note else "") + (
                    f"the exact simplification did not finish within the {time_budget:g} s budget")
            else:
                final = CheckReport(ok=False, method="timeout", sizes=concrete,
                                    note=f"stopped after {time_budget:g} s while {stage}")
    if final is None:
        final = numeric or CheckReport(ok=False, method="error", sizes=concrete, note="the check gave no verdict")
    return final


# --- claims ------------------------------------------------------------------------------------------------------
def _declaration(s: N.Symbol) -> str:
    def dim(d):
        return str(d)

    if s.shape == ():
        return "scalar"
    if s.symmetric:
        return f"symmetric({dim(s.shape[0])})"
    if is_column(s.shape):
        return f"vector({dim(s.shape[0])})"
    return f"matrix({dim(s.shape[0])}, {dim(s.shape[1])})"


def judge_claim(correct, claim, layout: str = "numerator", sizes: Mapping | None = None, points: int = 3,
                time_budget: float | None = 10.0, seed: int = 0) -> ClaimReport:
    """Is ``claim`` (a string or a node) the derivative ``correct`` (a Derivative)? The second half of
    :func:`matcalc.check_claim`, which parses and derives: ``claim`` is parsed with the kinds of the
    function's variables and compared with SymPy's derivative as in :func:`check_derivative`."""
    from .diff.derivative import Derivative
    from .printing import to_text
    from .shapes import describe

    if isinstance(correct, list):
        raise CheckError("check_claim checks one derivative at a time: give wrt as a single name")
    answer = f"the derivative is {correct} ({describe(correct.shape)}, {layout} layout)"
    symbols = {s.name: s for s in N.symbols_of(correct.function)}
    if isinstance(claim, N.Node):
        claimed = claim
    else:
        try:
            from .typecheck import typecheck

            claimed = typecheck(str(claim), **{name: _declaration(s) for name, s in symbols.items()})
        except MatcalcError as exc:
            return ClaimReport(ok=False, correct=correct,
                               message=f"wrong: the claim {claim!r} is not a valid expression here: {exc.message}; "
                                       f"{answer}")
    stray = [s.name for s in N.symbols_of(claimed) if symbols.get(s.name) is not s]
    if stray:
        return ClaimReport(ok=False, correct=correct,
                           message=f"wrong: the claim uses {', '.join(stray)}, which "
                                   f"{'is' if len(stray) == 1 else 'are'} not a variable of the expression "
                                   f"(or has another kind there); {answer}")
    text = to_text(claimed)
    if claimed.shape != correct.shape:
        return ClaimReport(ok=False, correct=correct,
                           message=f"wrong shape: the claim {text} is {describe(claimed.shape)}, but {answer}")
    trial = Derivative(correct.function, correct.variable, claimed, layout, 1)
    report = check_derivative(trial, sizes=sizes, points=points, time_budget=time_budget, seed=seed)
    base = dict(correct=correct, check=report, entry=report.entry, point=report.point,
                expected=report.expected, got=report.got)
    return _judged(report, text, answer, base)


def _judged(report: CheckReport, text: str, answer: str, base: dict) -> ClaimReport:
    """The report on a claim of the right shape, from the check of it as a derivative."""
    if report.ok:
        how = "exactly" if report.method == "exact" else f"numerically at {report.points_checked} points"
        return ClaimReport(ok=True, message=f"right: the claim {text} agrees with SymPy {how} "
                                            f"(matcalc gives {base['correct']})", **base)
    if report.method == "shape":
        return ClaimReport(ok=False, message=f"wrong shape: the claim {text}: {report.note}; {answer}", **base)
    if report.method in ("timeout", "error"):
        return ClaimReport(ok=False, message=f"undecided: the claim {text} could not be checked ({report.method}: "
                                             f"{report.note}); {answer}", **base)
    where = ""
    if report.point is not None:
        where = " at " + ", ".join(f"{k} = {_fmt_value(v)}" for k, v in report.point.items())
    right, gives = _fmt_pair(report.expected, report.got)
    how = " (SymPy's exact difference is not 0)" if report.method == "exact" else ""
    return ClaimReport(ok=False, message=(
        f"wrong: the claim {text} differs at entry {report.entry}{where}{how}: it gives {gives}, "
        f"the right value is {right}; {answer}"), **base)
