"""The ``matcalc`` command: derive, check and parse matrix expressions from a shell.

Exit codes are part of the interface, so scripts can rely on them: 0 success (and a claim that holds),
1 a problem with the input (a :class:`~matcalc.errors.MatcalcError`, shown as one message with a caret
under the offending character, never a traceback) or a claim or check that fails, 2 a usage error
(argparse's convention), 3 a bug in matcalc ("internal error"; set ``MATCALC_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

from .errors import DeclarationError, MatcalcError

EXAMPLES = """\
examples:
  matcalc derive "max(0, w·x + b)" --wrt w              the neuron (Parr and Howard); w, x vectors, b scalar
  matcalc derive "x' A x" --wrt x --let "A: matrix(n,n)"
  matcalc derive "x' A x" --wrt x --order 2             the Hessian, A + A'
  matcalc derive "||X - U V||_F^2" --wrt V --layout denominator
  matcalc derive "w·x + b" --wrt w --wrt b              one line per variable
  matcalc derive "sum(exp(A x))" --wrt x --format numpy  a NumPy function computing the gradient
  matcalc derive "tanh(W x)" --wrt x --format json --check
  matcalc check "x' A x" --wrt x --claim "2 A x" --layout denominator   exits 1: A is not symmetric
  matcalc parse "w·x + b where w: vector(3)"
  echo "sum(tanh(W x))" | matcalc derive - --wrt W

Undeclared names follow matrixcalculus.org's convention: a-g scalars, h-z vectors, A-Z matrices,
Greek names scalars. Exit codes: 0 ok, 1 bad input or a failed claim/check, 2 usage, 3 internal error.
"""

FORMATS = ("text", "unicode", "latex", "numpy", "jax", "torch", "sympy", "json")
CODE_FORMATS = ("numpy", "jax", "torch")


# --- the parser -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="matcalc", description="Symbolic matrix calculus: closed-form derivatives of matrix expressions.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"matcalc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("expr", metavar="EXPR", help="the expression ('-' reads it from standard input)")
        p.add_argument("--let", action="append", default=[], metavar='"NAME[, NAME...]: KIND"',
                       help='declare names, e.g. "A: matrix(n,n)", "w, x: vector(n)", "b: scalar" (repeatable)')
        return p

    d = command("derive", "the derivative of EXPR")
    d.add_argument("--wrt", action="append", metavar="VAR",
                   help="the variable (repeat for several; optional when EXPR has one variable)")
    d.add_argument("--layout", choices=("numerator", "denominator"), default="numerator",
                   help="numerator (Jacobian, the default) or denominator (gradient shaped like the variable)")
    d.add_argument("--order", type=int, choices=(1, 2), default=1, help="2 for the Hessian")
    d.add_argument("--format", choices=FORMATS, default="text", help="how to print the result (default text)")
    d.add_argument("--check", action="store_true", help="verify the result against SymPy (exit 1 if it fails)")
    d.add_argument("--steps", action="store_true", help="show the derivation step by step")
    d.add_argument("--value-and-grad", action="store_true",
                   help="with --format numpy/jax/torch: the function returns (value, derivative)")

    c = command("check", "is CLAIM the derivative of EXPR? (exit 0 if it is, 1 if not)")
    c.add_argument("--wrt", required=True, metavar="VAR", help="the variable")
    c.add_argument("--claim", required=True, help="the claimed derivative, in the same language")
    c.add_argument("--layout", choices=("numerator", "denominator"), default="numerator")

    p = command("parse", "the typed expression and its shape")
    p.add_argument("--format", choices=("text", "unicode", "latex", "json"), default="text")
    return parser


# --- helpers ----------------------------------------------------------------------------------------------
def read_expr(expr: str, stdin: TextIO) -> str:
    """EXPR itself, or standard input when EXPR is ``-`` (trailing newlines dropped)."""
    return stdin.read().rstrip("\r\n") if expr == "-" else expr


def declarations(lets: Sequence[str]) -> dict[str, str]:
    """``--let`` options as keyword declarations (``{"A": "matrix(n, n)"}``) for parse/derive."""
    from .parser import parse_let

    out: dict[str, str] = {}
    for text in lets:
        names, (kind, _kpos, dims) = parse_let(text)
        spelled = f"{kind}({', '.join(d for d, _ in dims)})" if dims else kind
        for name, pos in names:
            if name in out and out[name] != spelled:
                raise DeclarationError(f"{name} is declared twice, as {out[name]} and as {spelled}", pos, text)
            out[name] = spelled
    return out


def _write(stream: TextIO, text: str) -> None:
    """Print ``text``; characters the terminal's encoding lacks are escaped rather than crashing."""
    try:
        stream.write(text + "\n")
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def _report_dict(report: Any) -> dict[str, Any]:
    return {"ok": bool(report.ok), "method": report.method, "max_error": report.max_error,
            "message": str(report)}


def _comment(text: str) -> str:
    return "\n".join(("# " + line).rstrip() for line in text.splitlines())


# --- commands ---------------------------------------------------------------------------------------------
def _flat(result) -> list:
    """The derivatives of a result: one, a list, or (second derivatives by blocks) a list of rows."""
    derivs = list(result) if isinstance(result, list) else [result]
    if derivs and isinstance(derivs[0], list):
        derivs = [block for row in derivs for block in row]
    return derivs


def _label(d) -> str:
    """``d/dx: ``, ``d²/dx²: `` or, for a mixed block, ``d²/dxdy: ``."""
    if getattr(d, "first", None) is not None:
        return f"d²/d{d.first.name}d{d.variable.name}: "
    return f"d²/d{d.variable.name}²: " if d.order == 2 else f"d/d{d.variable.name}: "


def cmd_derive(args: argparse.Namespace, source: str, out: TextIO) -> int:
    from .diff import derive
    from .printing import declarations_of, to_text, to_unicode
    from .shapes import describe

    decls = declarations(args.let)
    wrt = args.wrt
    result = derive(source, wrt=wrt if wrt is None or len(wrt) > 1 else wrt[0], layout=args.layout,
                    order=args.order, **decls)
    derivs = _flat(result)
    several = len(derivs) > 1
    fmt = args.format
    reports = [d.check() for d in derivs] if args.check else [None] * len(derivs)
    failed = any(r is not None and not r.ok for r in reports)

    def label(d) -> str:
        return _label(d) if several else ""

    if fmt == "json":
        def entry(d, report) -> dict[str, Any]:
            e: dict[str, Any] = {"wrt": d.variable.name, "derivative": str(d), "unicode": d.unicode(),
                                 "latex": d.latex(), "shape": [str(s) for s in d.shape]}
            if getattr(d, "first", None) is not None:  # a mixed block ∂²f/∂first∂wrt
                e["first"] = d.first.name
            if hasattr(d, "differential"):  # a 3- or 4-way tensor: its forms, and its axes
                e["kind"] = f"tensor({', '.join(str(s) for s in d.shape)})"
                e["linear_map"] = d.linear_map
                e["kronecker"] = None if d.kronecker is None else d.vec_form(to_text)
                e["index"] = d.index
            else:
                e["kind"] = describe(d.shape)
            if report is not None:
                e["check"] = _report_dict(report)
            if args.steps:
                e["steps"] = str(d.steps)
            return e

        first = derivs[0]
        obj: dict[str, Any] = {"input": source, "declarations": declarations_of(first.function),
                               "layout": args.layout, "order": args.order}
        if several:
            obj["wrt"] = [d.variable.name for d in derivs]
            obj["derivatives"] = [entry(d, r) for d, r in zip(derivs, reports, strict=True)]
        else:
            obj.update(entry(first, reports[0]))
        _write(out, json.dumps(obj, ensure_ascii=False, indent=2))
        return 1 if failed else 0

    if fmt in CODE_FORMATS:
        from .codegen import generate

        chunks = []
        for d, report in zip(derivs, reports, strict=True):
            code = generate(d, fmt, value_and_grad=args.value_and_grad)
            if chunks:  # the imports once, at the top
                code = "\n".join(line for line in code.splitlines() if not line.startswith("import ")).lstrip()
            extra = [str(d.steps)] if args.steps else []
            extra += [f"check: {report}"] if report is not None else []
            chunks.append((_comment("\n".join(extra)) + "\n" if extra else "") + code.rstrip())
        _write(out, "\n\n\n".join(chunks))
        return 1 if failed else 0

    for d, report in zip(derivs, reports, strict=True):
        if args.steps:
            _write(out, str(d.steps))
        if fmt == "text":
            body = str(d)
        elif fmt == "unicode":
            body = to_unicode(d.expr)
        elif fmt == "latex":
            body = d.latex()
        else:  # sympy
            body = str(d.to_sympy())
        _write(out, label(d) + body)
        if report is not None:
            _write(out, f"check: {report}")
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace, source: str, out: TextIO) -> int:
    from .verify import check_claim

    report = check_claim(source, args.wrt, args.claim, layout=args.layout, **declarations(args.let))
    _write(out, str(report))
    return 0 if report.ok else 1


def cmd_parse(args: argparse.Namespace, source: str, out: TextIO) -> int:
    from . import parse
    from .printing import declarations_of, to_latex, to_text, to_unicode
    from .shapes import describe

    node = parse(source, **declarations(args.let))
    decls = declarations_of(node)
    if args.format == "json":
        _write(out, json.dumps({"input": source, "expression": to_text(node), "unicode": to_unicode(node),
                                "latex": to_latex(node), "shape": [str(s) for s in node.shape],
                                "kind": describe(node.shape), "declarations": decls},
                               ensure_ascii=False, indent=2))
        return 0
    shown = {"text": to_text, "unicode": to_unicode, "latex": to_latex}[args.format](node)
    _write(out, shown)
    _write(out, f"  shape: {describe(node.shape)}")
    for name, kind in decls.items():
        _write(out, f"  {name}: {kind}")
    return 0


COMMANDS = {"derive": cmd_derive, "check": cmd_check, "parse": cmd_parse}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        source = read_expr(args.expr, sys.stdin)
        return COMMANDS[args.command](args, source, sys.stdout)
    except MatcalcError as exc:
        _write(sys.stderr, f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in matcalc, not in the input
        if os.environ.get("MATCALC_DEBUG") == "1":
            traceback.print_exc()
        _write(sys.stderr, f"internal error: {type(exc).__name__}: {exc}")
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
