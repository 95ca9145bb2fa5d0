"""The command line: every format, --let, stdin, exit codes, and errors without tracebacks."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- derive -----------------------------------------------------------------------------------------
WHERE_XA = "where x: vector(n) (letter convention), A: matrix(n, n) (letter convention)"


def test_derive_text(capsys):
    # issue 17: every answer ends with a line saying what was assumed about each name
    code, out, err = run(capsys, "derive", "x' A x", "--wrt", "x")
    assert (code, out, err) == (0, f"x' (A + A')\n{WHERE_XA}\n", "")


def test_derive_neuron_needs_no_declarations(capsys):
    code, out, _ = run(capsys, "derive", "max(0, w·x + b)", "--wrt", "w")
    assert code == 0 and out.splitlines()[0] == "step(dot(w, x) + b) x'"
    assert out.splitlines()[1] == ("where w: vector(n) (from usage), x: vector(n) (from usage), "
                                   "b: scalar (letter convention)")


def test_derive_denominator_layout_unicode(capsys):
    code, out, _ = run(capsys, "derive", "||X - U V||_F^2", "--wrt", "V", "--layout", "denominator",
                       "--format", "unicode")
    assert code == 0 and out.splitlines()[0] == "-2 Uᵀ (X - U V)" and out.splitlines()[1].startswith("where X: ")


def test_derive_latex(capsys):
    code, out, _ = run(capsys, "derive", "x' A x", "--wrt", "x", "--format", "latex")
    assert code == 0 and "\\mathbf{A}^{\\top}" in out.splitlines()[0]
    assert out.splitlines()[1].startswith("\\text{where } \\mathbf{x} \\in \\mathbb{R}^{n}")


def test_derive_hessian(capsys):
    code, out, _ = run(capsys, "derive", "x' A x", "--wrt", "x", "--order", "2")
    assert code == 0 and out.splitlines() == ["A + A'", WHERE_XA]


def test_derive_several_variables_one_line_each(capsys):
    code, out, _ = run(capsys, "derive", "w·x + b", "--wrt", "w", "--wrt", "b")
    assert code == 0 and out.splitlines()[:2] == ["d/dw: x'", "d/db: 1"] and out.splitlines()[2].startswith("where")


def test_derive_wrt_optional_with_one_variable(capsys):
    code, out, _ = run(capsys, "derive", "sum(exp(x))")
    assert code == 0 and out.splitlines() == ["exp(x)'", "where x: vector(n) (letter convention)"]


def test_let_declarations(capsys):
    code, out, _ = run(capsys, "derive", "x' S x", "--wrt", "x", "--let", "S: symmetric(n)",
                       "--let", "x: vector(n)", "--layout", "denominator")
    assert code == 0 and out.splitlines() == ["2 S x", "where x: vector(n) (declared), S: symmetric(n) (declared)"]
    code, out, _ = run(capsys, "derive", "a·x", "--wrt", "a", "--let", "a, x: vector(3)", "--format", "json")
    obj = json.loads(out)  # a declaration beats the convention that a is a scalar
    assert code == 0 and obj["declarations"] == {"a": "vector(3)", "x": "vector(3)"}
    assert obj["derivatives"][0]["shape"] == ["1", "3"]


def test_let_twice_with_different_kinds(capsys):
    code, _, err = run(capsys, "derive", "x' x", "--let", "x: vector(n)", "--let", "x: scalar")
    assert code == 1 and "declared twice" in err


def test_json(capsys):
    code, out, _ = run(capsys, "derive", "x' A x", "--wrt", "x", "--let", "A: matrix(n,n)", "--format", "json")
    obj = json.loads(out)
    assert code == 0
    # issue 17: one schema whatever the number of --wrt: "wrt" and "derivatives" are lists
    assert obj["input"] == "x' A x" and obj["wrt"] == ["x"] and obj["layout"] == "numerator" and obj["order"] == 1
    (d,) = obj["derivatives"]
    assert d["wrt"] == ["x"] and d["derivative"] == "x' (A + A')" and d["unicode"] == "xᵀ (A + Aᵀ)"
    assert obj["declarations"] == {"x": "vector(n)", "A": "matrix(n, n)"}
    assert d["shape"] == ["1", "n"] and "\\top" in d["latex"]
    assert "check" not in d
    assert [(a["name"], a["kind"], a["source"]) for a in obj["assumptions"]] == [
        ("x", "vector", "convention"), ("A", "matrix", "declaration")]


def test_json_several_variables(capsys):
    code, out, _ = run(capsys, "derive", "w·x + b", "--wrt", "w", "--wrt", "b", "--format", "json")
    obj = json.loads(out)
    assert code == 0 and obj["wrt"] == ["w", "b"]
    assert [d["derivative"] for d in obj["derivatives"]] == ["x'", "1"]


@pytest.mark.parametrize("target", ["numpy", "jax", "torch"])
def test_code_formats(capsys, target):
    code, out, _ = run(capsys, "derive", "sum(exp(A x))", "--wrt", "x", "--format", target)
    assert code == 0
    tree = ast.parse(out)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["derivative_x"]


def test_numpy_format_runs(capsys):
    code, out, _ = run(capsys, "derive", "x' A x", "--wrt", "x", "--wrt", "A", "--format", "numpy",
                       "--value-and-grad")
    assert code == 0 and out.count("import numpy") == 1
    namespace: dict = {}
    exec(out, namespace)
    x, A = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    value, grad = namespace["value_and_derivative_x"](x=x, A=A)
    assert value == pytest.approx(x @ A @ x)
    np.testing.assert_allclose(grad, x @ (A + A.T))
    np.testing.assert_allclose(namespace["value_and_derivative_A"](x=x, A=A)[1], np.outer(x, x))


def test_numpy_format_writes_a_helper_once(capsys):
    """NumPy has no erf: the generated module defines it once (a preamble), above the first function."""
    code, out, _ = run(capsys, "derive", "sum(gelu(W x) .* erf(x))", "--wrt", "x", "--wrt", "W", "--format", "numpy")
    assert code == 0 and out.count("import numpy") == 1 and out.count("def _matcalc_erf(") == 1
    assert out.index("def _matcalc_erf(") < out.index("def derivative_x(")
    namespace: dict = {}
    exec(out, namespace)
    W, x = np.array([[1.0, -0.5], [0.3, 2.0]]), np.array([0.4, -1.2])
    for name in ("x", "W"):
        d = matcalc.derive("sum(gelu(W x) .* erf(x))", name)
        np.testing.assert_allclose(namespace[f"derivative_{name}"](W=W, x=x), d.evaluate(W=W, x=x), rtol=1e-13)


def test_sympy_format(capsys):
    code, out, _ = run(capsys, "derive", "x' x", "--wrt", "x", "--format", "sympy")
    assert code == 0 and "x_0" in out


def test_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("x' A x\n"))
    code, out, _ = run(capsys, "derive", "-", "--wrt", "x")
    assert code == 0 and out.splitlines() == ["x' (A + A')", WHERE_XA]


def test_steps(capsys):
    pytest.importorskip("matcalc.diff.steps")
    code, out, _ = run(capsys, "derive", "max(0, w·x + b)", "--wrt", "w", "--steps")
    assert code == 0 and "Chain rule" in out and out.splitlines()[-2] == "step(dot(w, x) + b) x'"


def test_check_flag(capsys):
    pytest.importorskip("matcalc.verify")
    code, out, _ = run(capsys, "derive", "x' A x", "--wrt", "x", "--check")
    assert code == 0 and "check: OK" in out
    code, out, _ = run(capsys, "derive", "tanh(W x)", "--wrt", "x", "--format", "json", "--check")
    check = json.loads(out)["derivatives"][0]["check"]
    assert code == 0 and check["ok"] is True and check["method"] in ("exact", "numeric")
    assert "max_error" in check


# --- check ------------------------------------------------------------------------------------------
def test_check_claim(capsys):
    pytest.importorskip("matcalc.verify")
    code, out, _ = run(capsys, "check", "x' A x", "--wrt", "x", "--claim", "2 A x", "--layout", "denominator")
    assert code == 1 and "wrong" in out and "(A + A') x" in out
    code, out, _ = run(capsys, "check", "x' A x", "--wrt", "x", "--claim", "2 A x", "--layout", "denominator",
                       "--let", "A: symmetric(n)")
    assert code == 0 and "right" in out


# --- parse ------------------------------------------------------------------------------------------
def test_parse(capsys):
    code, out, _ = run(capsys, "parse", "w·x + b where w: vector(3)")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "dot(w, x) + b" and "shape: scalar" in lines[1]
    assert "  w: vector(3) (declared)" in lines and "  b: scalar (letter convention)" in lines


def test_parse_json(capsys):
    code, out, _ = run(capsys, "parse", "A x", "--format", "json")
    obj = json.loads(out)
    assert code == 0 and obj["shape"] == ["n", "1"] and obj["declarations"]["A"] == "matrix(n, m)"


# --- errors and exit codes ----------------------------------------------------------------------------
def test_syntax_error_shows_caret(capsys):
    code, out, err = run(capsys, "derive", "x' A x +", "--wrt", "x")
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "^" in err and "Traceback" not in err
    assert "  x' A x +\n" in err


def test_shape_error(capsys):
    code, _, err = run(capsys, "derive", "A x + y", "--wrt", "x", "--let", "y: vector(3)",
                       "--let", "A: matrix(2, 2)")
    assert code == 1 and "^" in err and "Traceback" not in err


def test_unknown_wrt(capsys):
    code, _, err = run(capsys, "derive", "x' x", "--wrt", "q")
    assert code == 1 and "'q' does not occur" in err


def test_bad_let(capsys):
    code, _, err = run(capsys, "derive", "x' A x", "--let", "A: matrx(n)")
    assert code == 1 and "matrix" in err and "^" in err


def test_no_matrix_form_is_a_clean_error(capsys):
    # a vector literal of a vector has its stacked-row Jacobian now (issue #16); four axes are still refused
    code, _, err = run(capsys, "derive", "x x'", "--wrt", "x", "--order", "2")
    assert code == 1 and "no matrix form" in err and "4 axes" in err and "Traceback" not in err


def test_tensor_derivative_forms(capsys):
    code, out, _ = run(capsys, "derive", "tanh(W x)", "--wrt", "W")
    assert code == 0 and "d(tanh(W x)) = " in out and "δ_ik x_l" in out
    code, out, _ = run(capsys, "derive", "A X B", "--wrt", "X", "--format", "json")
    data = json.loads(out)["derivatives"][0]
    assert data["kind"] == "tensor(n, p, m, k)" and data["kronecker"] == "kron(B', A)"
    assert data["index"] == "∂(A X B)_ij/∂X_kl = A_ik B_lj"


def test_usage_errors_exit_2(capsys):
    assert main(["derive", "x", "--format", "cobol"]) == 2
    assert main(["frobnicate"]) == 2
    assert main([]) == 2
    assert main(["check", "x' x", "--wrt", "x"]) == 2  # --claim is required
    capsys.readouterr()


def test_help_lists_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "max(0, w·x + b)" in out and "||X - U V||_F^2" in out and "--layout denominator" in out
    code, out, _ = run(capsys, "derive", "--help")
    assert code == 0 and "--wrt" in out and "examples:" in out


def test_internal_error_exit_3(capsys, monkeypatch):
    import matcalc.cli as cli

    def boom(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(cli.COMMANDS, "parse", boom)
    monkeypatch.delenv("MATCALC_DEBUG", raising=False)
    code, _, err = run(capsys, "parse", "x")
    assert code == 3 and err.startswith("internal error: ZeroDivisionError: oops") and "Traceback" not in err
    monkeypatch.setenv("MATCALC_DEBUG", "1")
    code, _, err = run(capsys, "parse", "x")
    assert code == 3 and "Traceback" in err


# --- real processes -----------------------------------------------------------------------------------
def _python_m(*args, stdin: str | None = None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "matcalc", *args], input=stdin, capture_output=True,
                          text=True, encoding="utf-8", env=env, cwd=ROOT, timeout=120)


def test_subprocess_derive():
    p = _python_m("derive", "x' A x", "--wrt", "x", "--let", "A: matrix(n,n)")
    assert p.returncode == 0 and p.stdout == "x' (A + A')\n" + WHERE_XA.replace("(letter convention)\n", "") \
        .replace("A: matrix(n, n) (letter convention)", "A: matrix(n, n) (declared)") + "\n" and p.stderr == ""


def test_subprocess_stdin_and_format():
    p = _python_m("derive", "-", "--wrt", "W", "--format", "unicode", stdin="sum(tanh(W x))\n")
    assert p.returncode == 0 and p.stdout.splitlines()[0] == "x (1 - tanh(W x)⊙²)ᵀ"


def test_subprocess_bad_input_no_traceback():
    p = _python_m("derive", "x' A * * x", "--wrt", "x")
    assert p.returncode == 1 and "^" in p.stderr and "Traceback" not in p.stderr and p.stdout == ""


def test_subprocess_usage_error():
    p = _python_m("derive", "x", "--order", "3")
    assert p.returncode == 2 and "invalid choice" in p.stderr


def test_code_for_a_tensor_without_kronecker_form_is_a_clean_error(capsys):
    # (X' has one now, through the commutation matrix, issue #16; a broadcast scalar that depends on A has none)
    code, _, err = run(capsys, "derive", "A + x' A x", "--wrt", "A", "--format", "numpy")
    assert code == 1 and "no Kronecker" in err and "internal error" not in err
