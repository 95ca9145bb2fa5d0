"""Generated NumPy gradients against hand-written NumPy, to show the generated code costs nothing extra.

    python bench/bench_codegen.py            # n = 10, 100, 1000
    python bench/bench_codegen.py --smoke    # tiny sizes, a few repeats (for CI)
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matcalc  # noqa: E402
from matcalc.codegen import compile_numpy  # noqa: E402


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


#: name -> (expression, wrt, declarations, hand-written gradient in denominator layout, values(n, rng))
CASES: dict[str, tuple[str, str, dict, Callable, Callable]] = {
    "x'Ax": ("x' A x", "x", {}, lambda x, A: A @ x + x @ A,
             lambda n, rng: {"x": rng.standard_normal(n), "A": rng.standard_normal((n, n))}),
    "logistic": ("-y*log(sigmoid(w·x)) - (1-y)*log(1-sigmoid(w·x))", "w", {"y": "scalar"},
                 lambda y, w, x: (_sigmoid(w @ x) - y) * x,
                 lambda n, rng: {"y": 1.0, "w": rng.standard_normal(n) / n, "x": rng.standard_normal(n)}),
    "sum(exp(Ax))": ("sum(exp(A x))", "x", {}, lambda A, x: np.exp(A @ x) @ A,
                     lambda n, rng: {"A": rng.standard_normal((n, n)) / n, "x": rng.standard_normal(n)}),
}


def best_of(f: Callable, kwargs: dict, repeat: int) -> float:
    timer = timeit.Timer(lambda: f(**kwargs))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few repeats")
    args = parser.parse_args(argv)
    sizes, repeat = ((4, 8), 2) if args.smoke else ((10, 100, 1000), 5)
    rng = np.random.default_rng(0)
    print(f"{'case':<14} {'n':>6} {'generated (us)':>15} {'hand (us)':>10} {'ratio':>6}")
    for name, (expr, wrt, decls, hand, make) in CASES.items():
        d = matcalc.derive(expr, wrt=wrt, layout="denominator", **decls)
        generated = compile_numpy(d)
        for n in sizes:
            values = make(n, rng)
            np.testing.assert_allclose(generated(**values), hand(**values), rtol=1e-8, atol=1e-10)
            tg, th = best_of(generated, values, repeat), best_of(hand, values, repeat)
            print(f"{name:<14} {n:>6} {tg * 1e6:>15.1f} {th * 1e6:>10.1f} {tg / th:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
