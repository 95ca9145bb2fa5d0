"""Run every notebook in notebooks/ top to bottom; a cell that raises fails the test.

Each notebook is executed from a temporary copy with nbclient, in a ``python3`` kernel that runs this
very interpreter (so ``import matcalc`` finds the installed package, as in CI's venv). The notebooks are
committed without outputs; executing them here never writes back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need the test extras: pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need the test extras: pip install -e '.[test]'")
pytest.importorskip("ipykernel", reason="notebook tests need the test extras: pip install -e '.[test]'")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def python3_kernel(tmp_path_factory) -> str:
    """A ``python3`` kernelspec for this interpreter, found first on JUPYTER_PATH.

    ipykernel's built-in spec normally serves, but a ``python3`` spec installed elsewhere (for another
    interpreter) could win; this one cannot be shadowed.
    """
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    checkout = str(Path(__file__).resolve().parent.parent)  # matcalc importable even when not installed
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (matcalc tests)",
        "language": "python",
        "env": {"PYTHONPATH": checkout + os.pathsep + os.environ.get("PYTHONPATH", "")},
    }))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root) + (os.pathsep + old if old else "")
    yield "python3"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_parr_howard.ipynb", "02_d2l.ipynb", "03_training.ipynb", "04_newton.ipynb",
            "05_transformer.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped(path):
    """Committed without outputs: no outputs and execution_count null in every code cell."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, python3_kernel):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name=python3_kernel, resources={"metadata": {"path": str(tmp_path)}},
        allow_errors=False,
    )
    start = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} raised in a cell:\n{exc}", pytrace=False)
    elapsed = time.monotonic() - start
    assert elapsed < 120, f"{path.name} took {elapsed:.0f} s; notebooks should run in well under a minute"
