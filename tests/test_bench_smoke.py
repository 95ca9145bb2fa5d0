"""Each benchmark script's --smoke mode runs and prints a table, so the scripts cannot rot.

The scripts run concurrently (they are independent subprocesses), which keeps this test near the
time of the slowest one. One more run hides JAX and torch to check the "skipped: not installed" path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = ["bench_derive.py", "bench_scaling.py", "bench_codegen.py", "bench_layers.py", "bench_str.py"]

# run a script with jax and torch made unimportable (a meta-path finder that refuses them)
HIDE = """
import os, runpy, sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('jax', 'jaxlib', 'torch'):
            raise ImportError('hidden for the test: ' + name)
sys.meta_path.insert(0, _Hide())
sys.argv = [sys.argv[1]] + sys.argv[2:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def _start(args):
    return subprocess.Popen([sys.executable, *args], cwd=BENCH.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs():
    procs = {name: _start([str(BENCH / name), "--smoke"]) for name in SCRIPTS}
    procs["hidden"] = _start(["-c", HIDE, str(BENCH / "bench_codegen.py"), "--smoke"])
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        out[name] = (p.returncode, stdout, stderr)
    return out


def _has_table(text: str) -> bool:
    lines = text.splitlines()
    return any(line.startswith("|") and set(line.replace("|", "").strip()) <= set("-: ") and "---" in line
               for line in lines) and sum(line.startswith("| ") for line in lines) >= 3


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_mode_prints_a_table(runs, script):
    code, stdout, stderr = runs[script]
    assert code == 0, stderr
    assert _has_table(stdout), stdout
    assert "PASS" in stdout or "FAIL" in stdout


def test_codegen_smoke_without_jax_and_torch(runs):
    code, stdout, stderr = runs["hidden"]
    assert code == 0, stderr
    assert _has_table(stdout), stdout
    assert "skipped: not installed" in stdout
