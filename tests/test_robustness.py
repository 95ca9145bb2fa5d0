"""The parser on hostile input: deep nesting, 100 KB expressions, garbage and mutated text.

Every outcome must be a :class:`matcalc.Node` or a :class:`matcalc.MatcalcError` (never a RecursionError,
ValueError, lark exception ...), and every call must finish quickly.
"""

from __future__ import annotations

import io
import time
import tokenize
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matcalc
from matcalc import MatcalcError, NestingError, Node
from matcalc import nodes as N

PACKAGE = Path(matcalc.__file__).resolve().parent


def outcome(text: str, **decls):
    """Parse, and return the node or the MatcalcError; any other exception fails the test."""
    try:
        node = matcalc.parse(text, **decls)
    except MatcalcError as err:
        str(err)  # the message, with its caret line, can always be built
        assert err.position is None or 0 <= err.position <= len(err.source or text)
        return err
    assert isinstance(node, Node)
    return node


def timed(fn, *args, limit=5.0):
    start = time.perf_counter()
    result = fn(*args)
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"took {elapsed:.1f} s"
    return result


def depth(node: Node) -> int:
    """The depth of a tree, iteratively."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in n.children)
    return best


# --- deep nesting -------------------------------------------------------------------------------------
def test_1000_nested_parentheses():
    e = timed(matcalc.parse, "(" * 1000 + "x' A x" + ")" * 1000)
    assert e is matcalc.parse("x' A x")


def test_50000_nested_parentheses():
    e = timed(matcalc.parse, "(" * 50_000 + "x" + ")" * 50_000)
    assert e is matcalc.parse("x")


def test_1000_nested_exp():
    e = timed(matcalc.parse, "exp(" * 1000 + "x" + ")" * 1000)
    assert isinstance(e, N.Apply) and e.shape == matcalc.parse("x").shape
    assert depth(e) == 1001
    text = timed(str, e)
    assert timed(matcalc.parse, text) is e


def test_1000_unary_minuses():
    e = timed(matcalc.parse, "-" * 1000 + "x")
    assert depth(e) == 1001
    assert timed(matcalc.parse, str(e)) is e
    assert matcalc.parse("-" * 1000 + "2") is N.Number(2)  # -(-(...(-2))) folds to an even count


def test_deep_mixed_nesting():
    text = "x"
    for i in range(400):
        text = ["exp(%s)", "-(%s)", "(%s)'", "sum(%s) x", "[%s, a]' [b, c]"][i % 5] % text
    assert isinstance(timed(outcome, text), Node | MatcalcError)


@pytest.mark.parametrize("text", [
    "exp(" * 5000 + "x" + ")" * 5000,
    "-" * 100_000 + "x",
    "x" + "'" * 100_000,
    "[" * 3000 + "a" + "]" * 3000,
    "||" * 3000 + "x" + "||" * 3000,
    "a" + " / a" * 3000,
    "a" + "^a" * 3000,
])
def test_too_deep_is_a_nesting_error(text):
    with pytest.raises(NestingError) as info:
        timed(matcalc.parse, text)
    assert "nested" in str(info.value)


@pytest.mark.parametrize("text", ["(" * 100_000, ")" * 100_000, "exp(" * 20_000, "[" * 50_000])
def test_unbalanced_deep_input_is_a_syntax_error(text):
    assert isinstance(timed(outcome, text), matcalc.MatcalcSyntaxError | NestingError)


# --- long input ---------------------------------------------------------------------------------------
def test_100kb_sum_chain():
    text = " + ".join(f"x{i}" for i in range(15_000))
    assert len(text) > 100_000
    e = timed(matcalc.parse, text)
    assert isinstance(e, N.Add) and len(e.args) == 15_000 and depth(e) == 2
    assert e.shape == matcalc.parse("x").shape


def test_100kb_difference_chain_of_scalars():
    text = "a" + " - b + c" * 13_000
    e = timed(matcalc.parse, text)
    assert len(e.args) == 26_001 and e.shape == ()


def test_100kb_product_chain():
    text = " ".join(["A"] * 50_000) + " x"
    assert len(text) > 100_000
    e = timed(matcalc.parse, text)
    assert isinstance(e, N.MatMul) and len(e.args) == 50_001
    assert tuple(str(d) for d in e.shape) == ("n", "1")


def test_100kb_scalar_product_and_sum_round_trip():
    text = " + ".join(f"{i} a b" for i in range(10_000))
    assert len(text) > 100_000
    e = timed(matcalc.parse, text)
    assert timed(matcalc.parse, timed(str, e)) is e


def test_100kb_input_with_an_error_at_the_end():
    text = " + ".join(["x"] * 30_000) + " + x'"  # (a matrix at the end broadcasts since issue 15)
    with pytest.raises(matcalc.ShapeError) as info:
        timed(matcalc.parse, text)
    err = info.value
    assert err.position == len(text) - 4
    line, caret = str(err).splitlines()[-2:]
    assert len(line) < 100 and caret.strip() == "^"


def test_input_longer_than_the_limit_is_refused_quickly():
    with pytest.raises(matcalc.MatcalcSyntaxError, match="longer than"):
        timed(matcalc.parse, "x" * 1_000_001, limit=1.0)


@pytest.mark.parametrize("text", ["1" * 100_000, "1e999999999", "2e-99999 x", "x where x: vector(1e99999)"])
def test_huge_numbers_are_errors_not_hangs(text):
    assert isinstance(timed(outcome, text, limit=1.0), MatcalcError)


# --- garbage and mutations ----------------------------------------------------------------------------
ALPHABET = list("xyzabcAB01234.5e+-*/^'()[],;:|_ \n\t") + [
    "ᵀ", "⊙", "⊗", "⊘", "·", "⋅", "‖", "σ", "λ", "−", "∘", "where ", "exp(", "max(", "dot(", "norm(", "||",
    ".*", "./", ".^", "^T", "_F", "vector(n)", "matrix(n)", "sum(", "I", "eye", "ones(", "inv(", "diag(",
]
SEEDS = [
    "x' A x", "max(0, w·x + b) where b: scalar, w: vector(n)", "||A x - y||^2", "[ln(x^2), sin(3x)]",
    "sum(exp(x)) - log(sum(exp(x)))", "x' inv(A) x + logdet(A)", "softmax(W x + v) where W: matrix(m, n)",
    "tr(A' B) + det(A)^2", "kron(A, B)", "diag(x) A .* B ./ C", "w·x where w, x: vector(n)", "σ(wᵀ x) ⊙ y",
    "x + vector(c) where c: scalar", "A^-1 x", "[a, b; c, d] [e, f]", "outer(x, y) + eye(n)",
]
settings_fast = settings(max_examples=300, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings_fast
@given(st.text(max_size=60))
def test_random_unicode_garbage(text):
    timed(outcome, text, limit=2.0)


@settings_fast
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join))
def test_random_token_soup(text):
    timed(outcome, text, limit=2.0)


@st.composite
def mutations(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        piece = draw(st.sampled_from(ALPHABET))
        if action == "insert":
            text = text[:i] + piece + text[i:]
        elif action == "delete":
            text = text[:i] + text[i + 1:]
        elif action == "replace":
            text = text[:i] + piece + text[i + 1:]
        else:
            j = draw(st.integers(i, len(text)))
            text = text[:j] + text[i:j] + text[j:]
    return text


@settings_fast
@given(mutations())
def test_mutations_of_valid_inputs(text):
    result = timed(outcome, text, limit=2.0)
    if isinstance(result, Node):  # whatever parses, prints back to itself
        assert matcalc.parse(str(result)) is result


@settings_fast
@given(st.sampled_from(SEEDS), st.dictionaries(
    st.sampled_from(["x", "y", "A", "b", "w", "c"]),
    st.one_of(st.sampled_from(["scalar", "vector(n)", "vector(3)", "matrix(n, n)", "matrix(m, n)",
                               "symmetric(n)", "matrix", "vector", "bogus", "", "vector(0)", "matrix(n"]),
              st.text(max_size=12), st.integers(), st.none(),
              st.tuples(st.sampled_from(["n", "m", 1, 2]), st.sampled_from(["n", 1, 3]))),
    max_size=3))
def test_random_python_declarations(text, decls):
    timed(lambda: outcome(text, **decls), limit=2.0)


@pytest.mark.parametrize("bad", [None, 42, b"x' A x", ["x"]])
def test_non_string_input_is_a_matcalc_error(bad):
    with pytest.raises(MatcalcError):
        matcalc.parse(bad)


# --- no eval ------------------------------------------------------------------------------------------
FRONT_END = ["__init__.py", "errors.py", "shapes.py", "nodes.py", "parser.py", "typecheck.py", "printing"]


def _front_end_sources():
    for name in FRONT_END:
        path = PACKAGE / name
        yield from (sorted(path.rglob("*.py")) if path.is_dir() else [path])


def test_the_parser_never_uses_eval_or_exec():
    sources = list(_front_end_sources())
    assert len(sources) >= 8
    for path in sources:
        text = path.read_text(encoding="utf-8")
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        for tok, nxt in zip(tokens, tokens[1:], strict=False):
            if tok.type == tokenize.NAME and tok.string in ("eval", "exec", "compile", "__import__"):
                assert nxt.string != "(", f"{path.name}:{tok.start[0]} calls {tok.string}()"
    grammar = (PACKAGE.parent / "grammar" / "matcalc.lark")
    if grammar.exists():
        assert "eval(" not in grammar.read_text(encoding="utf-8")


def test_parsing_does_not_call_eval(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called while parsing")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    for text in SEEDS[:4] + ["__import__('os')", "x.__class__", "exec('1')", "eval(x)"]:
        outcome(text)
