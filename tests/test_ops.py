"""The operation catalogue (matcalc/ops.py) is complete in every consumer.

For every element-wise function: the parser accepts each spelling, the name is reserved, NumPy and SymPy
agree on its values, its derivative matches finite differences, the generated NumPy/JAX/PyTorch code
computes the same values, every printer spells it and the text form parses back, and verify accepts the
derivative. For every other call: the grammar accepts it and its node class exists. A new record that
misses a consumer fails here, not silently in a user's generated code.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from codegen_targets import TARGETS, differences, run_code
from finite_differences import first

import matcalc
from matcalc import nodes as N
from matcalc import ops
from matcalc.codegen import printer as code_printer
from matcalc.codegen import targets as code_targets
from matcalc.names import RESERVED_NAMES
from matcalc.numeric import FUNCTIONS as NUMPY_FUNCTIONS
from matcalc.sympy_backend import FUNCTIONS as SYMPY_FUNCTIONS
from matcalc.typecheck import FUNCTIONS as TYPECHECK_FUNCTIONS

ELEMENTWISE = sorted(ops.ELEMENTWISE)
#: Sample points inside each domain and away from the kinks at 0.
_POINTS = {None: [-0.8, -0.3, 0.4, 0.9], "positive": [0.3, 0.7, 1.2, 2.5], "unit": [-0.7, -0.2, 0.3, 0.6],
           "above-1": [-0.7, -0.2, 0.3, 1.5]}


def _points(op: ops.Elementwise) -> np.ndarray:
    return np.array(_POINTS[op.domain])


def test_the_catalogue_names_are_plain_and_unique():
    assert len(set(ops.FUNCTION_NAMES)) == len(ops.FUNCTION_NAMES)
    for name in ops.FUNCTION_NAMES:  # the grammar pastes them into a regular expression unescaped
        assert name.isidentifier(), name
    assert set(ops.ELEMENTWISE).isdisjoint(ops.FUNCTIONS)
    assert tuple(ops.ELEMENTWISE) == N.ELEMENTWISE


@pytest.mark.parametrize("spelling", ops.FUNCTION_NAMES)
def test_every_spelling_is_reserved_and_known_to_the_typechecker(spelling):
    assert spelling in RESERVED_NAMES
    assert spelling in TYPECHECK_FUNCTIONS
    assert ops.lookup(spelling).name == ops.ALIASES[spelling]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_spelling_parses_to_the_function(name):
    op = ops.ELEMENTWISE[name]
    for spelling in (name, *op.aliases):
        e = matcalc.parse(f"{spelling}(x) where x: vector(3)")
        assert isinstance(e, N.Apply) and e.function == name and e.shape == (3, 1)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_numpy_and_sympy_agree(name):
    op = ops.ELEMENTWISE[name]
    t = sympy.Symbol("t", real=True)
    closed = SYMPY_FUNCTIONS[name](t)
    for v in _points(op):
        want = float(closed.subs(t, sympy.Rational(str(v))).evalf(30))
        got = float(NUMPY_FUNCTIONS[name](np.float64(v)))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-14), (name, v)
    got = matcalc.evaluate(matcalc.parse(f"{name}(x) where x: vector(4)"), x=_points(op))
    np.testing.assert_allclose(got, NUMPY_FUNCTIONS[name](_points(op)), rtol=1e-14)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_the_derivative_matches_finite_differences(name):
    op = ops.ELEMENTWISE[name]
    e = matcalc.parse(f"sum({name}(x)) where x: vector(4)")
    d = matcalc.derive(e, "x")
    x = _points(op)
    got = np.asarray(d.evaluate(x=x), dtype=float).reshape(-1)
    want = first(e, N.symbols_of(e)[0], {"x": x}).reshape(-1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    assert bool(np.any(got != 0)) == (name not in ("sign", "step"))  # the derivative is not just 0


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_generated_code_computes_the_function_and_its_derivative(name, target):
    op = ops.ELEMENTWISE[name]
    x = _points(op)
    for text in (f"{name}(x)", f"{name}(x / 2 - 1/8) .* x", f"sum({name}(x))"):  # an operand: precedence
        d = matcalc.derive(f"{text} where x: vector(4)", "x")
        got = run_code(d, target, {"x": x})
        want = np.asarray(d.evaluate(x=x), dtype=float)
        assert not differences(got, want), (text, target, got, want)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_code_target_has_a_spelling(name):
    op = ops.ELEMENTWISE[name]
    for printer in (code_printer.CodePrinter, code_targets.JaxPrinter, code_targets.TorchPrinter):
        template = op.code_template(printer.code_targets)
        assert "{x}" in template or "{x_unary}" in template, (name, printer.__name__)
    assert set(op.code) <= {"numpy", "jax", "torch"}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_printer_spells_it_and_the_text_parses_back(name):
    op = ops.ELEMENTWISE[name]
    e = matcalc.parse(f"{name}(x + y) where x, y: vector(3)")
    text = matcalc.to_text(e)
    assert text == f"{name}(x + y)"
    assert matcalc.parse(text + " where x, y: vector(3)") is e
    assert matcalc.to_unicode(e) == f"{op.unicode}(x + y)"
    assert matcalc.parse(matcalc.to_unicode(e) + " where x, y: vector(3)") is e
    latex = matcalc.to_latex(e)
    assert "\\mathbf{x} + \\mathbf{y}" in latex and latex.count("{") == latex.count("}")
    inner = "\\mathbf{x} + \\mathbf{y}"
    want = op.latex.format(x=inner) if "{x}" in op.latex else f"{op.latex}\\left({inner}\\right)"
    assert latex == want


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_verify_accepts_the_derivative(name):
    op = ops.ELEMENTWISE[name]
    d = matcalc.derive(f"sum({name}(x)) where x: vector(3)", "x")
    report = d.check(points=2)
    assert report.ok, report
    assert op.domain in (None, "positive", "unit", "above-1")


@pytest.mark.parametrize("name", sorted(ops.FUNCTIONS))
def test_every_other_call_is_in_the_grammar_and_names_a_node_class(name):
    op = ops.FUNCTIONS[name]
    if op.node is not None:
        assert isinstance(getattr(N, op.node), type) and issubclass(getattr(N, op.node), N.Node)
    least, most = op.arity
    assert 1 <= least and (most is None or most >= least)
    for spelling in (name, *op.aliases):  # the lexer reads it as a function: a wrong call is a shape error
        with pytest.raises(matcalc.MatcalcError) as info:
            matcalc.parse(f"{spelling}(x, y, z, w, v) where x, y, z, w, v: vector(2)")
        assert not isinstance(info.value, matcalc.MatcalcSyntaxError) or spelling in ("vector", "matrix")
