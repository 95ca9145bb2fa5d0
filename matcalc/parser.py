"""Text to a positioned raw tree, with lark's LALR parser.

The grammar lives in ``grammar/matcalc.lark`` (shipped inside the wheel as ``matcalc/grammar/``). Lark
calls :class:`_RawBuilder` at each reduction, so no recursive tree walk happens while parsing; chains such
as ``a + b + c + ...`` are collected into one flat list, so a 100 KB sum does not nest 25,000 levels deep.

The raw tree is untyped: :mod:`matcalc.typecheck` turns it into the typed AST. This module is the only
one that imports lark.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import DeclarationError, MatcalcError, MatcalcSyntaxError, NestingError

#: Deepest nesting of operators and calls accepted (parentheses alone do not count).
MAX_DEPTH = 2500
#: Longest input accepted, in characters.
MAX_LENGTH = 1_000_000


@contextmanager
def deep_recursion(limit: int = 40_000):
    """Raise Python's recursion limit for the duration of one matcalc call on a deep expression.

    The limit is process-wide, so the calls in progress are counted (under a lock) across threads: the
    limit is raised by the first to enter and restored only when the last one leaves; one thread's
    finishing call never lowers it under another that still needs it.
    """
    global _DEEP_USERS, _DEEP_SAVED
    with _DEEP_LOCK:
        if _DEEP_USERS == 0:
            _DEEP_SAVED = sys.getrecursionlimit()
        _DEEP_USERS += 1
        if sys.getrecursionlimit() < limit:
            sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        with _DEEP_LOCK:
            _DEEP_USERS -= 1
            if _DEEP_USERS == 0 and _DEEP_SAVED is not None and _DEEP_SAVED < sys.getrecursionlimit():
                sys.setrecursionlimit(_DEEP_SAVED)


_DEEP_LOCK = threading.Lock()
_DEEP_USERS = 0  # deep_recursion() calls in progress, in all threads
_DEEP_SAVED: int | None = None  # the limit before the first of them raised it


def _fresh_locks_in_child() -> None:
    """A forked child (``check()`` forks its worker) has one thread: locks other threads of the parent held
    at the fork would never be released there, and their deep_recursion() calls do not exist there."""
    global _DEEP_LOCK, _PARSE_LOCK, _DEEP_USERS, _DEEP_SAVED
    _DEEP_LOCK, _PARSE_LOCK = threading.Lock(), threading.Lock()
    _DEEP_USERS, _DEEP_SAVED = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_child)


class Raw:
    """A node of the raw tree: ``kind``, its ``items``, and where it stands in the input."""

    __slots__ = ("kind", "items", "start", "end", "op", "depth", "grouped")

    def __init__(self, kind: str, items, start: int, end: int, op: int | None = None, depth: int = 1):
        self.kind = kind
        self.items = items
        self.start = start
        self.end = end
        self.op = op
        self.depth = depth
        self.grouped = False

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Raw({self.kind}, {self.items!r})"


#: Numbers with more digits, or a larger decimal exponent, are refused (Fraction("1e999999999") would
#: build a billion-digit integer, and Python refuses to convert ints of more than 4300 digits).
MAX_NUMBER_DIGITS = 1000
MAX_EXPONENT = 1000


def number_value(text: str) -> Fraction | None:
    """The exact value of a NUMBER token, or None if it is out of range."""
    mantissa, _, exponent = text.lower().partition("e")
    if len(mantissa) > MAX_NUMBER_DIGITS or len(exponent.lstrip("+-")) > 4:
        return None
    if exponent and abs(int(exponent)) > MAX_EXPONENT:
        return None
    return Fraction(text)


def _depth(*raws) -> int:
    d = 1 + max((r.depth for r in raws if isinstance(r, Raw)), default=0)
    if d > MAX_DEPTH:
        first = next(r for r in raws if isinstance(r, Raw))
        raise NestingError(f"the expression is nested more than {MAX_DEPTH} levels deep", first.start)
    return d


def _tok_end(tok: Token) -> int:
    return tok.end_pos if tok.end_pos is not None else tok.start_pos + len(tok)


class _RawBuilder(Transformer):
    """Lark callbacks, one per grammar alternative, building :class:`Raw` nodes."""

    # --- leaves --------------------------------------------------------------------------------
    def number(self, c):
        (tok,) = c
        value = number_value(str(tok))
        if value is None:
            raise MatcalcSyntaxError(
                f"the number {str(tok)[:20]}{'...' if len(tok) > 20 else ''} is out of range (at most "
                f"{MAX_NUMBER_DIGITS} digits and exponents up to {MAX_EXPONENT})", tok.start_pos)
        return Raw("num", value, tok.start_pos, _tok_end(tok))

    def name(self, c):
        (tok,) = c
        return Raw("name", str(tok), tok.start_pos, _tok_end(tok))

    def group(self, c):
        lpar, inner, rpar = c
        inner.grouped = True
        return inner

    # --- operators -----------------------------------------------------------------------------
    def add(self, c):
        left, op, right = c
        sign = 1 if op.type == "PLUS" else -1
        if left.kind == "add" and not left.grouped:
            left.items.append((sign, right, op.start_pos))
            left.end = right.end
            left.depth = max(left.depth, _depth(right))
            return left
        return Raw("add", [(1, left, None), (sign, right, op.start_pos)], left.start, right.end,
                   op.start_pos, _depth(left, right))

    def mul(self, c):
        if len(c) == 3:
            left, op, right = c
            op_pos = op.start_pos
        else:
            left, right = c
            op_pos = right.start
            if right.kind == "num" and not right.grouped and right.start == left.end:
                # `1.2.3` or `x.5`: the lexer splits off a number starting with '.'; never a product
                raise MatcalcSyntaxError(
                    "unexpected number right after an operand; write '*' or a space to multiply", op_pos)
        return self._chain("mul", left, right, op_pos)

    def hadamard(self, c):
        left, op, right = c
        return self._chain("hadamard", left, right, op.start_pos)

    def _chain(self, kind, left, right, op_pos):
        if left.kind == kind and not left.grouped:
            left.items.append((right, op_pos))
            left.end = right.end
            left.depth = max(left.depth, _depth(right))
            return left
        return Raw(kind, [(left, None), (right, op_pos)], left.start, right.end, op_pos, _depth(left, right))

    def _binary(self, kind, c):
        left, op, right = c
        return Raw(kind, (left, right), left.start, right.end, op.start_pos, _depth(left, right))

    def elemdiv(self, c):
        return self._binary("elemdiv", c)

    def div(self, c):
        return self._binary("div", c)

    def dot(self, c):
        return self._binary("dot", c)

    def power(self, c):
        return self._binary("power", c)

    def elempower(self, c):
        return self._binary("elempower", c)

    def neg(self, c):
        op, x = c
        if x.kind == "num" and not x.grouped:
            return Raw("num", -x.items, op.start_pos, x.end)
        return Raw("neg", x, op.start_pos, x.end, op.start_pos, _depth(x))

    def pos(self, c):
        op, x = c
        return x

    def transpose(self, c):
        x, tok = c
        return Raw("transpose", x, x.start, _tok_end(tok), tok.start_pos, _depth(x))

    # --- calls, norms, literals ----------------------------------------------------------------
    def arguments(self, c):
        return [x for x in c if isinstance(x, Raw)]

    def call(self, c):
        fname = c[0]
        args = c[2] if len(c) == 4 else []
        rpar = c[-1]
        return Raw("call", (str(fname), args), fname.start_pos, _tok_end(rpar), fname.start_pos,
                   _depth(*args) if args else 1)

    def norm(self, c):
        open_bar, inner = c[0], c[1]
        sub = str(c[3]) if len(c) == 4 else None
        end = _tok_end(c[-1])
        return Raw("norm", (inner, sub), open_bar.start_pos, end, open_bar.start_pos, _depth(inner))

    def row(self, c):
        return [x for x in c if isinstance(x, Raw)]

    def rows(self, c):
        return [x for x in c if isinstance(x, list)]

    def literal(self, c):
        lsqb, rows, rsqb = c
        entries = [e for r in rows for e in r]
        return Raw("literal", rows, lsqb.start_pos, _tok_end(rsqb), lsqb.start_pos, _depth(*entries))

    # --- declarations --------------------------------------------------------------------------
    def dim(self, c):
        (tok,) = c
        return tok

    def kind(self, c):
        name = c[0]
        dims = [t for t in c[1:] if isinstance(t, Token) and t.type in ("NAME", "NUMBER")]
        return (str(name), name.start_pos, [(str(t), t.start_pos) for t in dims])

    def declaration(self, c):
        names = [(str(t), t.start_pos) for t in c if isinstance(t, Token) and t.type == "NAME"]
        kind = c[-1]
        return (names, kind)

    def declarations(self, c):
        return [x for x in c if isinstance(x, tuple)]

    def start(self, c):
        expr = c[0]
        decls = c[2] if len(c) == 3 else []
        return expr, decls

    def kind_only(self, c):
        return c[0]

    def let_only(self, c):
        return c[0]


def _grammar_text() -> str:
    """The grammar file, from the installed package or, in a checkout, from ``grammar/``."""
    try:
        res = resources.files("matcalc").joinpath("grammar/matcalc.lark")
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover
        pass
    checkout = Path(__file__).resolve().parent.parent / "grammar" / "matcalc.lark"
    return checkout.read_text(encoding="utf-8")


_PARSE_LOCK = threading.Lock()


@cache
def _parser(start: str) -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        start=start,
        transformer=_RawBuilder(),
        keep_all_tokens=True,
        maybe_placeholders=False,
    )


_TOKEN_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "FUNCNAME": "a function", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "SEMI": "';'", "COLON": "':'", "PLUS": "'+'",
    "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "HADAMARD": "'.*'", "ELEMDIV": "'./'", "DOT": "'·'",
    "CARET": "'^'", "ELEMPOW": "'.^'", "TRANSPOSE": "a transpose (')", "NORMBAR": "'||'",
    "NORMSUB": "'_F'", "NORMOPEN": "'||'", "WHERE": "'where'", "$END": "the end of the input",
    "<END-OF-FILE>": "the end of the input",
}
_OPERAND = {"NAME", "NUMBER", "FUNCNAME", "LPAR", "LSQB", "NORMOPEN", "MINUS", "PLUS"}
_OPERATOR = {"PLUS", "MINUS", "STAR", "SLASH", "HADAMARD", "ELEMDIV", "DOT", "CARET", "ELEMPOW", "TRANSPOSE"}


def _expected(names) -> str:
    names = set(names)
    parts: list[str] = []
    if names & _OPERAND and len(names & _OPERAND) >= 3:
        parts.append("an expression (a name, a number, '(' ...)")
        names -= _OPERAND
    if "WHERE" in names:
        # after a complete operand lark's LALR tables list only what may end the expression, but any
        # binary operator (or a juxtaposed operand) would do as well
        parts.append("an operator")
    parts.extend(sorted(_TOKEN_NAMES.get(n, n) for n in names))
    if not parts:
        return "something else"
    if len(parts) > 6:
        parts = parts[:6] + ["..."]
    return ", ".join(parts)


def _syntax_error(exc: UnexpectedInput, text: str, what: str) -> MatcalcSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        msg = f"unexpected character {ch!r} in {what}"
        allowed = set(exc.allowed or ())
        if allowed:
            # the contextual lexer's set is a superset of what the parser takes here: summarise it
            summary = [w for w, group in (("an expression", _OPERAND), ("an operator", _OPERATOR))
                       if len(allowed & group) >= 3]
            msg += f"; expected {' or '.join(summary) if summary else _expected(allowed)}"
        if ch == "|":
            msg += "; a norm is written ||e|| (two bars) or norm(e)"
        return MatcalcSyntaxError(msg, exc.pos_in_stream, text)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            return MatcalcSyntaxError(
                f"unexpected end of {what}; expected {_expected(exc.expected)}", len(text), text)
        msg = f"unexpected {str(tok)!r} in {what}; expected {_expected(exc.expected)}"
        return MatcalcSyntaxError(msg, tok.start_pos, text)
    if isinstance(exc, UnexpectedEOF):
        return MatcalcSyntaxError(f"unexpected end of {what}; expected {_expected(exc.expected)}",
                                  len(text), text)
    return MatcalcSyntaxError(f"cannot parse {what}", getattr(exc, "pos_in_stream", 0), text)


_OPEN_BAR = "\ue000"


def _mark_norm_openers(text: str) -> str:
    """Mark the bars that open a norm (same length, so positions are unchanged).

    ``||`` opens a norm at depth 0 or after anything that cannot end an operand (an operator, ``(``,
    ``,``, another opening bar); otherwise it closes the innermost one. That settles ``λ ||w||^2``,
    ``||a|| ||b||`` and ``||x - ||y|| z||`` without lookahead in the grammar.
    """
    if "|" not in text and "‖" not in text:
        return text
    out = list(text)
    depth = 0
    after_operand = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        width = 2 if text.startswith("||", i) else 1 if ch == "‖" else 0
        if width:
            if depth == 0 or not after_operand:
                out[i:i + width] = _OPEN_BAR * width
                depth += 1
                after_operand = False
            else:
                depth -= 1
                after_operand = True
            i += width
            continue
        if not ch.isspace():
            after_operand = ch.isalnum() or ch in ")]'ᵀ_" or "\u0370" <= ch <= "\u03ff"
        i += 1
    return "".join(out)


def _parse(text: str, start: str, what: str, error_cls=MatcalcSyntaxError):
    if not isinstance(text, str):
        raise error_cls(f"{what} must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise error_cls(f"{what} is longer than {MAX_LENGTH} characters", MAX_LENGTH, text[:200])
    if not text.strip():
        raise error_cls(f"{what} is empty", 0, text)
    try:
        parser = _parser(start)
        with _PARSE_LOCK:  # one lark parser (and its transformer) serves every thread: one parse at a time
            return parser.parse(_mark_norm_openers(text))
    except UnexpectedInput as exc:
        err = _syntax_error(exc, text, what)
        err.message = err.message.replace(_OPEN_BAR, "|")
        if error_cls is not MatcalcSyntaxError:
            err = error_cls(err.message, err.position, text)
        raise err from None
    except MatcalcError as exc:
        raise exc.located(exc.position, text) from None
    except RecursionError:  # pragma: no cover - guarded by MAX_DEPTH
        raise NestingError("the expression is nested too deeply", 0, text) from None


def parse_raw(text: str):
    """Parse an expression (with an optional ``where`` clause) into ``(raw_tree, declarations)``."""
    return _parse(text, "start", "the expression")


def parse_kind(text: str):
    """Parse a kind such as ``matrix(n, n)`` into ``(name, position, [(dim, position), ...])``."""
    return _parse(text, "kind_only", "the declaration", DeclarationError)


def parse_let(text: str):
    """Parse ``"A: matrix(n, n)"`` (the command line's ``--let``) into ``([(name, pos)], kind)``."""
    return _parse(text, "let_only", "the declaration", DeclarationError)
