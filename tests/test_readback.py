"""``str(node)`` decides its ``where`` clause from the node (:mod:`matcalc.printing.readback`), not by
parsing its own text; its output must not change. The old implementation (print, parse the text back with
the type checker, compare) is kept here as the oracle, and every comparison is of whole outputs:

* the expression strings of the tables of the derivation, round-trip, textbook, cookbook, layers and
  batches tests, parsed, with their derivatives and their subexpressions;
* random expressions of the property tests' strategy (tests/test_property_derive.py) with their symbols
  renamed against and along the letter convention, their dimensions renamed or made numbers, their
  matrices made symmetric, with their derivatives (Jacobians, Hessians, tensors' Kronecker and index
  forms) and subexpressions: 200 fixed examples in CI; ``MATCALC_LONG=1`` runs ``MATCALC_LONG_EXAMPLES``
  (default 3,000) random ones, and ``MATCALC_LONG_LOG`` appends the figures of the run.
"""

from __future__ import annotations

import ast
import os
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_property_derive import expr

import matcalc
from matcalc import MatcalcError, NoMatrixFormError
from matcalc import nodes as N
from matcalc.printing import TextPrinter, _where_clause, declarations_of, readback, to_text
from matcalc.shapes import Dim
from matcalc.typecheck import typecheck
from matcalc.visit import Transformer

LONG = os.environ.get("MATCALC_LONG") == "1"
MAX_EXAMPLES = int(os.environ.get("MATCALC_LONG_EXAMPLES", "3000")) if LONG else 200
LOG = os.environ.get("MATCALC_LONG_LOG")
#: subexpressions compared per expression (each costs the oracle a parse)
SUBNODES = 20 if LONG else 6
TABLES = ["test_derive.py", "test_roundtrip.py", "test_textbook.py", "test_cookbook.py", "test_layers_dl.py",
          "test_batches.py"]
HERE = Path(__file__).resolve().parent


def old_to_text(node: N.Node) -> str:
    """The implementation of ``to_text(node, declarations=True)`` before issue #14: parse the texts back."""
    body = to_text(node)
    explicit = TextPrinter(explicit_sizes=True).doprint(node)
    for candidate in dict.fromkeys((body, explicit)):
        try:
            if typecheck(candidate) is node:
                return candidate
        except MatcalcError:
            pass
    decls = declarations_of(node)
    return f"{explicit} where {_where_clause(decls)}" if decls else explicit


class Tally:
    """How many nodes were compared, and how many of them the readback left to the parser."""

    def __init__(self):
        self.nodes = self.unsure = 0
        self.answers: dict[str, int] = {}

    def compare(self, node: N.Node) -> None:
        """Old and new outputs are equal (both refusing alike counts as equal)."""
        try:
            old = old_to_text(node)
        except MatcalcError as exc:
            old = f"refused: {type(exc).__name__}"
        before = readback.STATS["unsure"]
        try:
            new = to_text(node, declarations=True)
        except MatcalcError as exc:
            new = f"refused: {type(exc).__name__}"
        assert new == old, f"str() changed for {node!r}:\n  old: {old}\n  new: {new}"
        self.nodes += 1
        self.unsure += readback.STATS["unsure"] - before
        kind = "where" if " where " in new else "explicit" if new != to_text(node) else "body"
        self.answers[kind] = self.answers.get(kind, 0) + 1

    def compare_all(self, node: N.Node, subnodes: int = SUBNODES) -> None:
        """``node`` and up to ``subnodes`` of its subexpressions (the largest first)."""
        self.compare(node)
        for sub in list(N.walk(node))[1:subnodes + 1]:
            self.compare(sub)


def _derivative_nodes(d) -> list[N.Node]:
    """The nodes a derivative prints: its expression, and a tensor's Kronecker and index forms."""
    return [v for v in vars(d).values() if isinstance(v, N.Node)] if hasattr(d, "__dict__") else []


def _derivatives(e: N.Node, names, orders=(1,), layouts=("numerator", "denominator")) -> list[N.Node]:
    out = []
    for name in names:
        for order in orders:
            for layout in layouts:
                try:  # a generous time limit: under load, the default 2 s can stop a derivation anywhere
                    with warnings.catch_warnings(), matcalc.limits(time=60):
                        warnings.simplefilter("ignore")
                        d = matcalc.derive(e, name, layout=layout, order=order, warn=False)
                except (NoMatrixFormError, MatcalcError):
                    continue
                for part in d if isinstance(d, list) else [d]:
                    out += _derivative_nodes(part)
    return out


# --- the tables -------------------------------------------------------------------------------------------------
def _table_strings(name: str) -> list[str]:
    tree = ast.parse((HERE / name).read_text(encoding="utf-8"))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return list(dict.fromkeys(s for s in strings if 0 < len(s) < 400))


def _parsed(text: str) -> N.Node | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return matcalc.parse(text, warn=False)
    except (MatcalcError, TypeError, ValueError):
        return None


@pytest.mark.parametrize("table", TABLES)
def test_the_tables_print_as_before(table):
    tally = Tally()
    parsed = [e for e in map(_parsed, _table_strings(table)) if e is not None]
    assert len(parsed) >= 10, f"only {len(parsed)} expressions found in {table}"
    for e in parsed:
        tally.compare_all(e, 6)
        names = [s.name for s in N.symbols_of(e)][:2]
        for d in _derivatives(e, names, (1, 2) if e.shape == () else (1,)):
            tally.compare_all(d, 6)
    print(f"{table}: {len(parsed)} expressions, {tally.nodes} nodes, {tally.unsure} left to the parser, "
          f"answers {tally.answers}")
    assert tally.unsure <= 0.02 * tally.nodes, f"{tally.unsure} of {tally.nodes} nodes left to the parser"


# --- random expressions ---------------------------------------------------------------------------------------
#: names along and against the letter convention, Greek, multi-letter, reserved-looking
NAMES = ["a", "b", "x", "y", "A", "B", "C", "X", "alpha", "λ", "W1", "h", "z2", "theta", "M", "dW", "e", "n",
         "mu", "pi_", "sigma", "Ab", "xy"]
DIMS = [Dim("n"), Dim("m"), Dim("k"), Dim("p"), Dim("d"), Dim("N"), Dim("q1"), 2, 3]


class Renamer(Transformer):
    """Rebuild an expression with other names for its symbols and other sizes for its dimensions."""

    def __init__(self, names: dict, dims: dict, symmetric: set):
        super().__init__()
        self.names, self.dims, self.symmetric = names, dims, symmetric

    def dim(self, d):
        return self.dims.get(d, d)

    def shape(self, shape):
        return tuple(self.dim(d) for d in shape)

    def transform_Symbol(self, n, children):
        shape = self.shape(n.shape)
        sym = n.name in self.symmetric and len(shape) == 2 and shape[0] == shape[1] != 1
        return N.Symbol(self.names.get(n.name, n.name), shape, sym)

    def transform_Identity(self, n, children):
        return N.Identity(self.dim(n.size))

    def transform_Ones(self, n, children):
        return N.Ones(self.shape(n.args[0]))

    def transform_Zeros(self, n, children):
        return N.Zeros(self.shape(n.args[0]))

    def transform_Fill(self, n, children):
        return N.Fill(children[0], self.shape(n.args[1]))


@st.composite
def renamed(draw, e: N.Node) -> N.Node:
    symbols = N.symbols_of(e)
    names = {s.name: draw(st.sampled_from(NAMES)) for s in symbols} if draw(st.booleans()) else {}
    dims = {d: draw(st.sampled_from(DIMS)) for d in (Dim("n"), Dim("m"))} if draw(st.booleans()) else {}
    symmetric = {s.name for s in symbols if draw(st.integers(0, 4)) == 0}
    try:
        return Renamer(names, dims, symmetric).visit(e)
    except MatcalcError:  # two dimensions made one size that the expression keeps apart
        return e


@st.composite
def decorated(draw, e: N.Node) -> N.Node:
    """``e`` inside a construct the strategy does not build: sized constants, literals, fills, folded
    quotients, inverse powers, Kronecker products, the axis=0 calls, a differential."""
    k = draw(st.integers(0, 12))
    shape = e.shape
    try:
        if k == 0 and shape != ():
            return N.Add(e, N.Ones(shape)) if draw(st.booleans()) else N.MatMul(N.Ones((1, shape[0])), e)
        if k == 1 and shape != () and shape[0] != 1:
            return N.MatMul(N.Identity(shape[0]), e)
        if k == 2 and shape == ():
            return N.VectorLit(e, N.Number(draw(st.sampled_from([0, 2, Fraction(1, 3), -1]))))
        if k == 3 and shape != ():
            return N.Hadamard(e, N.Fill(N.Number(2), shape))
        if k == 4:
            return N.Div(e, N.Div(N.Number(1), N.Number(draw(st.sampled_from([3, 4])))))
        if k == 5 and shape != () and shape[0] == shape[1]:
            return N.Power(e, N.Number(draw(st.sampled_from([-1, 2, -2]))))
        if k == 6 and shape != ():
            return N.Kron(e, N.Symbol("B", (Dim("n"), Dim("n"))))
        if k == 7 and shape != () and 1 not in shape:
            return N.Transpose(N.SoftmaxRows(N.Transpose(e)))
        if k == 8 and shape == ():
            return N.MatrixLit(((e, N.Number(1)), (N.Pi(), e)))
        if k == 9 and shape != ():
            return N.Add(e, N.Zeros(shape))
        if k == 10:
            sym = N.symbols_of(e)
            if sym:
                return N.Add(N.Differential(sym[0]), sym[0])
    except MatcalcError:
        pass
    return e


def _log(tally: Tally) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(f"readback {tally.nodes} {tally.unsure} {sorted(tally.answers.items())}\n")


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=not LONG,
          phases=[Phase.explicit, Phase.generate] if LONG else list(Phase),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data(), kind=st.sampled_from(["s", "s", "v", "M", "C"]))
def test_random_expressions_print_as_before(data, kind):
    e = data.draw(expr(kind, 4), label="expression")
    e = data.draw(renamed(e), label="renamed")
    e = data.draw(decorated(e), label="decorated")
    tally = Tally()
    tally.compare_all(e)
    names = list(dict.fromkeys(s.name for s in N.symbols_of(e)))
    if names:
        wrt = data.draw(st.sampled_from(names), label="wrt")
        layout = data.draw(st.sampled_from(["numerator", "denominator"]), label="layout")
        for d in _derivatives(e, [wrt], (1, 2) if e.shape == () else (1,), (layout,)):
            tally.compare_all(d)
    _log(tally)


# --- the decisions themselves ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,answer", [
    ("x' A x", "body"),                              # the convention, dimensions named n
    ("A x + b", "body"),                             # b a scalar, added to every entry
    ("X W + b", "body"),
    ("x' I y", "body"),                              # I of inferred size
    ("sum(X, axis=0)", "explicit"),                  # ones(1, m) rather than ones(m)'
    ("A x where A: matrix(m, n)", "where"),          # dimensions inference would name n, m
    ("x + 1 where x: scalar", "where"),              # against the convention
    ("x' S x where S: symmetric(n)", "where"),       # symmetry is declared
    ("tr(A) + sum(eye(3))", "explicit"),             # I would read as an identity of inferred size
    ("kron(A, B)", "body"),
    ("dot(u, v) + norm(w)^2", "body"),
])
def test_the_three_answers(text, answer):
    node = matcalc.parse(text, warn=False)
    printed = to_text(node, declarations=True)
    assert printed == old_to_text(node)
    decided = readback.reads_back(node, to_text(node))
    assert decided in (answer, None)
    kind = "where" if " where " in printed else "explicit" if printed != to_text(node) else "body"
    assert kind == answer, printed


def test_the_readback_imports_neither_the_parser_nor_the_type_checker():
    source = Path(readback.__file__).read_text(encoding="utf-8")
    assert "typecheck" not in source.split('"""', 2)[2].replace("type checker", "")
    assert "import parser" not in source and "from ..parser" not in source and "lark" not in source


def test_the_readback_knows_the_parsers_limits():
    from matcalc import parser

    assert readback._MAX_DEPTH + 20 == parser.MAX_DEPTH and readback._MAX_LENGTH == parser.MAX_LENGTH


def test_a_node_near_the_nesting_limit_is_left_to_the_parser():
    x = N.Symbol("x", (Dim("n"), 1))
    deep = x
    for _ in range(readback._MAX_DEPTH + 5):
        deep = N.Neg(N.Transpose(N.Transpose(deep)))
    before = readback.STATS["unsure"]
    assert readback.reads_back(deep, to_text(deep)) is None
    assert readback.STATS["unsure"] == before + 1


#: variables named against the grammar: multi-letter names before a parenthesis (read as unknown
#: functions), the identity, constants, functions, keywords, names that are no names
ODD_NAMES = ["xy", "W1", "EXP", "Ab", "alpha", "expo", "I", "pi", "where", "exp", "eye", "x y", "π", "True"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_print_as_before(name):
    n = Dim("n")
    tally = Tally()
    for shape in [(), (n, 1), (n, n)]:
        s = N.Symbol(name, shape)
        x = N.Symbol("x", (n, 1)) if shape != () else N.Symbol("a", ())
        others = [N.Add(x, x), N.Neg(x), N.Number(-2), N.Number(Fraction(1, 3)), N.Apply("exp", x),
                  N.Transpose(N.Transpose(x)) if shape != () else N.Power(N.Add(x, x), N.Number(2))]
        tally.compare(s)
        for other in others:
            try:
                node = N.MatMul(s, other)
            except MatcalcError:
                continue
            tally.compare(node)
    assert tally.nodes >= 10
