"""Scaling of the derivative of a deep network: sum(tanh(W_L … tanh(W_1 x))) w.r.t. W_1 and w.r.t. x.

    python bench/bench_scaling.py            # L = 1, 2, 4, ..., 64
    python bench/bench_scaling.py --smoke    # L = 1, 2, 4 (for CI)

For each depth L: the median of several fresh matcalc.derive(text, wrt, layout="denominator") calls
(parse + derive + simplify; the lark parser is warmed up first) and the size of the result,
matcalc.nodes.count_nodes(d.expr), which counts a shared subexpression once. For L <= 8 the answer is
also checked against central finite differences. For d/dW1 the printed length is measured too: with named
parts (h₁ = tanh(W1 x), h₂ = tanh(W2 h₁), ...) it must grow linearly in L; printed whole it grows like L².
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time  # noqa: F401

import numpy as np
from _util import Targets, clock, load_line, table

import matcalc  # noqa: E402
from matcalc.nodes import count_nodes  # noqa: E402


def network(L: int) -> str:
    inner = "x"
    for i in range(1, L + 1):
        inner = f"tanh(W{i} {inner})"
    return f"sum({inner})"


def slope(Ls, ys) -> float:
    """The exponent p of y ~ L^p by least squares on log-log (over the depths given)."""
    lx, ly = np.log(Ls), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0])


def check(d, L: int) -> bool:
    from bench_derive import close, fd_first, random_values

    rng = np.random.default_rng(L)
    values = random_values(d.function, rng)
    values = {k: (v / math.sqrt(v.shape[-1]) if isinstance(v, np.ndarray) and v.ndim == 2 else v)
              for k, v in values.items()}
    return close(d.evaluate(**values), fd_first(d.function, d.variable.name, values))


CLOCK = clock("cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="L = 1, 2, 4 only, few repetitions")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: process CPU time (default; robust on a shared machine); wall: perf_counter")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = clock(args.clock)
    depths = [1, 2, 4] if args.smoke else [1, 2, 4, 8, 16, 32, 64]
    reps = 3 if args.smoke else 7
    matcalc.derive("sum(tanh(W2 tanh(W1 x)))", "W1", layout="denominator")  # warm-up: parser, lazy imports
    print(f"# bench_scaling ({args.clock} time; {load_line()}): median of {reps} fresh derive() calls per depth "
          "(lark parser warmed up first)")
    results: dict[str, list[tuple[int, float, int]]] = {"W1": [], "x": []}
    printed: list[tuple[int, int, int]] = []  # (L, named length, whole length) of d/dW1 in Unicode
    rows = []
    for L in depths:
        text = network(L)
        row = [L, len(text), count_nodes(matcalc.parse(text))]
        for wrt in ("W1", "x"):
            d = matcalc.derive(text, wrt, layout="denominator")
            times = []
            for _ in range(reps):
                t0 = CLOCK()
                matcalc.derive(text, wrt, layout="denominator")
                times.append(CLOCK() - t0)
            med, size = statistics.median(times), count_nodes(d.expr)
            prev = results[wrt][-1] if results[wrt] else None
            results[wrt].append((L, med, size))
            ok = ("ok" if check(d, L) else "WRONG") if L <= 8 else "-"
            row += [f"{med * 1e3:.2f}", f"{med / prev[1]:.2f}" if prev else "-", size,
                    f"{size / prev[2]:.2f}" if prev else "-", ok]
            if wrt == "W1":
                printed.append((L, len(d.unicode()), len(d.unicode(named=False))))
                row += [printed[-1][1], printed[-1][2]]
        rows.append(row)
    headers = ["L", "text chars", "f nodes"]
    for wrt in ("W1", "x"):
        headers += [f"d/d{wrt} ms", "x prev", f"d/d{wrt} nodes", "x prev", "check"]
        headers += ["printed", "whole"] if wrt == "W1" else []
    print(table(headers, rows))

    t = Targets()
    fit_from = 4 if not args.smoke else 1
    for wrt in ("W1", "x"):
        pts = [p for p in results[wrt] if p[0] >= fit_from]
        Ls = [p[0] for p in pts]
        p_time = slope(Ls, [p[1] for p in pts])
        p_size = slope(Ls, [p[2] for p in pts])
        a, b = np.polyfit(Ls, [p[2] for p in pts], 1)
        max_dev = max(abs(p[2] - (a * p[0] + b)) / p[2] for p in pts)
        print(f"d/d{wrt}: time ~ L^{p_time:.2f}, size ~ L^{p_size:.2f} (log-log fit over L >= {fit_from}); "
              f"size = {a:.2f} L + {b:.1f} within {max_dev:.1%}")
        t.check(p_size <= 1.1 and max_dev <= 0.05, f"d/d{wrt}: result size grows linearly in L",
                f"exponent {p_size:.2f}, linear fit within {max_dev:.1%}")
        t.check(p_time <= 1.25, f"d/d{wrt}: time grows linearly in L", f"exponent {p_time:.2f} (<= 1.25 allowed)")
        last = results[wrt][-1]
        if last[0] == 64:
            t.check(last[1] < 1.0, f"d/d{wrt}: L = 64 under 1 s", f"{last[1] * 1e3:.1f} ms")
    pts = [p for p in printed if p[0] >= 8]  # below L = 8 a result is too short to name its parts
    if len(pts) >= 2:
        p_named = slope([p[0] for p in pts], [p[1] for p in pts])
        p_whole = slope([p[0] for p in pts], [p[2] for p in pts])
        print(f"d/dW1 printed (fit over L >= 8): named parts ~ L^{p_named:.2f}, whole ~ L^{p_whole:.2f}")
        t.check(p_named <= 1.15, "d/dW1: printed length (named parts) grows linearly in L",
                f"exponent {p_named:.2f}")
    print(t.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
