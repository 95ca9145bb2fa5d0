"""A small LALR(1) driver over the tables lark computes, so that the command line starts without lark.

Importing lark and loading its parser takes about 40 ms of every ``matcalc`` run (the LALR analysis itself,
about 80 ms, is already kept in lark's cache). The tables do not change between runs: after lark has built
the parser once, :func:`export` writes them (parse table, rules, and each state's terminal patterns, the
contextual lexer's) with ``marshal`` into the user's cache directory, and :class:`Tables` parses with them
the same way lark does: the same lexer patterns tried in the same order, the same shifts and reductions,
the same transformer callbacks. Whenever it cannot go on (an unexpected character or token) it raises
:class:`Fallback`, and :mod:`matcalc.parser` parses the text again with lark, which reports the error
exactly as before. Only well-formed input is ever parsed here.
"""

from __future__ import annotations

import marshal
import os
import re
import sys

#: Bump when the exported layout changes; part of the file name, so old files are simply not read.
FORMAT = 2


class Fallback(Exception):
    """The driver cannot go on; lark parses the text instead (and reports the error)."""


class Token(str):
    """A token: its text, its terminal ``type`` and its ``start_pos``/``end_pos``, as lark's Token."""

    def __new__(cls, type_: str, value: str, start: int, end: int):
        token = str.__new__(cls, value)
        token.type = type_
        token.start_pos = start
        token.end_pos = end
        return token


class _Inline(list):
    """The children of an anonymous rule (``__x_star_0``, lark's repetitions): spliced into its parent."""


class Tables:
    """Parse tables for one start symbol, with the callbacks of ``builder``."""

    def __init__(self, data: dict, builder):
        self.states = data["states"]
        self.start, self.end = data["start"], data["end"]
        # a rule's callback: the builder's method, _Inline for an anonymous rule (spliced into its parent),
        # None for a ?rule of one symbol (it only ever passes its one child on)
        self.rules = [(origin, size, _Inline if cb == "" else getattr(builder, cb, None), expand1, splice)
                      for origin, size, cb, expand1, splice in data["rules"]]
        self.lexer_data = data["lexers"]
        self.state_lexer = data["state_lexer"]
        self.lexers: dict[int, tuple] = {}

    def lexer(self, state: int) -> tuple:
        """The compiled patterns and ignored terminals of a state's lexer (compiled on first use, as lark does)."""
        index = self.state_lexer[state]
        found = self.lexers.get(index)
        if found is None:
            patterns, flags, ignore = self.lexer_data[index]
            found = self.lexers[index] = ([re.compile(p, flags) for p in patterns], frozenset(ignore))
        return found

    def parse(self, text: str):
        stack, values = [self.start], []
        pos, n = 0, len(text)
        while True:
            token = None
            while pos < n:
                patterns, ignore = self.lexer(stack[-1])
                for mre in patterns:
                    m = mre.match(text, pos)
                    if m:
                        break
                else:
                    raise Fallback
                start, pos = pos, m.end()
                if m.lastgroup not in ignore:
                    token = Token(m.lastgroup, m.group(0), start, pos)
                    break
            if token is None:
                return self.feed(stack, values, Token("$END", "", pos, pos), True)
            self.feed(stack, values, token, False)

    def feed(self, stack: list, values: list, token: Token, is_end: bool):
        """Shift ``token`` after every reduction it triggers, as lark's ``feed_token``; what lark's tree
        builder does at a reduction is done here: splice anonymous rules into their parent, pass the one
        child of a ``?rule`` on, else call the builder."""
        states, rules = self.states, self.rules
        while True:
            action = states[stack[-1]].get(token.type)
            if action is None:
                raise Fallback
            shift, arg = action
            if shift:
                stack.append(arg)
                values.append(token)
                return None
            origin, size, callback, expand1, splice = rules[arg]
            children = values[-size:] if size else []
            if size:
                del stack[-size:]
                del values[-size:]
            if splice:
                children = [x for c in children for x in (c if isinstance(c, _Inline) else (c,))]
            if callback is _Inline:
                value = _Inline(children)
            elif expand1 and len(children) == 1:
                value = children[0]
            elif callback is None:  # cannot happen with an exported grammar (export checks); lark builds a Tree
                raise Fallback
            else:
                value = callback(children)
            stack.append(states[stack[-1]][origin][1])
            values.append(value)
            if is_end and stack[-1] == self.end:
                return value


# --- export and load ---------------------------------------------------------------------------------------
def export(lark_parser, start: str, builder) -> dict:
    """The tables of a lark LALR parser with a contextual lexer, as plain data; ValueError when the parser
    uses something this driver does not do (lexer callbacks, tree-building rules)."""
    frontend = lark_parser.parser
    table = frontend.parser._parse_table
    rule_index: dict = {}
    states = {}
    for state, actions in table.states.items():
        row = {}
        for symbol, (action, arg) in actions.items():
            if action.name == "Shift":
                row[symbol] = (True, arg)
            else:
                row[symbol] = (False, rule_index.setdefault(arg, len(rule_index)))
        states[state] = row
    rules: list = [None] * len(rule_index)
    for rule, i in rule_index.items():
        name = str(rule.origin.name)
        callback = str(rule.alias or rule.options.template_source or name)
        expand1 = bool(rule.options.expand1 and not rule.alias)
        passes_on = expand1 and len(rule.expansion) == 1
        if not name.startswith("_") and not hasattr(builder, callback) and not passes_on:
            raise ValueError(f"no callback for rule {name}")
        splice = any(not s.is_term and s.name.startswith("_") for s in rule.expansion)
        rules[i] = (name, len(rule.expansion), "" if name.startswith("_") else callback, expand1, splice)
    lexers: list = []
    seen: dict[int, int] = {}
    state_lexer = {}
    for state, lexer in frontend.lexer.lexers.items():
        if id(lexer) not in seen:
            scanner = lexer.scanner  # builds the patterns, in lark's order
            if lexer.callback:
                raise ValueError("lexer callbacks are not supported")
            seen[id(lexer)] = len(lexers)
            lexers.append(([m.pattern for m in scanner._mres], lexer.g_regex_flags, sorted(lexer.ignore_types)))
        state_lexer[state] = seen[id(lexer)]
    return {"states": states, "rules": rules, "lexers": lexers, "state_lexer": state_lexer,
            "start": table.start_states[start], "end": table.end_states[start]}


def table_file(cache_file: str) -> str:
    """The tables' file next to lark's cache file (``...lark`` -> ``...tables-<format>-<python>``)."""
    return f"{cache_file}.tables-{FORMAT}-{sys.version_info[0]}{sys.version_info[1]}"


def save(path: str, data: dict) -> None:
    """Write atomically (a reader never sees half a file); failures only cost the fast path."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(data))
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def load(path: str, builder) -> Tables | None:
    """The tables saved at ``path``, or None when there are none (or they cannot be read)."""
    try:
        with open(path, "rb") as f:
            return Tables(marshal.loads(f.read()), builder)
    except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
        return None
