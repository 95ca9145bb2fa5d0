"""Measure the attack classes of docs/reliability.md: how many inputs, what they gave, worst time and memory.

    PYTHONPATH=. python bench/attacks.py            # prints the markdown table

Each class runs in its own forked process, so its peak memory (ru_maxrss) is its own. Every input runs
under matcalc's default budgets; an outcome is a result, a MatcalcError (by class name), or "OTHER" (a
raw exception: a bug, which tests/test_attacks.py would catch).
"""

from __future__ import annotations

import multiprocessing as mp
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import matcalc  # noqa: E402
from matcalc.names import RESERVED_NAMES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_attacks import BLOW_UPS, COLLIDING, PAYLOADS  # noqa: E402


def _payload_cases():
    for p in PAYLOADS:
        yield lambda p=p: matcalc.parse("x' A x", x=(p, 1), A=(p, p))
        yield lambda p=p: matcalc.derive("x' A x", wrt="x", **{p: "scalar"})
        yield lambda p=p: matcalc.parse(f"x where x: vector({p})")
        yield lambda p=p: matcalc.parse(f"x where {p}: scalar")
        yield lambda p=p: matcalc.parse("x", x=f"vector({p})")


def _reserved_cases():
    for name in sorted(RESERVED_NAMES):
        yield lambda n=name: matcalc.parse("x", **{n: "scalar"})
        yield lambda n=name: matcalc.parse(f"x where {n}: scalar")


def _colliding_cases():
    for name in COLLIDING:
        text = f"{name} * {name} + {name} * y"
        d = matcalc.derive(text, wrt=name, **{name: "scalar"}, y="scalar")
        values = {name: 2.0, "y": 1.0}
        for out in (str, lambda d: d.unicode(), lambda d: d.latex(), lambda d: d.to_numpy(), lambda d: d.to_jax(),
                    lambda d: d.to_torch(), lambda d, v=values: d.compile()(**v),
                    lambda d, v=values: d.evaluate(**v)):
            yield lambda d=d, out=out: out(d)


def _blow_up_cases():
    for _label, text, wrt, order in BLOW_UPS:
        def run(text=text, wrt=wrt, order=order):
            d = matcalc.derive(text, wrt=wrt, order=order)
            for out in (str, lambda d: d.unicode(), lambda d: d.latex(), lambda d: d.to_numpy()):
                try:
                    out(d)
                except matcalc.MatcalcError:
                    pass
            return d
        yield run
    d = matcalc.derive("logdet(A)", wrt="A", A="matrix(7, 7)")
    yield d.to_sympy


def _value_cases(count=400):
    rng = random.Random(13)
    d = matcalc.derive("x' A x + det(A)", wrt="A")
    atoms = [1.0, -2.5, float("nan"), float("inf"), 1j, "a", None, 1e308, [], True]
    for _ in range(count):
        def value():
            k = rng.randrange(4)
            if k == 0:
                return rng.choice(atoms)
            if k == 1:
                return [rng.choice(atoms) for _ in range(rng.randrange(4))]
            if k == 2:
                return np.random.default_rng(rng.randrange(99)).normal(size=(2, 2))
            return [[rng.choice(atoms) for _ in range(2)] for _ in range(rng.randrange(1, 3))]
        x, a = value(), value()
        yield lambda x=x, a=a: d.evaluate(x=x, A=a)


def _name_cases(count=400):
    rng = random.Random(14)
    alphabet = "abcXYZ_019 {}()'\"\\\n\x00é中σ‖|.,:"
    for _ in range(count):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8)))
        dim = rng.choice([name, rng.randrange(-3, 10**10), "n"])
        yield lambda name=name, dim=dim: matcalc.derive("x' A x", wrt="x", x=(dim, 1), A=(dim, dim),
                                                        **({name: "scalar"} if name not in "xA" else {})).compile()


def _text_cases(count=400):
    rng = random.Random(15)
    pieces = ["x", "A", "'", "(", ")", "+", "-", "*", ".*", "^", "||", "‖", "|", "tr(", "det(", "min(", ",",
              "1e999", "2^", "٣", "\t", "中", "where x: vector(n)", "1e400", " ", "exp(", "sum("]
    for _ in range(count):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        yield lambda text=text: matcalc.derive(text, wrt="x")


CLASSES = [
    ("injection payloads at every door (where, keywords, tuples, kinds)", _payload_cases),
    ("reserved names, by keyword and by where", _reserved_cases),
    ("names colliding with Python, through every output", _colliding_cases),
    ("blow-ups of the issue's table, derived and printed", _blow_up_cases),
    ("malformed values for evaluate()", _value_cases),
    ("random names and sizes, compiled", _name_cases),
    ("random token soup, derived", _text_cases),
]


def _run_class(make, conn):
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes: Counter = Counter()
    worst = [0.0, 0.0]
    count = 0
    for case in make():
        count += 1
        start, cpu = time.monotonic(), time.thread_time()
        try:
            case()
            outcomes["result"] += 1
        except matcalc.MatcalcError as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - reported as a bug
            outcomes[f"OTHER {type(exc).__name__}"] += 1
        worst = [max(worst[0], time.thread_time() - cpu), max(worst[1], time.monotonic() - start)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    conn.send((count, dict(outcomes), worst, peak))


def main() -> None:
    ctx = mp.get_context("fork")
    print("| attack | tried | outcome | worst CPU time (wall) | worst memory |")
    print("| --- | ---: | --- | ---: | ---: |")
    for label, make in CLASSES:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_run_class, args=(make, send))
        proc.start()
        count, outcomes, worst, peak = recv.recv()
        proc.join()
        shown = ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]))
        print(f"| {label} | {count} | {shown} | {worst[0]:.2f} s ({worst[1]:.2f} s) | {peak / 1024:.0f} MB |",
              flush=True)
    print()
    _blow_up_table()


def _stage(fn) -> str:
    start = time.thread_time()
    try:
        out = fn()
        what = f"{len(out):,} chars" if isinstance(out, str) else "ok"
    except matcalc.MatcalcError as exc:
        what = f"{type(exc).__name__} ({getattr(exc, 'limit', '')})".replace(" ()", "")
    return f"{what}, {time.thread_time() - start:.2f} s"


def _blow_up_table() -> None:
    """One line per row of the issue's table: each stage's outcome and CPU time."""
    print("| input | derive | text | NumPy code |")
    print("| --- | --- | --- | --- |")
    rows = [(label, lambda t=text, w=wrt, o=order: matcalc.derive(t, wrt=w, order=o))
            for label, text, wrt, order in BLOW_UPS]
    rows.append(("--format sympy of logdet(A), 7 x 7", lambda: matcalc.derive("logdet(A)", wrt="A", A="matrix(7, 7)")))
    for label, make in rows:
        holder = {}

        def derive(make=make, holder=holder):
            holder["d"] = make()
            return holder["d"]

        first = _stage(derive)
        d = holder.get("d")
        if d is None:
            print(f"| {label} | {first} | - | - |", flush=True)
            continue
        text = _stage(d.to_sympy if "sympy" in label else (lambda d=d: str(d)))
        print(f"| {label} | {first} | {text} | {_stage(d.to_numpy)} |", flush=True)


if __name__ == "__main__":
    main()
