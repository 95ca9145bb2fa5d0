"""Small helpers shared by the benchmark scripts: a plain-text table, targets, optional imports."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown-compatible table (pipe-separated) so the output can be pasted into docs as is."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ("l" + "r" * (len(headers) - 1))

    def line(r):
        padded = (c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align, strict=True))
        return "| " + " | ".join(padded) + " |"

    rules = (("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align, strict=True))
    sep = "|" + "|".join(rules) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


class Targets:
    """Collects PASS/FAIL lines, printed at the bottom of a run."""

    def __init__(self):
        self.results: list[tuple[bool, str, str]] = []

    def check(self, ok: bool, name: str, detail: str = "") -> bool:
        self.results.append((bool(ok), name, detail))
        return ok

    def report(self) -> str:
        return "\n".join(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else "")
                         for ok, name, detail in self.results)


def optional(name: str):
    """The module, or None when it is not importable (its columns then read 'skipped: not installed')."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not available here"
        return None


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}" if seconds < 1e-2 else f"{seconds * 1e6:.0f}"


def clock(name: str):
    """'cpu': time.process_time (CPU seconds of this process: robust on a shared, loaded machine for
    single-threaded work such as derivation); 'wall': time.perf_counter."""
    import time

    return time.process_time if name == "cpu" else time.perf_counter


def load_line() -> str:
    try:
        with open("/proc/loadavg") as f:
            return "load average " + " ".join(f.read().split()[:3])
    except OSError:
        return "load average unknown"
