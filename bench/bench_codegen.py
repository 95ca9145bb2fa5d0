"""Speed of matcalc's generated code: NumPy gradients and Hessians against hand-written NumPy, jax.grad /
jax.hessian (jitted, CPU, float64) and torch.func.grad / torch.func.hessian (float64, eager), plus the
generated JAX code under jax.jit against jax.grad.

    python bench/bench_codegen.py            # n = 10, 100, 1000 (a few minutes), then the layers
    python bench/bench_codegen.py --smoke    # n = 4, few repeats (for CI)
    python bench/bench_codegen.py --no-layers  # without the transformer layers' table

After its own tables it runs ``bench/bench_layers.py`` (attention and layer norm: value and gradients of a
scalar loss, sequence length 128 and 512, width 64, float64 and float32, against ``jax.value_and_grad``
and torch autograd) in a process of its own, since that one sets JAX's precision per dtype.

Every number is the minimum over ``--repeat`` runs (default 7) of the mean time of one call, where each run
makes enough calls to last >= 50 ms (wall clock, time.perf_counter via timeit; the minimum is the
least-disturbed estimate on a shared machine). The runs of one row's columns are interleaved, one run of
each per round, so a change of load during a row disturbs all of its columns alike. JAX results are
blocked on (block_until_ready). JAX compile time (lower + compile of the jitted function, first call) is
reported separately and excluded from its run time. Before timing, all columns are checked to agree with
the hand-written NumPy result.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
import timeit
from collections.abc import Callable


def _threads_from_argv(argv) -> int:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


# Thread pools are sized before NumPy, JAX and torch load: one thread each by default, so the comparison
# measures the code rather than thread pools competing for 2 shared cores (--threads 2 for the defaults).
THREADS = _threads_from_argv(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))
if THREADS == 1:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    # XLA's CPU runtime (jax 0.10) still splits some fusions and products over 2 threads despite those
    # flags (measured: 55.8 ms of CPU in 28.8 ms of wall time for jax.hessian of sum(exp(Ax)), n = 1000),
    # so the process is pinned to one CPU: every library then computes on exactly one core.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402
from _util import Targets, load_line, optional, table  # noqa: E402

import matcalc  # noqa: E402
from matcalc.codegen import compile_numpy, generate  # noqa: E402

jax = optional("jax")
torch = optional("torch")
if torch is not None:
    torch.set_num_threads(THREADS)
if jax is not None:
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    jnp = jax.numpy


def _sigmoid(z):
    # the numerically stable form (also what the generated code uses)
    return np.exp(-np.logaddexp(0.0, -z))


# --------------------------------------------------------------------------------------------------
# problems: matcalc text, variable, declarations, data maker, hand-written gradient and Hessian (NumPy),
# the loss written for JAX and for torch (same argument names as the generated function)


def _xax(n, rng):
    return {"x": rng.standard_normal(n), "A": rng.standard_normal((n, n))}


def _logistic(n, rng):
    m = 2 * n
    return {"y": (rng.random(m) < 0.5).astype(float), "X": rng.standard_normal((m, n)),
            "w": rng.standard_normal(n) / np.sqrt(n)}


def _sumexp(n, rng):
    return {"A": rng.standard_normal((n, n)) / n, "x": rng.standard_normal(n)}


def _mf(n, rng):
    r = max(1, n // 10)
    return {"X": rng.standard_normal((n, n)), "U": rng.standard_normal((n, r)), "V": rng.standard_normal((r, n))}


def _mlp(n, rng):
    k = max(1, n // 10)
    return {"W2": rng.standard_normal((k, n)) / np.sqrt(n), "W1": rng.standard_normal((n, n)) / np.sqrt(n),
            "x": rng.standard_normal(n), "b": rng.standard_normal(n), "y": rng.standard_normal(k)}


def _hand_logistic_hess(y, X, w):
    s = _sigmoid(X @ w)
    return X.T @ ((s * (1.0 - s))[:, None] * X)


def _hand_mlp_grad_W1(W2, W1, x, b, y):
    t = np.tanh(W1 @ x + b)
    return np.outer((1.0 - t * t) * (2.0 * (W2.T @ (W2 @ t - y))), x)


def _hand_mlp_hess_x(W2, W1, x, b, y):
    t = np.tanh(W1 @ x + b)
    q = 1.0 - t * t
    g = W2.T @ (W2 @ t - y)
    B = W2 * q
    M = 2.0 * (B.T @ B)
    M[np.diag_indices_from(M)] -= 4.0 * t * q * g
    return W1.T @ M @ W1


def _jax_losses():
    if jax is None:
        return {}
    ls = jax.nn.log_sigmoid
    return {
        "x'Ax": lambda x, A: x @ A @ x,
        "logistic": lambda y, X, w: -(y @ ls(X @ w)) - (1.0 - y) @ ls(-(X @ w)),
        "sum(exp(Ax))": lambda A, x: jnp.sum(jnp.exp(A @ x)),
        "MF ||X-UV||^2": lambda X, U, V: jnp.sum((X - U @ V) ** 2),
        "MLP": lambda W2, W1, x, b, y: jnp.sum((W2 @ jnp.tanh(W1 @ x + b) - y) ** 2),
    }


def _torch_losses():
    if torch is None:
        return {}
    ls = torch.nn.functional.logsigmoid
    return {
        "x'Ax": lambda x, A: x @ A @ x,
        "logistic": lambda y, X, w: -(y @ ls(X @ w)) - (1.0 - y) @ ls(-(X @ w)),
        "sum(exp(Ax))": lambda A, x: torch.sum(torch.exp(A @ x)),
        "MF ||X-UV||^2": lambda X, U, V: torch.sum((X - U @ V) ** 2),
        "MLP": lambda W2, W1, x, b, y: torch.sum((W2 @ torch.tanh(W1 @ x + b) - y) ** 2),
    }


#: name -> (text, declarations, gradient variable, Hessian variable or None, data, hand grad, hand Hessian)
PROBLEMS: dict[str, tuple] = {
    "x'Ax": ("x' A x", {}, "x", "x", _xax,
             lambda x, A: A @ x + A.T @ x, lambda x, A: A + A.T),
    "logistic": ("-y' log(sigmoid(X w)) - (1-y)' log(1 - sigmoid(X w))", {}, "w", "w", _logistic,
                 lambda y, X, w: X.T @ (_sigmoid(X @ w) - y), _hand_logistic_hess),
    "sum(exp(Ax))": ("sum(exp(A x))", {}, "x", "x", _sumexp,
                     lambda A, x: A.T @ np.exp(A @ x), lambda A, x: A.T @ (np.exp(A @ x)[:, None] * A)),
    "MF ||X-UV||^2": ("||X - U V||_F^2", {}, "V", None, _mf,
                      lambda X, U, V: -2.0 * (U.T @ (X - U @ V)), None),
    "MLP": ("||W2 tanh(W1 x + b) - y||^2", {"b": "vector(m)"}, "W1", "x", _mlp,
            _hand_mlp_grad_W1, _hand_mlp_hess_x),
}

# --------------------------------------------------------------------------------------------------


def _calibrated(f: Callable[[], object], min_run: float) -> tuple[timeit.Timer, int, float]:
    """A timer for ``f``, the number of calls that lasts at least ``min_run`` seconds, and that run's time."""
    f()  # warm-up (first-call costs: torch.func tracing, caches)
    timer = timeit.Timer(f)
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= min_run or number >= 1 << 20:
            return timer, number, t
        number *= max(2, min(10, int(min_run / max(t, 1e-9)) + 1))


def bench_all(fs: dict[str, Callable[[], object]], repeat: int, min_run: float) -> dict[str, float]:
    """For each function: the min over ``repeat`` runs of the mean time per call, each run lasting at least
    ``min_run`` seconds. The runs are interleaved (one run of each function per round), so a change in the
    machine's load during the measurement affects every column alike instead of one."""
    calibrated = {k: _calibrated(f, min_run) for k, f in fs.items()}
    best = {k: t / number for k, (_, number, t) in calibrated.items()}
    for _ in range(repeat - 1):
        for k, (timer, number, _) in calibrated.items():
            best[k] = min(best[k], timer.timeit(number) / number)
    return best


def compile_jax_source(source: str, name: str):
    namespace: dict = {}
    exec(compile(source, f"<matcalc-generated jax {name}>", "exec"), namespace)  # noqa: S102 - our own codegen
    return next(v for k, v in namespace.items() if callable(v) and k.startswith(("derivative", "hessian")))


def jit_compiled(fn, args):
    """jax.jit(fn) lowered and compiled for ``args``; returns (compiled callable, compile seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def fmt(t: float | None) -> str:
    if t is None:
        return "-"
    us = t * 1e6
    return f"{us:.1f}" if us < 100 else f"{us:.0f}"


def ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


SMOKE: tuple = ()  # in --smoke mode, the problems run (three of five, to keep CI fast)


def run(sizes, repeat, min_run, use_jax, use_torch, order: int, targets: Targets):
    rng = np.random.default_rng(0)
    jl, tl = _jax_losses(), _torch_losses()
    rows, checks = [], []
    for name, (text, decls, gvar, hvar, make, hand_g, hand_h) in PROBLEMS.items():
        if SMOKE and name not in SMOKE:
            continue
        var = gvar if order == 1 else hvar
        hand = hand_g if order == 1 else hand_h
        if var is None:
            rows.append([name, "all", "-", "n/a: the Hessian w.r.t. a matrix is a 4-way tensor"] + [""] * 10)
            continue
        d = matcalc.derive(text, var, layout="denominator", order=order, **decls)
        gen = compile_numpy(d)
        params = list(inspect.signature(gen).parameters)
        gen_jax = compile_jax_source(generate(d, "jax"), name) if use_jax else None
        for n in sizes:
            values = make(n, rng)
            args = [values[p] for p in params]
            expected = hand(*args)
            got = gen(*args)
            np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
            fs = {"gen": lambda gen=gen, args=args: gen(*args), "hand": lambda hand=hand, args=args: hand(*args)}
            comp = comp_g = None
            argnum = params.index(var)
            if use_jax:
                jargs = [jnp.asarray(a) for a in args]
                loss = jl[name]
                fn = jax.grad(loss, argnums=argnum) if order == 1 else jax.hessian(loss, argnums=argnum)
                cj, comp = jit_compiled(fn, jargs)
                np.testing.assert_allclose(np.asarray(cj(*jargs)), expected, rtol=1e-7, atol=1e-9)
                cg, comp_g = jit_compiled(gen_jax, jargs)
                np.testing.assert_allclose(np.asarray(cg(*jargs)), expected, rtol=1e-7, atol=1e-9)
                fs["jax"] = lambda cj=cj, jargs=jargs: cj(*jargs).block_until_ready()
                fs["genjax"] = lambda cg=cg, jargs=jargs: cg(*jargs).block_until_ready()
            if use_torch:
                targs = [torch.as_tensor(a, dtype=torch.float64) for a in args]
                tf = (torch.func.grad if order == 1 else torch.func.hessian)(tl[name], argnums=argnum)
                np.testing.assert_allclose(tf(*targs).numpy(), expected, rtol=1e-7, atol=1e-9)
                fs["torch"] = lambda tf=tf, targs=targs: tf(*targs)
            times = bench_all(fs, repeat, min_run)
            t_gen, t_hand = times["gen"], times["hand"]
            t_jax, t_genjax, t_torch = times.get("jax"), times.get("genjax"), times.get("torch")
            row = [name, n, f"{var}" + ("²" if order == 2 else ""), fmt(t_gen), fmt(t_hand), ratio(t_gen, t_hand)]
            if use_jax:
                row += [fmt(t_jax), f"{comp * 1e3:.0f}", ratio(t_jax, t_gen), fmt(t_genjax), f"{comp_g * 1e3:.0f}",
                        ratio(t_genjax, t_jax)]
            else:
                row += ["skipped: not installed" if jax is None else "skipped (--no-jax)"] + [""] * 5
            if use_torch:
                row += [fmt(t_torch), ratio(t_torch, t_gen)]
            else:
                row += ["skipped: not installed" if torch is None else "skipped (--no-torch)", ""]
            rows.append(row)
            checks.append((name, n, t_gen, t_hand, t_jax, t_genjax, t_torch))
    return rows, checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="n = 4, two repeats, short runs")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (the minimum is kept)")
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for BLAS, XLA and torch (default 1; read before the libraries load)")
    parser.add_argument("--no-layers", action="store_true", help="skip the transformer layers (bench_layers.py)")
    args = parser.parse_args(argv)
    global SMOKE
    if args.smoke:
        SMOKE = ("x'Ax", "MF ||X-UV||^2", "MLP")
    sizes, repeat, min_run = ((4,), 2, 0.001) if args.smoke else ((10, 100, 1000), args.repeat, 0.05)
    use_jax = jax is not None and not args.no_jax
    use_torch = torch is not None and not args.no_torch
    versions = [f"numpy {np.__version__}"]
    if jax is not None:
        versions.append(f"jax {jax.__version__} ({jax.devices()[0].platform}, x64)")
    if torch is not None:
        versions.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    pinned = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# bench_codegen: {', '.join(versions)}; {os.cpu_count()} CPUs ({pinned} usable by this process), "
          f"{THREADS} thread(s) per library; {load_line()}")
    print(f"# times in microseconds per call: min over {repeat} runs, each run >= {min_run * 1e3:.0f} ms "
          "(wall clock); jax compile in ms, excluded from its run time")
    headers = ["problem", "n", "wrt", "generated NumPy", "hand NumPy", "gen/hand", "{jx}", "{jx} compile ms",
               "{jx}/gen", "gen JAX (jit)", "gen JAX compile ms", "genJAX/{jx}", "{tf}", "{tf}/gen"]
    t = Targets()
    all_checks = {}
    for order, jx, tf in ((1, "jax.grad (jit)", "torch.func.grad"), (2, "jax.hessian (jit)", "torch.func.hessian")):
        rows, checks = run(sizes, repeat, min_run, use_jax, use_torch, order, t)
        all_checks[order] = checks
        print(f"\n## {'Gradients' if order == 1 else 'Hessians'}\n")
        print(table([h.format(jx=jx, tf=tf) for h in headers], rows, align="lrl" + "r" * 11))
    print()
    grads, hess = all_checks[1], all_checks[2]
    worst = max(grads, key=lambda c: c[2] / c[3])
    t.check(all(c[2] <= 1.2 * c[3] for c in grads), "generated NumPy gradients within 1.2x of hand-written at every n",
            f"worst {worst[2] / worst[3]:.2f}x: {worst[0]} n={worst[1]}")
    worst = max(hess, key=lambda c: c[2] / c[3])
    t.check(all(c[2] <= 1.2 * c[3] for c in hess), "generated NumPy Hessians within 1.2x of hand-written at every n",
            f"worst {worst[2] / worst[3]:.2f}x: {worst[0]} n={worst[1]}")
    if use_jax:
        big = [c for c in hess if c[1] >= 100] or hess
        worst = min(big, key=lambda c: c[4] / c[2])
        t.check(all(c[4] >= 2 * c[2] for c in big), "generated Hessians >= 2x faster than jax.hessian at n >= 100",
                f"smallest speed-up {worst[4] / worst[2]:.1f}x: {worst[0]} n={worst[1]}")
        xax = [c for c in big if c[0] == "x'Ax"]
        worst = min(xax, key=lambda c: c[4] / c[2])
        t.check(all(c[4] >= 10 * c[2] for c in xax),
                "generated Hessian >= 10x faster than jax.hessian on x'Ax (n >= 100)",
                f"smallest speed-up {worst[4] / worst[2]:.1f}x at n={worst[1]}")
        worst = max(grads, key=lambda c: c[5] / c[4])
        t.check(all(c[5] <= 1.05 * c[4] for c in grads),
                "generated JAX (jit) never slower than jax.grad (jit) (5% noise allowance)",
                f"worst {worst[5] / worst[4]:.2f}x: {worst[0]} n={worst[1]}")
    else:
        print("(JAX targets not checked: JAX " + ("not installed)" if jax is None else "disabled)"))
    if args.smoke:
        print("(smoke run: sizes far too small for the targets; the PASS/FAIL lines only show the form)")
    print(t.report())
    return 0 if args.no_layers else _layers(args)


def _layers(args) -> int:
    """The transformer layers' table (issue #19), from ``bench_layers.py`` in its own process."""
    import subprocess

    sys.stdout.flush()
    extra = [flag for flag, on in (("--smoke", args.smoke), ("--no-jax", args.no_jax),
                                   ("--no-torch", args.no_torch)) if on]
    extra += ["--repeat", str(args.repeat), "--threads", str(args.threads)]
    print()
    sys.stdout.flush()
    layers = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_layers.py")
    return subprocess.run([sys.executable, layers, *extra], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
