"""``str(node)`` against ``to_text(node)``, before and after issue #14 (the where clause decided from the node).

    python bench/bench_str.py            # typical expressions and their derivatives (about half a minute)
    python bench/bench_str.py --smoke    # a few, few repetitions (for CI)

``str(node)`` is ``to_text(node, declarations=True)``: the input-language text, with a ``where`` clause when
the bare text would not parse back to the node. *Before*, that was decided by printing the text and the
explicit-sizes text and parsing them back with the type checker (kept as ``printing._reparsed``, now the
fallback); *after*, by :func:`matcalc.printing.readback.reads_back`, which runs the checker's inference on
the node. Each figure is the median of the repetitions, in microseconds; nodes are built once (hash-consed),
so only printing is timed. The last lines give how often the readback left a node to the parser.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from _util import Targets, table

import matcalc
from matcalc import printing
from matcalc.printing import readback, to_text

EXPRESSIONS = [
    ("x' A x", "x"),
    ("norm(A x - b)^2", "x"),
    ("sum(log(1 + exp(-y .* (X w))))", "w"),
    ("tr(inv(A) B)", "A"),
    ("logdet(X) - tr(S X) where S: symmetric(n)", "X"),
    ("softmax(W x)", "W"),
    ("sum((W2 tanh(W1 x + b1) + b2 - y).^2) where b1: vector(m), b2: vector(n), W1: matrix(m, n), "
     "W2: matrix(n, m)", "W1"),
    ("sum(softmax(Q K' / sqrt(d)) V) where Q: matrix(t, d), K: matrix(t, d), V: matrix(t, d)", "K"),
    ("sum(tanh(X W + b')) where X: matrix(m, n), W: matrix(n, k), b: vector(k)", "W"),
    ("mean(log_softmax(Z, axis=1)) where Z: matrix(m, k)", "Z"),
    ("x' A x where x: vector(3), A: matrix(3, 3)", "x"),
    ("sum(max(X, axis=0))", "X"),
]
SMOKE = EXPRESSIONS[:4]


def _nodes(exprs) -> list[tuple[str, matcalc.Node]]:
    """Each expression, its derivative, and (for a scalar) its Hessian."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text, wrt in exprs:
            e = matcalc.parse(text, warn=False)
            label = text.split(" where ")[0]
            label = label if len(label) <= 34 else label[:31] + "..."
            out.append((label, e))
            out.append((f"  d/d{wrt}", matcalc.derive(e, wrt, warn=False).expr))
            if e.shape == ():
                try:
                    out.append((f"  d2/d{wrt}2", matcalc.derive(e, wrt, order=2, warn=False).expr))
                except matcalc.MatcalcError:
                    pass
    return [(label, n) for label, n in out if n is not None]


def _median(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _old_str(node) -> str:
    """``str(node)`` before: the bare text, then the texts parsed back."""
    return printing._reparsed(node, to_text(node))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a few expressions, few repetitions")
    args = ap.parse_args()
    reps = 5 if args.smoke else 40
    nodes = _nodes(SMOKE if args.smoke else EXPRESSIONS)
    rows, totals = [], [0.0, 0.0, 0.0]
    readback.STATS.update(decided=0, unsure=0)
    for label, node in nodes:
        assert str(node) == _old_str(node), label  # the output is unchanged
        t_text = _median(lambda n=node: to_text(n), reps)
        t_old = _median(lambda n=node: _old_str(n), reps)
        t_new = _median(lambda n=node: str(n), reps)
        for i, t in enumerate((t_text, t_old, t_new)):
            totals[i] += t
        answer = readback.reads_back(node, to_text(node)) or "parsed"
        rows.append([label, len(to_text(node)), f"{t_text * 1e6:.0f}", f"{t_old * 1e6:.0f}", f"{t_new * 1e6:.0f}",
                     f"{t_old / t_text:.2f}", f"{t_new / t_text:.2f}", answer])
    rows.append(["all", "", f"{totals[0] * 1e6:.0f}", f"{totals[1] * 1e6:.0f}", f"{totals[2] * 1e6:.0f}",
                 f"{totals[1] / totals[0]:.2f}", f"{totals[2] / totals[0]:.2f}", ""])
    print(table(["node", "chars", "to_text µs", "str before µs", "str after µs", "before / to_text",
                 "after / to_text", "text chosen"], rows, "lrrrrrrl"))
    stats = readback.STATS
    print(f"\nreadback: {stats['decided']} decided from the node, {stats['unsure']} left to the parser "
          f"(the fallback), over {len(nodes)} nodes x {3 * reps + 2} calls\n")
    targets = Targets()
    targets.check(True, "str(node) unchanged for every node (asserted above)")
    targets.check(totals[2] < totals[1], "str() faster than before", f"{totals[1] / totals[2]:.1f}x")
    targets.check(stats["unsure"] <= 0.02 * (stats["decided"] + stats["unsure"]),
                  "at most 2% of the nodes left to the parser")
    print(targets.report())


if __name__ == "__main__":
    main()
