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
from matcalc.sympy_backend import numeric_value, symbol_matrices, to_explicit
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
    # an operand, a base and a divisor: the filled template must bind as one atom (precedence)
    for text in (f"{name}(x)", f"{name}(x / 2 - 1/8) .* x", f"sum({name}(x))", f"{name}(x) .^ 3",
                 f"x ./ ({name}(x) .^ 2 + 2)", f"-{name}(x)"):
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
    if op.rows is not None:  # the row-wise node of an axis call (issue 15)
        assert op.axis and issubclass(getattr(N, op.rows), N.Node)
    least, most = op.arity
    assert 1 <= least and (most is None or most >= least)
    for spelling in (name, *op.aliases):  # the lexer reads it as a function: a wrong call is a shape error
        with pytest.raises(matcalc.MatcalcError) as info:
            matcalc.parse(f"{spelling}(x, y, z, w, v) where x, y, z, w, v: vector(2)")
        assert not isinstance(info.value, matcalc.MatcalcSyntaxError) or spelling in ("vector", "matrix")


# --- the other calls' records: every rule present, and each one right in every consumer ---------------------
#: One expression per call node class (a scalar, so that its gradient is a matrix form), with declarations.
#: A new call record needs a line here, or the first test below fails.
CALL_EXAMPLES = {
    "Sum": "sum(A x)", "Mean": "mean(A x)", "Dot": "dot(A x, y)", "Norm": "norm(A x) + norm1(A x)",
    "Trace": "tr(A A)", "Det": "det(A + 3 eye(3))", "LogDet": "logdet(A A' + eye(3))",
    "LogSumExp": "logsumexp(A x)", "Inv": "sum(inv(A + 3 eye(3)) x)", "Softmax": "y' softmax(A x)",
    "SoftmaxRows": "sum(softmax(A .* (x y')) .* B)", "LogSumExpRows": "sum(logsumexp(A .* (x y'), axis=1))",
    "MaxRows": "sum(max(A + x y', axis=1))", "MaxRowsMask": "sum(maxmask(A, axis=1) .* (A x y'))",
    "DiagMat": "sum(diag(A x) B)", "DiagVec": "y' diag(A + x y')", "Kron": "sum(kron(A, x y'))",
    "Numel": "sum(A x) / numel(A)",
}
_CALL_DECLS = " where A, B: matrix(3, 3), x, y: vector(3)"
CALL_NODES = sorted(ops.BY_NODE)


def test_every_call_node_class_has_a_record_and_an_example():
    calls = {c.__name__ for c in vars(N).values() if isinstance(c, type) and issubclass(c, N.Call) and c is not N.Call}
    assert calls == set(ops.BY_NODE) == set(CALL_EXAMPLES)
    for name, op in ops.BY_NODE.items():
        assert op.node == name and getattr(N, name).__mro__[1] is N.Call


@pytest.mark.parametrize("node", CALL_NODES)
def test_every_call_record_has_every_rule(node):
    op = ops.BY_NODE[node]
    for rule in ("shape", "differential", "numpy", "sympy"):
        assert callable(getattr(op, rule)), (node, rule)
    for target in ("numpy", "jax", "torch"):  # no target falls back to a guessed spelling (np.logdet)
        assert op.code_rule(target) is not None, (node, target)
    if node in ("Sum", "Mean", "Trace", "DiagMat", "DiagVec", "Kron", "Dot"):  # linear: transposable
        assert callable(op.transpose), node


@pytest.mark.parametrize("node", CALL_NODES)
def test_every_call_record_is_right_in_every_consumer(node):
    """The example's node is there; NumPy and SymPy agree on its value; its gradient matches finite
    differences; the printed text parses back; LaTeX is balanced; the generated code computes the value
    and the gradient in every installed target."""
    e = matcalc.parse(CALL_EXAMPLES[node] + _CALL_DECLS)
    seen, stack = set(), [e]
    while stack:
        k = stack.pop()
        seen.add(type(k).__name__)
        stack.extend(k.children)
    assert node in seen
    rng = np.random.default_rng(3)
    values = {"A": rng.normal(size=(3, 3)), "B": rng.normal(size=(3, 3)), "x": rng.normal(size=3),
              "y": rng.normal(size=3)}
    value = float(matcalc.evaluate(e, **values))
    symbols = symbol_matrices(e)
    assert float(numeric_value(to_explicit(e, symbols=symbols), symbols, values)) == pytest.approx(value, rel=1e-9)
    assert matcalc.parse(matcalc.to_text(e, declarations=True)) is e
    latex = matcalc.to_latex(e)
    assert latex.count("{") == latex.count("}")
    for wrt in sorted({s.name for s in N.symbols_of(e)} & {"A", "x"}):
        d = matcalc.derive(e, wrt)
        got = np.asarray(d.evaluate(**values), dtype=float)
        want = first(e, next(s for s in N.symbols_of(e) if s.name == wrt), values)
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-7)
        for target in TARGETS:
            assert not differences(run_code(d, target, values), got), (node, wrt, target)
