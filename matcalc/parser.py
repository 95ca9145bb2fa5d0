"""Text to a positioned raw tree, with lark's LALR parser.

The grammar lives in ``grammar/matcalc.lark`` (shipped inside the wheel as ``matcalc/grammar/``). Lark
calls :class:`_RawBuilder` at each reduction, so no recursive tree walk happens while parsing; chains such
as ``a + b + c + ...`` are collected into one flat list, so a 100 KB sum does not nest 25,000 levels deep.

The raw tree is untyped: :mod:`matcalc.typecheck` turns it into the typed AST. This module is the only
one that imports lark, and only when it must: once lark has built the LALR tables, they are kept in the
user's cache directory and :mod:`matcalc.lalr` parses well-formed input with them (the command line then
starts without importing lark); input with a syntax error is parsed again by lark, which reports it.
"""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from functools import cache

from .errors import DeclarationError, MatcalcError, MatcalcSyntaxError, NestingError
from .ops import FUNCTION_NAMES
from .recursion import deep_recursion  # noqa: F401  (re-exported: matcalc.parser.deep_recursion)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # pragma: no cover
    from lark import Lark
    from lark.exceptions import UnexpectedInput

#: Deepest nesting of operators and calls accepted (parentheses alone do not count).
MAX_DEPTH = 2500
#: Longest input accepted, in characters.
MAX_LENGTH = 1_000_000


def _fresh_locks_in_child() -> None:
    """A forked child (``check()`` forks its worker) has one thread: the parse lock another thread of the
    parent held at the fork would never be released there (:mod:`.recursion` resets its own)."""
    global _PARSE_LOCK
    _PARSE_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_child)


def __getattr__(name):
    # the recursion counter's lock lived here before :mod:`.recursion`; the live one, even after a fork
    if name == "_DEEP_LOCK":
        from . import recursion

        return recursion._DEEP_LOCK
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Raw:
    """A node of the raw tree: ``kind``, its ``items``, and where it stands in the input."""

    __slots__ = ("kind", "items", "start", "end", "op", "depth", "grouped", "keywords")

    def __init__(self, kind: str, items, start: int, end: int, op: int | None = None, depth: int = 1):
        self.kind = kind
        self.items = items
        self.start = start
        self.end = end
        self.op = op
        self.depth = depth
        self.grouped = False
        #: a call's keyword arguments: (name, value Raw, position of the name) triples (``axis=1``)
        self.keywords = ()

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


def _tok_end(tok) -> int:
    return tok.end_pos if tok.end_pos is not None else tok.start_pos + len(tok)


class _RawBuilder:
    """Parser callbacks, one per grammar alternative, building :class:`Raw` nodes (a plain object: lark
    calls the methods by rule name or alias, and so does :mod:`matcalc.lalr`). Tokens are ``str``
    subclasses with ``type``, ``start_pos`` and ``end_pos``, lark's or :class:`matcalc.lalr.Token`."""

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

    def keyword(self, c):
        name, _eq, value = c
        return Raw("keyword", (str(name), value), name.start_pos, value.end, name.start_pos, _depth(value))

    def call(self, c):
        """A call: its positional arguments in ``items``, its keyword arguments in ``keywords`` (a
        positional argument after a keyword is refused here, as Python does)."""
        fname = c[0]
        given = c[2] if len(c) == 4 else []
        rpar = c[-1]
        args = [a for a in given if a.kind != "keyword"]
        keywords = [a for a in given if a.kind == "keyword"]
        if keywords and given.index(keywords[0]) < len(args):
            late = next(a for a in given[given.index(keywords[0]):] if a.kind != "keyword")
            raise MatcalcSyntaxError("a positional argument follows a keyword argument", late.start)
        raw = Raw("call", (str(fname), args), fname.start_pos, _tok_end(rpar), fname.start_pos,
                  _depth(*given) if given else 1)
        raw.keywords = tuple((k.items[0], k.items[1], k.start) for k in keywords)
        return raw

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
        dims = [t for t in c[1:] if isinstance(t, str) and t.type in ("NAME", "NUMBER")]
        return (str(name), name.start_pos, [(str(t), t.start_pos) for t in dims])

    def declaration(self, c):
        names = [(str(t), t.start_pos) for t in c if isinstance(t, str) and t.type == "NAME"]
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
    """The grammar, with its FUNCNAME terminal's names filled in from the operation catalogue
    (:mod:`matcalc.ops`), so that a new operation needs no edit of the grammar. The LALR-table cache is
    keyed on this text (:func:`_cache_file`), so a changed catalogue gets new tables."""
    names = "|".join(FUNCTION_NAMES)  # plain names (tests/test_ops.py): nothing to escape
    return _grammar_file_text().replace("@FUNCTION_NAMES@", names)


def _grammar_file_text() -> str:
    """The grammar file, from the installed package or, in a checkout, from ``grammar/``."""
    for path in (os.path.join(os.path.dirname(__file__), "grammar", "matcalc.lark"),  # installed (a wheel)
                 os.path.join(os.path.dirname(os.path.dirname(__file__)), "grammar", "matcalc.lark")):  # checkout
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    from importlib import resources  # a zipped install: about 20 ms of imports, so only as a last resort

    try:
        res = resources.files("matcalc").joinpath("grammar/matcalc.lark")
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover
        pass
    raise FileNotFoundError("grammar/matcalc.lark is missing")  # pragma: no cover


def _cache_file(grammar: str, start: str) -> str | bool:
    """Where lark keeps the analysed LALR tables between runs, or False when there is nowhere to keep them.

    Building the tables takes about 80 ms, most of the command line's start-up. They are kept in the
    user's cache directory (``$MATCALC_CACHE_DIR``, else ``$XDG_CACHE_HOME/matcalc``, else
    ``~/.cache/matcalc``); ``MATCALC_CACHE_DIR=""`` turns the cache off. Lark stores a hash of the grammar,
    its options, its own version and Python's with the tables and rebuilds them on any mismatch, and a
    file it cannot read or write only costs the rebuild. :mod:`matcalc.lalr` keeps its own copy of the
    tables next to it. The file name carries a checksum of the grammar, so a changed grammar gets new files.
    """
    import zlib

    base = os.environ.get("MATCALC_CACHE_DIR")
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "matcalc")
    if not base:
        return False
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
    except OSError:
        return False
    if not os.access(base, os.W_OK | os.R_OK):
        return False
    data = grammar.encode("utf-8")
    digest = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    return os.path.join(base, f"parser-{start}-{digest}.lark")


_PARSE_LOCK = threading.Lock()


@cache
def _parser(start: str) -> Lark:
    from .budget import paused

    with paused():  # built once per process: not the input's cost, so outside the call's time budget
        return _build_parser(start)


def _build_parser(start: str) -> Lark:
    from lark import Lark

    grammar = _grammar_text()
    cache_file = _cache_file(grammar, start)
    builder = _RawBuilder()
    parser = Lark(
        grammar,
        parser="lalr",
        start=start,
        transformer=builder,
        keep_all_tokens=True,
        maybe_placeholders=False,
        cache=cache_file,
    )
    if cache_file:
        from . import lalr

        path = lalr.table_file(cache_file)
        if not os.path.exists(path):
            try:
                lalr.save(path, lalr.export(parser, start, builder))
            except Exception:  # noqa: BLE001 - an unexpected lark internal: no fast path, nothing else lost
                pass
    return parser


@cache
def _tables(start: str):
    """The saved LALR tables for ``start`` (:mod:`matcalc.lalr`), or None: then lark parses."""
    cache_file = _cache_file(_grammar_text(), start)
    if not cache_file:
        return None
    from . import lalr

    return lalr.load(lalr.table_file(cache_file), _RawBuilder())


_TOKEN_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "FUNCNAME": "a function", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "SEMI": "';'", "COLON": "':'", "EQUALS": "'='", "PLUS": "'+'",
    "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "HADAMARD": "'.*'", "ELEMDIV": "'./'", "DOT": "'·'",
    "CARET": "'^'", "ELEMPOW": "'.^'", "MATMUL": "'@'", "POWSTAR": "'**'", "TRANSPOSE": "a transpose (')",
    "NORMBAR": "'||'",
    "NORMSUB": "'_F'", "NORMOPEN": "'||'", "WHERE": "'where'", "$END": "the end of the input",
    "<END-OF-FILE>": "the end of the input",
}
_OPERAND = {"NAME", "NUMBER", "FUNCNAME", "LPAR", "LSQB", "NORMOPEN", "MINUS", "PLUS"}
_OPERATOR = {"PLUS", "MINUS", "STAR", "SLASH", "HADAMARD", "ELEMDIV", "DOT", "CARET", "ELEMPOW", "TRANSPOSE",
             "MATMUL", "POWSTAR"}


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
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

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
_OPEN_DBAR = "\ue001"


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
                # a ‖ opener gets its own mark: two of them must stay two tokens (‖‖x‖‖, like ||||x||||)
                out[i:i + width] = _OPEN_BAR * width if width == 2 else _OPEN_DBAR
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


_MODULE_PREFIX = ("np.", "numpy.", "jnp.", "torch.", "math.", "sp.", "sympy.", "scipy.")


def _refuse_module_prefix(text: str) -> None:
    """``np.exp(x)``: matcalc's functions need no module; say so at the prefix (the grammar would stop at
    the '.' with a bare "unexpected character")."""
    for prefix in _MODULE_PREFIX:
        i = text.find(prefix)
        while i >= 0:
            after = text[i + len(prefix):i + len(prefix) + 1]
            if (i == 0 or not _is_name_char(text[i - 1])) and after.isalpha() and \
                    not text.startswith("T", i + len(prefix)):
                name = text[i + len(prefix):].split("(")[0].strip()
                raise MatcalcSyntaxError(f"{prefix}{name}: matcalc's functions are written without a module; "
                                         f"write {name}(...)", i, text)
            i = text.find(prefix, i + 1)


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or "\u0370" <= ch <= "\u03ff"


def _refuse_indexing(text: str) -> None:
    """``x[1]``, ``X[1, 2]``, ``f(x)[0]``: indexing is not part of the language (spec, "Indexing").

    The grammar would read a ``[`` right after an operand as a product with a literal (``x [1]`` = x),
    which is never what was meant when the bracket touches a name or a closing bracket; this is an
    error at the bracket. A literal after a space (``A [1, 2; 3, 4]``) or a number (``2[x, y]``) is
    still a product.
    """
    start = 0
    while (i := text.find("[", start)) > 0:
        start = i + 1
        before = text[i - 1]
        if before in ")]":
            name = text[:i]
        elif _is_name_char(before):
            j = i
            while j > 0 and _is_name_char(text[j - 1]):
                j -= 1
            if not text[j].isalpha():  # a number: `2[x, y]` scales a literal
                continue
            name = text[j:i]
        else:
            continue
        shown = name if len(name) <= 20 else "..." + name[-17:]
        raise MatcalcSyntaxError(
            f"indexing ({shown}[...]) is not part of the matcalc language, which works with whole vectors and "
            "matrices (an entry of a vector x is a dot product with a basis vector e: dot(e, x)); to multiply "
            "by a literal, put a space or '*' before '['", i, text)


def _parse(text: str, start: str, what: str, error_cls=MatcalcSyntaxError):
    if not isinstance(text, str):
        raise error_cls(f"{what} must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise error_cls(f"{what} is longer than {MAX_LENGTH:,} characters", MAX_LENGTH, text[:MAX_LENGTH + 1])
    if not text.strip():
        raise error_cls(f"{what} is empty", 0, text)
    if start == "start":
        _refuse_indexing(text)
        _refuse_module_prefix(text)
    marked = _mark_norm_openers(text)
    try:
        tables = _tables(start)
        if tables is not None:
            from .lalr import Fallback

            try:
                with _PARSE_LOCK:  # one table parser (and its builder) serves every thread: one parse at a time
                    return tables.parse(marked)
            except Fallback:  # a syntax error: lark parses again and reports it
                pass
        return _lark_parse(start, marked, text, what, error_cls)
    except MatcalcError as exc:
        raise exc.located(exc.position, text) from None
    except RecursionError:  # pragma: no cover - guarded by MAX_DEPTH
        raise NestingError("the expression is nested too deeply", 0, text) from None


def _lark_parse(start: str, marked: str, text: str, what: str, error_cls):
    from lark.exceptions import UnexpectedInput

    parser = _parser(start)
    try:
        with _PARSE_LOCK:  # one lark parser (and its transformer) serves every thread: one parse at a time
            return parser.parse(marked)
    except UnexpectedInput as exc:
        err = _syntax_error(exc, text, what)
        err.message = err.message.replace(_OPEN_BAR, "|").replace(_OPEN_DBAR, "‖")
        if error_cls is not MatcalcSyntaxError:
            err = error_cls(err.message, err.position, text)
        raise err from None


def parse_raw(text: str):
    """Parse an expression (with an optional ``where`` clause) into ``(raw_tree, declarations)``."""
    return _parse(text, "start", "the expression")


def parse_kind(text: str):
    """Parse a kind such as ``matrix(n, n)`` into ``(name, position, [(dim, position), ...])``."""
    return _parse(text, "kind_only", "the declaration", DeclarationError)


def parse_let(text: str):
    """Parse ``"A: matrix(n, n)"`` (the command line's ``--let``) into ``([(name, pos)], kind)``."""
    return _parse(text, "let_only", "the declaration", DeclarationError)
