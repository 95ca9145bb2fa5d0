"""Issue 17: read what users mean, say what was assumed.

Each trap of the issue's table ends in an error with a caret, an AssumptionWarning naming the assumption and
its override, or the meaning users intend (checked numerically); every answer lists its assumptions; NumPy
spellings; one way to pass values; the command line's where line, notes, JSON schema and closed pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from finite_differences import first, random_values

import matcalc
from matcalc import nodes as N
from matcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent


def notes_of(text, **decls) -> list[str]:
    """The AssumptionWarning messages that parsing ``text`` issues."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matcalc.parse(text, **decls)
    return [str(w.message) for w in caught if issubclass(w.category, matcalc.AssumptionWarning)]


def check_numerically(d, seed=1, **opts):
    values = random_values(d.function, seed=seed, **opts)
    got = np.asarray(d.evaluate(**values), dtype=float)
    want = np.asarray(first(d.function, d.variable, values, d.layout), dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --- errors at the bracket / at the name -------------------------------------------------------------
@pytest.mark.parametrize("text, position", [
    ("x[1]^2 + x[2]^2", 1), ("exp(x[2]) / sum(exp(x))", 5), ("X[1, 2]", 1), ("(A x)[0]", 5), ("x[1:3]", 1),
    ("W1[2] x", 2),
])
def test_indexing_is_an_error_at_the_bracket(text, position):
    with pytest.raises(matcalc.MatcalcSyntaxError) as info:
        matcalc.parse(text)
    assert info.value.position == position and text[position] == "["
    assert "indexing" in str(info.value) and str(info.value).splitlines()[-1].strip() == "^"


@pytest.mark.parametrize("text, position", [("np.exp(x)", 0), ("sum(np.tanh(W @ x))", 4), ("torch.sigmoid(x)", 0)])
def test_a_module_prefix_is_an_error_that_says_to_drop_it(text, position):
    with pytest.raises(matcalc.MatcalcSyntaxError) as info:
        matcalc.parse(text)
    assert info.value.position == position and "without a module" in str(info.value)


def test_a_literal_after_a_space_or_a_number_is_still_a_product():
    assert isinstance(matcalc.parse("A [1, 2; 3, 4]"), N.MatMul)
    assert isinstance(matcalc.parse("2[x, y]"), N.MatMul)


@pytest.mark.parametrize("text, name, position", [
    ("sum(expm2(x) .* y)", "expm2", 4), ("f(x) + g(x)", "f", 0), ("x + g(x)", "g", 4), ("sine(x)", "sine", 0),
    ("a(x + y)", "a", 0),
])
def test_an_unknown_function_before_a_parenthesis_is_an_error(text, name, position):
    with pytest.raises(matcalc.UnknownFunctionError) as info:
        matcalc.parse(text)
    assert info.value.position == position and repr(name) in str(info.value)


def test_a_capital_or_a_space_before_a_parenthesis_multiplies():
    assert matcalc.parse("A(x + y)") is matcalc.parse("A (x + y)")
    assert matcalc.parse("a (x + y)") is matcalc.parse("a * (x + y)")
    assert matcalc.parse("f(x)", f="scalar") is matcalc.parse("f x", f="scalar")


def test_a_square_of_a_residual_is_not_a_matrix_power():
    with pytest.raises(matcalc.ShapeError) as info:  # w and y stay vectors; ^ of a vector suggests .^
        matcalc.parse("mean((X w - y)^2)")
    assert ".^" in str(info.value)
    d = matcalc.derive("mean((X w - y) ** 2)", "w")
    assert d.variable.shape[1] == 1 and d.variable.shape[0] != 1
    check_numerically(d)


# --- warnings ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, fragments", [
    ("x'Ax", ["Ax is read as one name", "'A x'"]),
    ("Wx + b", ["Wx is read as one name", "'W x'"]),
    ("W1x", ["'W1 x'"]),
    ("norm(W2 relu(W1 x + b1) + b2 - y)^2", ["b1 is taken to be a scalar", "where b1: vector(m)",
                                            "b2 is taken to be a scalar"]),
    ("(x - mu)' inv(S) (x - mu)", ["mu is taken to be a scalar", "Greek", "where mu: vector(n)"]),
    ("mu .* x", ["mu is taken to be a scalar", "multiplied with every entry"]),
    ("beta' x", ["beta is taken to be a scalar", "transposing a scalar", "where beta: vector(n)"]),
    ("X' X + λ", ["λ is taken to be a scalar", "'λ I'"]),
    ("e^x", ["Euler", "exp(x)"]),
    ("e .^ x", ["exp(x)"]),
    ("sum(x^2)", ["x is taken to be a scalar", ".^"]),
    ("(x' y)'", ["transposing a scalar does nothing"]),
    ("sigma(W x)", ["sigmoid"]),
    ("X beta", ["beta is taken to be a scalar", "scales the matrix X", "where beta: vector(m)"]),
])
def test_readings_users_rarely_mean_are_noted(text, fragments):
    notes = " | ".join(notes_of(text))
    for fragment in fragments:
        assert fragment in notes, notes


@pytest.mark.parametrize("text, decls", [
    ("x' A x", {}), ("max(0, w·x + b)", {}), ("3x^2 y", {}), ("x + 1", {}), ("tanh(W x + b)", {"b": "vector(m)"}),
    ("x - mu", {"mu": "vector(n)"}), ("b x", {}), ("mu x", {}), ("λ ||w||^2 + ||X w - y||^2", {}),
    ("e^x", {"e": "scalar"}),
    ("Ax + b", {"Ax": "vector(n)", "b": "vector(n)"}), ("x - mu where mu: scalar", {}), ("W1 x + b1", {"b1": "scalar"}),
    ("mu sigma", {}), ("x_2 + y", {}), ("Xtrain w", {}), ("logits", {}), ("A x b", {}), ("2 λ A", {}),
])
def test_ordinary_input_gets_no_note(text, decls):
    assert notes_of(text, **decls) == []


def test_notes_are_warnings_with_a_caret_and_can_be_silenced():
    with pytest.warns(matcalc.AssumptionWarning) as record:
        matcalc.derive("W1 x + b1", "x")
    warning = record[0].message
    assert warning.position == 7 and "b1" in str(warning) and str(warning).splitlines()[-1].strip() == "^"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matcalc.derive("W1 x + b1", "x", warn=False)
        matcalc.parse("W1 x + b1", warn=False)
        matcalc.hessian("x' x + sum(x - mu)", "x", warn=False)


def test_the_notes_are_kept_with_the_assumptions():
    d = matcalc.derive("W1 x + b1", "x", warn=False)
    assert len(d.assumptions.notes) == 1 and "b1" in d.assumptions.notes[0].message


def test_a_shape_error_caused_by_an_assumed_scalar_says_so():
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.parse("dot(X beta, y)")
    assert "beta is taken to be a scalar" in str(info.value) and "where beta: vector" in str(info.value)
    # since issue 15 y - X beta broadcasts the column y over the columns of the matrix X beta (as NumPy
    # does), so it parses: the warning says what was assumed
    with pytest.warns(matcalc.AssumptionWarning, match="beta is taken to be a scalar"):
        matcalc.parse("||y - X beta||^2")
    d = matcalc.derive("||y - X beta||^2", "beta", beta="vector(k)", layout="denominator")
    check_numerically(d)


def test_a_shape_error_caused_by_a_merged_name_says_so():
    with pytest.raises(matcalc.ShapeError) as info:
        matcalc.parse("x'Ax + x")
    assert "Ax is read as one name" in str(info.value)


# --- meanings users intend -----------------------------------------------------------------------------
def test_pi_is_the_constant():
    e = matcalc.parse("pi x")
    assert [s.name for s in N.symbols_of(e)] == ["x"] and matcalc.parse("π x") is e
    assert matcalc.to_unicode(e) == "π x" and "\\pi" in matcalc.to_latex(e)
    d = matcalc.derive("sin(pi x' x)", "x")
    check_numerically(d)
    x = np.array([0.3, -0.2])
    assert matcalc.evaluate("sin(pi x' x)", x=x) == pytest.approx(np.sin(np.pi * x @ x))
    assert "numpy" in d.to_numpy() and "3.14159" in d.to_numpy()


def test_a_declared_pi_is_a_variable():
    d = matcalc.derive("pi x", "pi", pi="scalar")
    assert d.variable.name == "pi"
    check_numerically(d)


@pytest.mark.parametrize("text", ["tr(x' A x)", "x / tr(x' x)", "tr(w' x) + trace(x' x)"])
def test_the_trace_of_a_scalar_is_the_scalar(text):
    d = matcalc.derive(text, "x")
    check_numerically(d)


def test_a_declared_variable_that_does_not_occur_has_a_zero_derivative():
    d = matcalc.derive("x' A x", "y", y="vector(m)")
    assert tuple(map(str, d.shape)) == ("1", "m")
    x, A, y = np.ones(2), np.eye(2), np.ones(3)
    np.testing.assert_array_equal(d.evaluate(x=x, A=A, y=y), np.zeros(3))
    d = matcalc.derive("x' A x where Y: matrix(p, q)", "Y", layout="denominator")
    assert tuple(map(str, d.shape)) == ("p", "q")
    assert "Y: matrix(p, q) (declared, does not occur)" in str(d)
    with pytest.raises(matcalc.UnknownNameError):  # undeclared: likely a typo
        matcalc.derive("x' A x", "y")


# --- NumPy spellings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("numpy_text, matcalc_text", [
    ("A @ x", "A x"), ("x.T @ A @ x", "x' A x"), ("x ** 2", "x .^ 2"), ("X.T @ X", "X' X"),
    ("sum((X @ w - y) ** 2)", "sum((X w - y) .^ 2)"), ("a ** 2", "a ^ 2"), ("-x ** 2", "-(x .^ 2)"),
    ("2 ** x", "2 ^ x"), ("(A @ x).T", "(A x)'"), ("x ** -1", "x .^ -1"),
])
def test_numpy_spellings_mean_what_they_mean_in_numpy(numpy_text, matcalc_text):
    e = matcalc.parse(numpy_text)
    assert e is matcalc.parse(matcalc_text)
    assert "@" not in str(e) and "**" not in str(e) and ".T" not in str(e)  # printed in matcalc's notation


def test_numpy_spelling_derivative_is_right():
    d = matcalc.derive("sum((X @ w - y) ** 2) + w.T @ w", "w")
    check_numerically(d)


# --- every answer states its assumptions ----------------------------------------------------------------
def test_derivative_lists_its_assumptions():
    d = matcalc.derive("max(0, w·x + b) where b: scalar", "w")
    by_name = {a.name: (a.kind, a.declaration, a.source) for a in d.assumptions}
    assert by_name == {"w": ("vector", "vector(n)", "usage"), "x": ("vector", "vector(n)", "usage"),
                       "b": ("scalar", "scalar", "declaration")}
    assert str(d).splitlines() == ["step(dot(w, x) + b) x'",
                                   "where w: vector(n) (from usage), x: vector(n) (from usage), b: scalar (declared)"]
    assert d.text() == "step(dot(w, x) + b) x'" and "where" not in d.unicode() and "where" not in d.latex()
    assert "\\text{where }" in d._repr_latex_() and "where" in repr(d)


def test_convention_and_matrix_assumptions():
    d = matcalc.derive("x' A x", "x")
    assert [(a.name, a.source) for a in d.assumptions] == [("x", "convention"), ("A", "convention")]
    assert str(matcalc.assumptions(d.function)) == str(d.assumptions)
    assert str(d).endswith("where x: vector(n) (letter convention), A: matrix(n, n) (letter convention)")


def test_several_variables_and_tensors_state_assumptions():
    ds = matcalc.derive("w·x + b", ["w", "b"])
    assert str(ds).splitlines()[-1].startswith("where w: vector(n)")
    t = matcalc.derive("A X B", "X")
    assert str(t).splitlines()[-1].startswith("where A: matrix(")
    assert "\\text{where }" in t._repr_latex_()


# --- the API -----------------------------------------------------------------------------------------------
def test_public_names():
    for name in ("derive", "hessian", "evaluate", "parse", "assumptions", "AssumptionWarning", "MatcalcError",
                 "ShapeError", "ArgumentShapeError", "UnknownFunctionError", "CheckError"):
        assert name in dir(matcalc) and name in matcalc.__all__
        assert getattr(matcalc, name) is not None
    assert issubclass(matcalc.AssumptionWarning, UserWarning)


def test_evaluate_takes_values_the_same_way_everywhere():
    x, A = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    d = matcalc.derive("x' A x", "x")
    want = x @ (A + A.T)
    for got in (d.evaluate(x=x, A=A), d.evaluate({"x": x, "A": A}), d.evaluate({"x": x}, A=A),
                matcalc.evaluate(d, x=x, A=A), matcalc.evaluate(d.expr, {"x": x, "A": A}),
                matcalc.evaluate(d.expr, x=x, A=A)):
        np.testing.assert_allclose(got, want)
    assert matcalc.evaluate("x' A x", x=x, A=A) == pytest.approx(x @ A @ x)


@pytest.mark.parametrize("values, argument, expected, actual", [
    ({"x": np.ones(3), "A": np.ones((2, 2))}, "A", "(3, 3)", "(2, 2)"),
    ({"x": np.ones((3, 3)), "A": np.ones((3, 3))}, "x", "(n,)", "(3, 3)"),
    ({"x": 1.0, "A": np.eye(3)}, "x", "(n,)", "()"),
])
def test_a_wrong_shape_names_the_argument_and_both_shapes(values, argument, expected, actual):
    d = matcalc.derive("x' A x", "x")
    for call in (lambda: d.evaluate(**values), lambda: matcalc.evaluate("x' A x", values)):
        with pytest.raises(matcalc.ArgumentShapeError) as info:
            call()
        message = str(info.value)
        assert f"wrong shape for {argument}" in message and f"expected {expected}" in message
        assert f"got {actual}" in message and "fixed by sizes" not in message


def test_steps_follow_the_same_convention():
    d = matcalc.derive("max(0, w·x + b)", "w")
    steps = d.steps
    assert steps() is steps and str(steps) == steps.unicode()
    latex = steps.latex()
    assert latex.startswith("\\begin{aligned}") and "\\frac{\\partial" in latex


# --- the command line -------------------------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_notes_on_stderr_and_no_warn(capsys):
    code, out, err = run(capsys, "derive", "W1 x + b1", "--wrt", "x")
    assert code == 0 and err.startswith("note: b1 is taken to be a scalar") and "^" in err
    assert out.splitlines()[-1].startswith("where W1: matrix(n, m) (letter convention)")
    code, out, err = run(capsys, "derive", "W1 x + b1", "--wrt", "x", "--no-warn")
    assert code == 0 and err == ""


def test_cli_json_schema_is_one_for_any_number_of_variables(capsys):
    shapes = []
    for wrts in (["w"], ["w", "b"]):
        args = [a for w in wrts for a in ("--wrt", w)]
        code, out, _ = run(capsys, "derive", "w·x + b", *args, "--format", "json")
        obj = json.loads(out)
        assert code == 0 and obj["wrt"] == wrts and [d["wrt"] for d in obj["derivatives"]] == [[w] for w in wrts]
        shapes.append((sorted(obj), sorted(obj["derivatives"][0])))
        assert obj["assumptions"][2] == {"name": "b", "kind": "scalar", "shape": [], "declaration": "scalar",
                                         "source": "convention", "reason": "names starting with a to g are scalars",
                                         "occurs": True}
    assert shapes[0] == shapes[1]


def test_cli_json_errors_are_json_on_stdout(capsys):
    code, out, err = run(capsys, "derive", "x' A x +", "--wrt", "x", "--format", "json")
    obj = json.loads(out)
    assert code == 1 and err == "" and obj["error"]["type"] == "MatcalcSyntaxError"
    assert obj["error"]["position"] == 8 and obj["error"]["exit_code"] == 1


def test_cli_messages_name_options(capsys):
    code, _, err = run(capsys, "derive", "x' x + y' y")
    assert code == 1 and "--wrt" in err and "wrt=" not in err


def test_cli_mixed_hessian_blocks_are_labelled(capsys):
    code, out, _ = run(capsys, "derive", "x' A x + y' x", "--wrt", "x", "--wrt", "y", "--order", "2")
    lines = out.splitlines()
    assert code == 0 and lines[:4] == ["∂²f/∂x²: A + A'", "∂²f/∂x∂y: I", "∂²f/∂y∂x: I", "∂²f/∂y²: zeros(n, n)"]
    code, out, _ = run(capsys, "derive", "x' A x + y' x", "--wrt", "x", "--wrt", "y", "--order", "2",
                       "--format", "json")
    assert [d["wrt"] for d in json.loads(out)["derivatives"]] == [["x", "x"], ["x", "y"], ["y", "x"], ["y", "y"]]


def test_cli_steps_in_latex(capsys):
    code, out, _ = run(capsys, "derive", "max(0, w·x + b)", "--wrt", "w", "--steps", "--format", "latex")
    assert code == 0 and out.startswith("\\begin{aligned}") and "∂" not in out.split("\\end{aligned}")[1]


def test_cli_numpy_spellings(capsys):
    code, out, _ = run(capsys, "derive", "x.T @ A @ x", "--wrt", "x")
    assert code == 0 and out.splitlines()[0] == "x' (A + A')"


def test_cli_closed_pipe_ends_quietly():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "matcalc", "derive", "x' A x", "--wrt", "x", "--steps"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    p.stdout.close()  # the reader is gone before matcalc writes
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == ""


# --- start-up: the LALR tables without lark ----------------------------------------------------------------
def _dump(x):
    """A raw tree as nested tuples, tokens with their types and positions, for comparing two parsers."""
    from matcalc.parser import Raw

    if isinstance(x, Raw):
        return ("Raw", x.kind, _dump(x.items), x.start, x.end, x.op, x.depth, x.grouped)
    if isinstance(x, str) and hasattr(x, "type"):
        return ("Tok", x.type, str(x), x.start_pos, x.end_pos)
    if isinstance(x, list | tuple):
        return tuple(_dump(y) for y in x)
    return x


def test_saved_tables_parse_exactly_as_lark(tmp_path, monkeypatch):
    from test_parser_table import SAME, VALID

    from matcalc import lalr, parser

    monkeypatch.setenv("MATCALC_CACHE_DIR", str(tmp_path))
    for f in (parser._parser, parser._tables):
        f.cache_clear()
    try:
        texts = [t for t, *_ in VALID] + [t for pair in SAME for t in pair[:2]] + [
            "x.T @ A @ x", "sum((X @ w - y) ** 2)", "||x - ||y|| z||", "w, x: vector(n)"]
        parser._parser("start")  # lark builds the parser and saves the tables
        tables = parser._tables("start")
        assert tables is not None and any(p.suffix.startswith(".tables") for p in tmp_path.iterdir())
        compared = 0
        for text in texts:
            marked = parser._mark_norm_openers(text)
            try:
                want = parser._parser("start").parse(marked)
            except Exception:  # noqa: BLE001 - not valid as a whole expression: the fast path must give up too
                with pytest.raises(Exception):  # noqa: B017
                    tables.parse(marked)
                continue
            assert _dump(tables.parse(marked)) == _dump(want), text
            compared += 1
        assert compared > 200
        with pytest.raises(lalr.Fallback):
            tables.parse("x' A * * x")
    finally:
        for f in (parser._parser, parser._tables):
            f.cache_clear()


def test_the_command_line_does_not_import_lark_numpy_or_sympy(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MATCALC_CACHE_DIR=str(tmp_path))
    code = ("import sys; from matcalc.cli import main; main(['derive', \"x' A x\", '--wrt', 'x']); "
            "print(sorted(m for m in ('lark', 'numpy', 'sympy') if m in sys.modules))")
    first_run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert first_run.stdout.splitlines()[-1] == "['lark']"  # the first run builds and saves the tables
    assert second.stdout.splitlines()[0] == "x' (A + A')" and second.stdout.splitlines()[-1] == "[]"


def test_bench_startup_smoke():
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_startup.py"), "--smoke"], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0 and "| wall, median |" in p.stdout and "ratio" in p.stdout


def test_cli_code_formats_state_assumptions_in_a_comment(capsys):
    code, out, _ = run(capsys, "derive", "x' A x", "--wrt", "x", "--format", "numpy")
    assert code == 0 and out.splitlines()[0] == ("# where x: vector(n) (letter convention), "
                                                 "A: matrix(n, n) (letter convention)")
    namespace: dict = {}
    exec(out, namespace)
    x, A = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(namespace["derivative_x"](x, A), x @ (A + A.T))


def test_cli_notes_are_shown_when_the_derivative_then_fails(capsys):
    code, out, err = run(capsys, "derive", "Wx + b", "--wrt", "x")
    assert code == 1 and out == "" and err.startswith("note: Wx is read as one name")
    assert "error: 'x' does not occur" in err and "'W x'" in err.split("error:")[1]
