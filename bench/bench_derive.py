"""Derivation speed: matcalc (parse + derive + simplify) against SymPy 1.14's MatrixSymbol differentiation.

    python bench/bench_derive.py            # the full suite (about a minute)
    python bench/bench_derive.py --smoke    # a few problems, few repetitions (for CI)

For every problem: matcalc.derive(text, wrt, layout="denominator", ...) is timed from the text each
repetition (parse, type-check, differentiate, simplify; nodes are hash-consed in a weak table and
memoised within one call only, so nothing carries over between repetitions except the lark parser, which
is built once and warmed up before timing, together with the lazy imports). SymPy's time is building the
MatrixSymbol expression plus ``expr.diff(X)`` with SymPy's cache cleared before every repetition.

Both answers are checked numerically at random concrete matrices against central finite differences of
the function (matcalc: Derivative.evaluate; SymPy: dimensions and MatrixSymbols replaced by numbers, then
doit()/as_explicit()). Everything is compared in denominator layout (gradients shaped like the variable;
the transpose of the Jacobian for vector-valued functions), which is the layout SymPy's diff returns.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time  # noqa: F401
from collections.abc import Callable

import numpy as np
from _util import Targets, clock, load_line, table

import matcalc  # noqa: E402
from matcalc import nodes as N  # noqa: E402
from matcalc.numeric import evaluate  # noqa: E402

try:
    import sympy as sp
    from sympy import Determinant as Det
    from sympy import HadamardProduct, Identity, Inverse, MatrixSymbol, OneMatrix, Trace
except ImportError:  # pragma: no cover
    sp = None

# --------------------------------------------------------------------------------------------------
# SymPy spellings. Dimensions are the symbols n, m, k; a vector is an n x 1 MatrixSymbol; a scalar
# function is a 1 x 1 matrix expression (or a scalar Expr); element-wise functions use applyfunc.

if sp is not None:
    n, m, k = sp.symbols("n m k", integer=True, positive=True)

    def V(name, d=None):
        return MatrixSymbol(name, d if d is not None else n, 1)

    def Mat(name, r=None, c=None):
        return MatrixSymbol(name, r if r is not None else n, c if c is not None else n)

    def ew(f, u):
        t = sp.Dummy("t")
        return u.applyfunc(sp.Lambda(t, f(t)))

    def ssum(u):
        return OneMatrix(1, u.shape[0]) * u

    def sq(u):  # ||u||^2
        return u.T * u

    def frob2(E):
        return Trace(E.T * E)

    def sigmoid(t):
        return 1 / (1 + sp.exp(-t))

    def relu(t):
        return sp.Max(0, t)

    def scal(b):  # a scalar as a 1 x 1 matrix, to add it to a 1 x 1 matrix expression
        return b * Identity(1)


def na(reason: str):
    return reason


#: (group, text, wrt, declarations, order, SymPy builder returning (expr, variable) or a reason string)
PROBLEMS: list[tuple] = [
    # --- Parr & Howard: element-wise binary ops, scalar expansion, sum, the neuron, the loss ---------
    ("P&H", "w + x", "x", {}, 1, lambda: (V("w") + V("x"), V("x"))),
    ("P&H", "w - x", "x", {}, 1, lambda: (V("w") - V("x"), V("x"))),
    ("P&H", "w .* x", "x", {}, 1, lambda: (HadamardProduct(V("w"), V("x")), V("x"))),
    ("P&H", "w .* x", "w", {}, 1, lambda: (HadamardProduct(V("w"), V("x")), V("w"))),
    ("P&H", "w ./ x", "x", {}, 1, lambda: (HadamardProduct(V("w"), ew(lambda t: 1 / t, V("x"))), V("x"))),
    ("P&H", "x + b", "b", {}, 1, lambda: (V("x") + sp.Symbol("b") * OneMatrix(n, 1), sp.Symbol("b"))),
    ("P&H", "b x", "b", {}, 1, lambda: (sp.Symbol("b") * V("x"), sp.Symbol("b"))),
    ("P&H", "sum(x)", "x", {}, 1, lambda: (ssum(V("x")), V("x"))),
    ("P&H", "sum(b x)", "b", {}, 1, lambda: (ssum(sp.Symbol("b") * V("x")), sp.Symbol("b"))),
    ("P&H", "w·x + b", "w", {}, 1, lambda: (V("w").T * V("x") + scal(sp.Symbol("b")), V("w"))),
    ("P&H", "w·x + b", "b", {}, 1, lambda: (V("w").T * V("x") + scal(sp.Symbol("b")), sp.Symbol("b"))),
    ("P&H", "max(0, w·x + b)", "w", {}, 1,
     lambda: (ew(relu, V("w").T * V("x") + scal(sp.Symbol("b"))), V("w"))),
    ("P&H", "max(0, w·x + b)", "b", {}, 1,
     lambda: (ew(relu, V("w").T * V("x") + scal(sp.Symbol("b"))), sp.Symbol("b"))),
    ("P&H", "||y - max(0, X w + b)||^2 / N", "w", {"N": "scalar"}, 1,
     lambda: (sq(V("y", m) - ew(relu, Mat("X", m, n) * V("w") + sp.Symbol("b") * OneMatrix(m, 1)))
              / sp.Symbol("N"), V("w"))),
    ("P&H", "||y - max(0, X w + b)||^2 / N", "b", {"N": "scalar"}, 1,
     lambda: (sq(V("y", m) - ew(relu, Mat("X", m, n) * V("w") + sp.Symbol("b") * OneMatrix(m, 1)))
              / sp.Symbol("N"), sp.Symbol("b"))),
    ("P&H", "mean((X w - y).^2)", "w", {}, 1,
     lambda: (sq(Mat("X", m, n) * V("w") - V("y", m)) / m, V("w"))),
    # --- d2l -------------------------------------------------------------------------------------
    ("d2l", "beta' x", "x", {"beta": "vector(n)"}, 1, lambda: (V("beta").T * V("x"), V("x"))),
    ("d2l", "A x", "x", {}, 1, lambda: (Mat("A", m, n) * V("x"), V("x"))),
    ("d2l", "x' A x", "x", {}, 1, lambda: (V("x").T * Mat("A") * V("x"), V("x"))),
    ("d2l", "||x||^2", "x", {}, 1, lambda: (sq(V("x")), V("x"))),
    # --- the Matrix Cookbook ---------------------------------------------------------------------
    ("Cookbook", "tr(A X)", "X", {}, 1, lambda: (Trace(Mat("A", m, n) * Mat("X", n, m)), Mat("X", n, m))),
    ("Cookbook", "tr(A X B)", "X", {}, 1,
     lambda: (Trace(Mat("A", m, n) * Mat("X", n, k) * Mat("B", k, m)), Mat("X", n, k))),
    ("Cookbook", "tr(X' A X)", "X", {}, 1, lambda: (Trace(Mat("X").T * Mat("A") * Mat("X")), Mat("X"))),
    ("Cookbook", "tr(X A X')", "X", {}, 1, lambda: (Trace(Mat("X") * Mat("A") * Mat("X").T), Mat("X"))),
    ("Cookbook", "tr(X' X)", "X", {}, 1, lambda: (Trace(Mat("X", m, n).T * Mat("X", m, n)), Mat("X", m, n))),
    ("Cookbook", "tr(X^2)", "X", {}, 1, lambda: (Trace(Mat("X") ** 2), Mat("X"))),
    ("Cookbook", "tr(inv(X))", "X", {}, 1, lambda: (Trace(Inverse(Mat("X"))), Mat("X"))),
    ("Cookbook", "det(X)", "X", {}, 1, lambda: (Det(Mat("X")), Mat("X"))),
    ("Cookbook", "logdet(X)", "X", {}, 1, lambda: (sp.log(Det(Mat("X"))), Mat("X"))),
    ("Cookbook", "det(A X B)", "X", {}, 1,
     lambda: (Det(Mat("A", n, m) * Mat("X", m, k) * Mat("B", k, n)), Mat("X", m, k))),
    ("Cookbook", "logdet(X' X)", "X", {}, 1,
     lambda: (sp.log(Det(Mat("X", m, n).T * Mat("X", m, n))), Mat("X", m, n))),
    ("Cookbook", "a' X b", "X", {"a": "vector(m)", "b": "vector(n)"}, 1,
     lambda: (V("a", m).T * Mat("X", m, n) * V("b"), Mat("X", m, n))),
    ("Cookbook", "a' X' b", "X", {"a": "vector(n)", "b": "vector(m)"}, 1,
     lambda: (V("a").T * Mat("X", m, n).T * V("b", m), Mat("X", m, n))),
    ("Cookbook", "a' inv(X) b", "X", {"a": "vector(n)", "b": "vector(n)"}, 1,
     lambda: (V("a").T * Inverse(Mat("X")) * V("b"), Mat("X"))),
    ("Cookbook", "a' X' X b", "X", {"a": "vector(n)", "b": "vector(n)"}, 1,
     lambda: (V("a").T * Mat("X", m, n).T * Mat("X", m, n) * V("b"), Mat("X", m, n))),
    ("Cookbook", "x' A x", "A", {}, 1, lambda: (V("x").T * Mat("A") * V("x"), Mat("A"))),
    ("Cookbook", "||A x - b||^2", "x", {"b": "vector(m)"}, 1,
     lambda: (sq(Mat("A", m, n) * V("x") - V("b", m)), V("x"))),
    ("Cookbook", "(A x + b)' C (D x + e)", "x", {"b": "vector(m)", "e": "vector(k)"}, 1,
     lambda: ((Mat("A", m, n) * V("x") + V("b", m)).T * Mat("C", m, k) * (Mat("D", k, n) * V("x") + V("e", k)),
              V("x"))),
    ("Cookbook", "||X - U V||_F^2", "U", {}, 1,
     lambda: (frob2(Mat("X", n, m) - Mat("U", n, k) * Mat("V", k, m)), Mat("U", n, k))),
    ("Cookbook", "||X - U V||_F^2", "V", {}, 1,
     lambda: (frob2(Mat("X", n, m) - Mat("U", n, k) * Mat("V", k, m)), Mat("V", k, m))),
    ("Cookbook", "logsumexp(x)", "x", {}, 1,
     lambda: (ew(sp.log, ssum(ew(sp.exp, V("x")))), V("x"))),
    ("Cookbook", "sum(exp(A x))", "x", {}, 1, lambda: (ssum(ew(sp.exp, Mat("A", m, n) * V("x"))), V("x"))),
    ("Cookbook", "tanh(W x)", "x", {}, 1, lambda: (ew(sp.tanh, Mat("W", m, n) * V("x")), V("x"))),
    # --- ML losses -------------------------------------------------------------------------------
    ("ML", "||X w - y||^2 + lambda * ||w||^2", "w", {"lambda": "scalar"}, 1,
     lambda: (sq(Mat("X", m, n) * V("w") - V("y", m)) + sp.Symbol("lambda") * sq(V("w")), V("w"))),
    ("ML", "-y*log(sigmoid(w·x)) - (1-y)*log(1-sigmoid(w·x))", "w", {"y": "scalar"}, 1,
     lambda: (ew(lambda t: -sp.Symbol("y") * sp.log(sigmoid(t)) - (1 - sp.Symbol("y")) * sp.log(1 - sigmoid(t)),
                 V("w").T * V("x")), V("w"))),
    ("ML", "-y' log(sigmoid(X w)) - (1-y)' log(1 - sigmoid(X w))", "w", {}, 1,
     lambda: (-V("y", m).T * ew(lambda t: sp.log(sigmoid(t)), Mat("X", m, n) * V("w"))
              - (OneMatrix(m, 1) - V("y", m)).T * ew(lambda t: sp.log(1 - sigmoid(t)), Mat("X", m, n) * V("w")),
              V("w"))),
    ("ML", "sum(softplus(X w)) - y' X w", "w", {}, 1,
     lambda: (ssum(ew(lambda t: sp.log(1 + sp.exp(t)), Mat("X", m, n) * V("w")))
              - V("y", m).T * Mat("X", m, n) * V("w"), V("w"))),
    ("ML", "sum(log(1 + exp(-y .* (X w))))", "w", {}, 1,
     lambda: (ssum(ew(lambda t: sp.log(1 + sp.exp(-t)), HadamardProduct(V("y", m), Mat("X", m, n) * V("w")))),
              V("w"))),
    # softmax cross-entropy: SymPy has no softmax; spelled -yᵀWx + (𝟙ᵀy) log(𝟙ᵀexp(Wx)), the same function
    ("ML", "-y' log(softmax(W x))", "W", {}, 1,
     lambda: (-V("y", m).T * Mat("W", m, n) * V("x")
              + ssum(V("y", m)) * ew(sp.log, ssum(ew(sp.exp, Mat("W", m, n) * V("x")))), Mat("W", m, n))),
    ("ML", "||tanh(W x + b) - y||^2", "W", {"b": "vector(m)"}, 1,
     lambda: (sq(ew(sp.tanh, Mat("W", m, n) * V("x") + V("b", m)) - V("y", m)), Mat("W", m, n))),
    ("ML", "||tanh(W x + b) - y||^2", "b", {"b": "vector(m)"}, 1,
     lambda: (sq(ew(sp.tanh, Mat("W", m, n) * V("x") + V("b", m)) - V("y", m)), V("b", m))),
    ("ML", "||W2 tanh(W1 x) - y||^2", "W1", {}, 1,
     lambda: (sq(Mat("W2", k, m) * ew(sp.tanh, Mat("W1", m, n) * V("x")) - V("y", k)), Mat("W1", m, n))),
    ("ML", "||W2 tanh(W1 x) - y||^2", "W2", {}, 1,
     lambda: (sq(Mat("W2", k, m) * ew(sp.tanh, Mat("W1", m, n) * V("x")) - V("y", k)), Mat("W2", k, m))),
    ("ML", "||X - U V||_F^2 + lambda * (||U||_F^2 + ||V||_F^2)", "U", {"lambda": "scalar"}, 1,
     lambda: (frob2(Mat("X", n, m) - Mat("U", n, k) * Mat("V", k, m))
              + sp.Symbol("lambda") * (frob2(Mat("U", n, k)) + frob2(Mat("V", k, m))), Mat("U", n, k))),
    ("ML", "||X - U V||_F^2 + lambda * (||U||_F^2 + ||V||_F^2)", "V", {"lambda": "scalar"}, 1,
     lambda: (frob2(Mat("X", n, m) - Mat("U", n, k) * Mat("V", k, m))
              + sp.Symbol("lambda") * (frob2(Mat("U", n, k)) + frob2(Mat("V", k, m))), Mat("V", k, m))),
    # --- Hessians (order 2: SymPy differentiates twice) -------------------------------------------
    ("Hessian", "x' A x", "x", {}, 2, lambda: (V("x").T * Mat("A") * V("x"), V("x"))),
    ("Hessian", "sum(exp(A x))", "x", {}, 2, lambda: (ssum(ew(sp.exp, Mat("A", m, n) * V("x"))), V("x"))),
    ("Hessian", "||A x - b||^2", "x", {"b": "vector(m)"}, 2,
     lambda: (sq(Mat("A", m, n) * V("x") - V("b", m)), V("x"))),
    ("Hessian", "sum(softplus(X w)) - y' X w", "w", {}, 2,
     lambda: (ssum(ew(lambda t: sp.log(1 + sp.exp(t)), Mat("X", m, n) * V("w")))
              - V("y", m).T * Mat("X", m, n) * V("w"), V("w"))),
]

SMOKE = [0, 2, 9, 18, 21, 27, 44]

# --------------------------------------------------------------------------------------------------
# numbers


def random_values(function, rng, descending: bool = False) -> dict:
    """Distinct sizes per dimension (3, 4, 5, ... or 6, 5, 4, ...), well-conditioned square matrices (3I + noise),
    scalars in [0.5, 1.5] (they divide or weight), vectors and other matrices standard normal."""
    sizes: dict[str, int] = {}
    values = {}
    for s in N.symbols_of(function):
        shape = []
        for d in s.shape:
            if isinstance(d, int):
                shape.append(d)
            else:
                shape.append(sizes.setdefault(str(d), (6 - len(sizes)) if descending else (3 + len(sizes))))
        shape = tuple(shape)
        if shape == ():
            values[s.name] = float(rng.uniform(0.5, 1.5))
        elif shape[1] == 1:
            values[s.name] = rng.normal(size=shape[0])
        elif shape[0] == shape[1]:
            values[s.name] = 3 * np.eye(shape[0]) + 0.3 * rng.normal(size=shape)
        else:
            values[s.name] = rng.normal(size=shape)
    return values


def fd_first(function, name, values, h=1e-6):
    """Denominator layout by central differences: the gradient shaped like the variable for a scalar
    function, the transposed Jacobian (variable axes first) for a vector function."""
    x0 = np.asarray(values[name], dtype=float)

    def f(v):
        return np.asarray(evaluate(function, {**values, name: v}), dtype=float)

    out0 = f(x0)
    J = np.zeros(x0.shape + out0.shape)
    for idx in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[idx] = h
        J[idx] = (f(x0 + e) - f(x0 - e)) / (2 * h)
    return J


def fd_second(gradient_expr, function, name, values, h=1e-6):
    """The Hessian by central differences of the (matcalc, denominator-layout) gradient."""
    from matcalc.diff.derivative import sizes_from

    x0 = np.asarray(values[name], dtype=float)
    sizes = sizes_from(function, values)

    def g(v):
        return np.asarray(evaluate(gradient_expr, {**values, name: v}, sizes=sizes), dtype=float)

    H = np.zeros(x0.shape + x0.shape)
    for idx in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[idx] = h
        H[idx] = (g(x0 + e) - g(x0 - e)) / (2 * h)
    return H


def close(a, ref) -> bool:
    a = np.asarray(a, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if a.size != ref.size:
        return False
    a = a.reshape(ref.shape) if a.shape != ref.shape else a
    return bool(np.allclose(a, ref, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(ref).max(initial=0.0))))


def sympy_numeric(result, function, values: dict):
    """SymPy's answer at the values: dimensions bound from the arrays' shapes (read off the function's
    MatrixSymbols), MatrixSymbols replaced by explicit matrices, then doit() and as_explicit()."""
    rep = {}
    for s in function.atoms(MatrixSymbol) | result.atoms(MatrixSymbol):
        v = np.asarray(values[s.name], dtype=float)
        v = v.reshape(-1, 1) if v.ndim == 1 else v
        for d, size in zip(s.shape, v.shape, strict=False):
            if isinstance(d, sp.Symbol):
                rep[d] = size
        rep[s] = sp.ImmutableMatrix(v)
    for s in result.free_symbols:
        if isinstance(s, sp.Symbol) and s not in rep and s.name in values:
            rep[s] = sp.Float(values[s.name])
    e = result.xreplace(rep).doit()
    if hasattr(e, "as_explicit"):
        e = e.as_explicit()
    if isinstance(e, (sp.NDimArray,)):
        return np.array(e.tolist(), dtype=float)
    if isinstance(e, sp.MatrixBase):
        return np.array(e.tolist(), dtype=float)
    return np.array(float(e))


def sympy_answer(builder, order: int):
    expr, var = builder()
    r = expr.diff(var)
    if order == 2:
        r = r.diff(var)
    return expr, r


# --------------------------------------------------------------------------------------------------


_GC = {"start": 0.0, "total": 0.0}


def _gc_callback(phase, info):
    if phase == "start":
        _GC["start"] = CLOCK()
    else:
        _GC["total"] += CLOCK() - _GC["start"]


def time_reps(f: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
    """Times of ``reps`` calls, and the part of each spent in the garbage collector (which stays enabled;
    a full collection is run before the loop, as pyperf does, so a pause inside it is rare)."""
    gc.collect()
    out, in_gc = [], []
    gc.callbacks.append(_gc_callback)
    try:
        for _ in range(reps):
            g0 = _GC["total"]
            t0 = CLOCK()
            f()
            out.append(CLOCK() - t0)
            in_gc.append(_GC["total"] - g0)
    finally:
        gc.callbacks.remove(_gc_callback)
    return out, in_gc


def reference(d, text, wrt, decls, order, rng):
    """Values and the finite-difference answer; increasing sizes first (3, 4, 5, ...), decreasing ones when
    that makes a matrix singular (logdet(X' X) needs X tall, det(A X B) needs the inner sizes large)."""
    for descending in (False, True):
        values = random_values(d.function, rng, descending)
        try:
            with np.errstate(all="ignore"):
                if order == 1:
                    ref = fd_first(d.function, d.variable.name, values)
                else:
                    g = matcalc.derive(text, wrt, layout="denominator", **decls)
                    ref = fd_second(g.expr, d.function, d.variable.name, values)
        except np.linalg.LinAlgError:
            continue
        if np.all(np.isfinite(ref)):
            return values, ref
    raise ValueError("no values where the function is finite")


def run(problems, reps_mc: int, reps_sp: int, use_sympy: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    # warm-up: builds the lark parser and loads the lazily imported stages (diff, simplify, numeric)
    matcalc.derive("x' A x", "x", layout="denominator")
    matcalc.derive("sum(tanh(W x))", "W", layout="denominator")
    records = []
    # phase 1: matcalc on every problem (before SymPy has filled the heap with its objects)
    for group, text, wrt, decls, order, _ in problems:
        rec = {"group": group, "problem": text, "wrt": wrt + ("²" if order == 2 else "")}
        records.append(rec)

        def mc(text=text, wrt=wrt, decls=decls, order=order):
            return matcalc.derive(text, wrt, layout="denominator", order=order, **decls)

        try:
            d = mc()  # one untimed call (the parser is already warm; this one reports an error if any)
            times, in_gc = time_reps(mc, reps_mc)
            rec["mc_med"], rec["mc_max"] = statistics.median(times), max(times)
            rec["mc_max_gc"] = in_gc[times.index(max(times))]
            rec["values"], rec["ref"] = reference(d, text, wrt, decls, order, rng)
            rec["mc_ok"] = close(d.evaluate(**rec["values"]), rec["ref"])
            rec["mc_answer"] = str(d)
        except Exception as exc:  # noqa: BLE001 - a failure is a result here
            rec["mc_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:80]
            rec["mc_ok"] = False
    # phase 2: SymPy
    for rec, (_, _, _, _, order, builder) in zip(records, problems, strict=True):
        if not use_sympy:
            rec["sp"] = "skipped: not installed" if sp is None else "skipped (--no-sympy)"
            continue
        try:
            sp.core.cache.clear_cache()
            function, r = sympy_answer(builder, order)
        except Exception as exc:  # noqa: BLE001
            rec["sp"] = f"n/a: raises {type(exc).__name__}" + (f": {str(exc).splitlines()[0][:50]}" if str(exc) else "")
            continue
        times = []
        for _ in range(reps_sp):
            sp.core.cache.clear_cache()
            t0 = CLOCK()
            sympy_answer(builder, order)
            times.append(CLOCK() - t0)
        if r.has(sp.Derivative) or type(r).__name__ == "ArrayDerivative":
            rec["sp"] = "n/a: returns an unevaluated Derivative"
            continue
        if "ref" not in rec:
            rec["sp"] = "no reference"
            continue
        try:
            value = sympy_numeric(r, function, rec["values"])
        except Exception as exc:  # noqa: BLE001
            rec["sp"] = f"n/a: SymPy cannot evaluate its own answer ({type(exc).__name__})"
            continue
        rec["sp_med"] = statistics.median(times)
        rec["sp"] = "ok" if close(value, rec["ref"]) else "wrong"
    return records


def _ratio(x: float) -> str:
    return f"{x:.0f}x" if x >= 10 else f"{x:.1f}x"


CLOCK = clock("cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few problems, few repetitions")
    parser.add_argument("--no-sympy", action="store_true", help="leave out the SymPy column")
    parser.add_argument("--show-answers", action="store_true", help="also print matcalc's answers")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: process CPU time (default; robust on a shared machine); wall: perf_counter")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = clock(args.clock)
    problems = [PROBLEMS[i] for i in SMOKE] if args.smoke else PROBLEMS
    reps_mc, reps_sp = (3, 2) if args.smoke else (21, 7)
    use_sympy = sp is not None and not args.no_sympy
    gc_state = "enabled" if gc.isenabled() else "disabled"
    print(f"# bench_derive ({args.clock} time; {load_line()}): {len(problems)} problems; "
          f"matcalc median/max of {reps_mc} fresh derive() calls "
          f"(lark parser warmed up first), SymPy median of {reps_sp} (cache cleared each time); gc {gc_state}")
    records = run(problems, reps_mc, reps_sp, use_sympy)
    rows = []
    for i, r in enumerate(records, 1):
        if "mc_error" in r:
            mc_cells = ["ERROR", "", r["mc_error"]]
        else:
            gc_note = f" (GC {r['mc_max_gc'] * 1e3:.0f})" if r["mc_max_gc"] > 1e-3 else ""
            mc_cells = [f"{r['mc_med'] * 1e3:.2f}", f"{r['mc_max'] * 1e3:.2f}{gc_note}",
                        "ok" if r["mc_ok"] else "WRONG"]
        sp_time = f"{r['sp_med'] * 1e3:.1f}" if "sp_med" in r else "-"
        speed = _ratio(r["sp_med"] / r["mc_med"]) if "sp_med" in r and "mc_med" in r else "-"
        rows.append([i, r["group"], f"`{r['problem']}`", r["wrt"], *mc_cells, sp_time, r["sp"], speed])
    print("(GC n): n ms of that maximum were a garbage-collector pause (the collector stays enabled)")
    print(table(["#", "group", "problem", "wrt", "matcalc median (ms)", "matcalc max (ms)", "matcalc",
                 "SymPy median (ms)", "SymPy", "SymPy/matcalc"], rows, align="rlllrrlrlr"))
    if args.show_answers:
        for i, r in enumerate(records, 1):
            print(f"{i:>3} d/d{r['wrt']} {r['problem']} = {r.get('mc_answer', r.get('mc_error'))}")

    t = Targets()
    solved = [r for r in records if r.get("mc_ok")]
    t.check(len(solved) == len(records), "matcalc solves every problem (numerically right)",
            f"{len(solved)}/{len(records)}")
    timed = [r for r in records if "mc_med" in r]
    worst_med = max(timed, key=lambda r: r["mc_med"])
    worst_max = max(timed, key=lambda r: r["mc_max"])
    t.check(worst_med["mc_med"] <= 5e-3, "median <= 5 ms on every problem",
            f"worst median {worst_med['mc_med'] * 1e3:.2f} ms: {worst_med['problem']} d/d{worst_med['wrt']}")
    t.check(worst_max["mc_max"] <= 50e-3, "max <= 50 ms on every problem",
            f"worst max {worst_max['mc_max'] * 1e3:.2f} ms: {worst_max['problem']} d/d{worst_max['wrt']}")
    both = [r for r in records if r.get("sp") == "ok" and r.get("mc_ok")]
    slower = [r for r in both if r["mc_med"] >= r["sp_med"]]
    if use_sympy:
        t.check(not slower, "faster than SymPy on every problem both solve",
                f"{len(both) - len(slower)}/{len(both)}; SymPy n/a on "
                f"{sum(1 for r in records if str(r.get('sp', '')).startswith('n/a'))}, wrong on "
                f"{sum(1 for r in records if r.get('sp') == 'wrong')}; "
                f"min speed-up {_ratio(min((r['sp_med'] / r['mc_med'] for r in both), default=float('nan')))}")
    else:
        print("(SymPy column skipped: the speed target is not checked)")
    print(t.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
