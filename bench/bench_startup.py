"""Start-up of the command line against ``python -c "import numpy"``, measured side by side.

Issue 17's target: ``matcalc derive "x' A x" --wrt x`` takes at most 0.75 times as long as
``python -c "import numpy"``. The two commands are run alternately (so a change in the machine's load hits
both), N times each, from a directory outside the checkout; the medians of wall-clock time and of CPU time
(user + system of the child, from getrusage) are printed with their ratios.

    python bench/bench_startup.py [N] [--matcalc-path DIR] [--smoke]

``--matcalc-path`` puts DIR first on PYTHONPATH (default: this checkout). Python's bytecode cache is
allowed (an installed wheel has its .pyc files; ``PYTHONDONTWRITEBYTECODE`` would make every run compile
matcalc's sources again, which is not how an installed package starts). One warm-up run of each first
fills matcalc's parser cache and the bytecode cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
    """(CPU ms, wall ms) of one run of ``cmd``."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, env=env, cwd=cwd, check=True)
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
    return cpu, (t1 - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=20)
    ap.add_argument("--matcalc-path", default=str(ROOT))
    ap.add_argument("--smoke", action="store_true", help="3 runs each, for the test suite")
    args = ap.parse_args()
    n = 3 if args.smoke else args.n
    env = dict(os.environ, PYTHONPATH=args.matcalc_path)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    matcalc = [sys.executable, "-m", "matcalc", "derive", "x' A x", "--wrt", "x"]
    numpy = [sys.executable, "-c", "import numpy"]
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout: -m must find matcalc on PYTHONPATH
        run(matcalc, env, cwd), run(numpy, env, cwd)
        m, p = [], []
        for _ in range(n):
            m.append(run(matcalc, env, cwd))
            p.append(run(numpy, env, cwd))

    def med(values, i):
        return statistics.median(v[i] for v in values)

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# bench_startup: {n} alternating runs each; load average {load}")
    print("| measure | matcalc derive \"x' A x\" --wrt x | python -c \"import numpy\" | ratio (target <= 0.75) |")
    print("| --- | --- | --- | --- |")
    for i, what in ((1, "wall, median"), (0, "CPU, median")):
        a, b = med(m, i), med(p, i)
        print(f"| {what} | {a:.0f} ms | {b:.0f} ms | {a / b:.2f} |")


if __name__ == "__main__":
    main()
