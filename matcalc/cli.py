"""The ``matcalc`` command: derive, check and parse matrix expressions from a shell.

Exit codes are part of the interface, so scripts can rely on them: 0 success (and a claim that holds),
1 a problem with the input (a :class:`~matcalc.errors.MatcalcError`, shown as one message with a caret
under the offending character, never a traceback) or a claim or check that fails, 2 a usage error
(argparse's convention), 3 a bug in matcalc ("internal error"; set ``MATCALC_DEBUG=1`` for the traceback),
141 standard output closed before everything was written (``| head -1``; 128 + SIGPIPE, as Unix tools).
Under ``--format json`` errors are JSON on standard output too (``{"error": {...}}``), with the same codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import DeclarationError, MatcalcError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, TextIO

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
Greek names scalars; every answer ends with a "where" line saying what was assumed, and readings users
rarely intend (Ax as one name, a bias b1 read as a scalar) get a "note:" line on standard error.
NumPy's spellings work too: A @ x, x.T, x ** 2 (element-wise).
Exit codes: 0 ok, 1 bad input or a failed claim/check, 2 usage, 3 internal error (a bug in matcalc; set
MATCALC_DEBUG=1 for the traceback), 141 standard output closed early (| head).
"""

FORMATS = ("text", "unicode", "latex", "numpy", "jax", "torch", "sympy", "json")
CODE_FORMATS = ("numpy", "jax", "torch")


def _budget_number(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


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
        p.add_argument("--time-limit", type=_budget_number, metavar="SECONDS",
                       help="stop with an error after this much CPU time (default 2; 0 for none)")
        p.add_argument("--memory-limit", type=_budget_number, metavar="MB",
                       help="stop with an error past this much extra memory (default 1024; 0 for none)")
        p.add_argument("--no-warn", action="store_true",
                       help="no 'note:' lines on standard error about readings users rarely intend")
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
    d.add_argument("--no-names", action="store_true",
                   help="print the result whole, without naming its repeated parts (… where s = …)")
    d.add_argument("--value-and-grad", action="store_true",
                   help="with --format numpy/jax/torch: the function returns (value, derivative)")

    c = command("check", "is CLAIM the derivative of EXPR? (exit 0 if it is, 1 if not)")
    c.add_argument("--wrt", required=True, metavar="VAR", help="the variable")
    c.add_argument("--claim", required=True, help="the claimed derivative, in the same language")
    c.add_argument("--layout", choices=("numerator", "denominator"), default="numerator")

    p = command("parse", "the typed expression and its shape")
    p.add_argument("--format", choices=("text", "unicode", "latex", "json"), default="text")

    from .web import add_arguments  # the web page (the `web` extra); imports no web library here
    add_arguments(sub.add_parser("serve", help="a local web page (needs the web extra)",
                                 description="serve matcalc's web page and JSON API on this machine"))
    return parser


# --- helpers ----------------------------------------------------------------------------------------------
def read_expr(expr: str, stdin: TextIO | None) -> str:
    """EXPR itself, or standard input when EXPR is ``-`` (trailing newlines dropped)."""
    if expr != "-":
        return expr
    if stdin is None or getattr(stdin, "closed", False):
        raise MatcalcError("EXPR is '-' but standard input is closed")
    try:
        data = stdin.buffer.read(MAX_STDIN + 1) if hasattr(stdin, "buffer") else stdin.read(MAX_STDIN + 1)
    except (OSError, ValueError) as exc:
        raise MatcalcError(f"cannot read standard input: {exc}") from None
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MatcalcError(f"standard input is not UTF-8 text (byte {exc.start})") from None
    if len(data) > MAX_STDIN:
        raise MatcalcError(f"standard input holds more than {MAX_STDIN:,} bytes")
    return data.rstrip("\r\n")


#: The most bytes read from standard input (the parser refuses longer expressions anyway).
MAX_STDIN = 4_000_000


def utf8_args(argv: Sequence[str]) -> list[str]:
    """The arguments as UTF-8 text whatever the locale: under ``LC_ALL=C`` (without Python's UTF-8 mode)
    Python decodes them byte by byte into surrogates, and ``σ(w·x)`` would arrive as ``\\udccf\\udc83...``."""
    out = []
    for arg in argv:
        try:
            out.append(os.fsencode(arg).decode("utf-8"))
        except (UnicodeError, TypeError):
            out.append(arg)
    return out


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


def _sympy_of(d):
    """The explicit SymPy matrix of a derivative; a tensor with no matrix form cannot be written as one."""
    if getattr(d, "expr", None) is None:
        from .errors import NoMatrixFormError

        raise NoMatrixFormError(f"{d.linear_map}: a tensor with no matrix form has no SymPy matrix; use "
                                "--format text or json")
    return d.to_sympy()


def _code_name(d) -> str | None:
    """``hessian_x_y`` for the block (x, y) of several variables' Hessian (else the default name)."""
    pair = getattr(d, "variables", None)
    if pair is None:
        return None
    name = f"hessian_{pair[0].name}_{pair[1].name}"
    return name if name.isidentifier() else None


# --- commands ---------------------------------------------------------------------------------------------
def _blocks(result, order: int) -> list[tuple[list[str], Any]]:
    """``(variables, derivative)`` pairs: one per --wrt, or one per block of a Hessian in several variables."""
    if isinstance(result, list) and result and isinstance(result[0], list):  # Hessian blocks [[H_xx, H_xy], ...]
        return [([v.name for v in b.variables], b) for row in result for b in row]
    derivs = list(result) if isinstance(result, list) else [result]
    return [([d.variable.name] * order, d) for d in derivs]


def _label(names: list[str], several: bool, latex: bool = False) -> str:
    """``d/dw: `` for several first derivatives; ``∂²f/∂x∂y: `` for the blocks of a Hessian."""
    if not several:
        return ""
    if len(names) == 1:
        return f"\\frac{{\\partial f}}{{\\partial {names[0]}}} = " if latex else f"d/d{names[0]}: "
    a, b = names
    if latex:
        bottom = f"\\partial {a}^2" if a == b else f"\\partial {a}\\,\\partial {b}"
        return f"\\frac{{\\partial^2 f}}{{{bottom}}} = "
    return f"∂²f/∂{a}²: " if a == b else f"∂²f/∂{a}∂{b}: "


def _json_entry(names: list[str], d, report, steps: bool) -> dict[str, Any]:
    from .diff.tensor import TensorDerivative
    from .printing import to_text
    from .shapes import describe

    e: dict[str, Any] = {"wrt": names, "derivative": d.text(), "unicode": d.unicode(), "latex": d.latex(),
                         "shape": [str(s) for s in d.shape]}
    if isinstance(d, TensorDerivative):  # a 3- or 4-way tensor: its forms, and its axes
        e["kind"] = f"tensor({', '.join(str(s) for s in d.shape)})"
        e["linear_map"] = d.linear_map
        e["kronecker"] = None if d.kronecker is None else d.vec_form(to_text)
        e["index"] = d.index
    else:
        e["kind"] = describe(d.shape)
    if report is not None:
        e["check"] = _report_dict(report)
    if steps:
        e["steps"] = str(d.steps)
    return e


def _derive_json(args, source: str, blocks, reports, assumed) -> str:
    """One schema whatever the number of --wrt: ``wrt`` and ``derivatives`` are always lists."""
    import json

    from .printing import declarations_of

    first = blocks[0][1]
    obj: dict[str, Any] = {
        "input": source, "declarations": declarations_of(first.function), "layout": args.layout,
        "order": args.order, "wrt": list(dict.fromkeys(n for names, _ in blocks for n in names)),
        "assumptions": assumed.as_list(), "where": str(assumed), "notes": [n.message for n in assumed.notes],
        "derivatives": [_json_entry(names, d, r, args.steps) for (names, d), r in zip(blocks, reports, strict=True)],
    }
    return json.dumps(obj, ensure_ascii=False, indent=2)


def _derive_code(args, blocks, reports, assumed) -> str:
    from .codegen import generate

    chunks: list[str] = []
    written: set[str] = set()
    for (_, d), report in zip(blocks, reports, strict=True):
        code = generate(d, args.format, value_and_grad=args.value_and_grad, name=_code_name(d))
        # the imports and each helper (a preamble: NumPy's erf) once, where first needed
        head, _, body = code.partition("\n\n\ndef ")
        parts = [part for part in head.split("\n\n\n") if part not in written]
        written.update(parts)
        code = "\n\n\n".join([*parts, "def " + body])
        extra = [str(d.steps)] if args.steps else []
        extra += [f"check: {report}"] if report is not None else []
        chunks.append((_comment("\n".join(extra)) + "\n" if extra else "") + code.rstrip())
    where = _comment(str(assumed)) + "\n" if str(assumed) else ""  # the where line, as a comment on top
    return where + "\n\n\n".join(chunks)


def _where(assumed, fmt: str) -> str:
    """The ``where`` line under an answer, in the answer's format."""
    if fmt == "latex":
        from .printing.latex import where_latex

        return where_latex(assumed)
    return _comment(str(assumed)) if fmt == "sympy" else str(assumed)


def _derive_lines(args, blocks, reports, assumed) -> list[str]:

    fmt, lines = args.format, []
    several = len(blocks) > 1
    for (names, d), report in zip(blocks, reports, strict=True):
        if args.steps:
            lines.append(d.steps.latex() if fmt == "latex" else str(d.steps))
        body = {"text": d.text, "unicode": d.unicode, "latex": d.latex,
                "sympy": lambda d=d: str(_sympy_of(d))}[fmt]()
        lines.append(_label(names, several, fmt == "latex") + body)
        if report is not None:
            lines.append(f"check: {report}")
    where = _where(assumed, fmt)
    return lines + ([where] if where else [])


def cmd_derive(args: argparse.Namespace, source: str, out: TextIO) -> int:
    from .api import derive

    wrt = args.wrt
    with _noting(args):  # the notes are shown even when the derivative then fails (`Wx + b` --wrt x)
        result = derive(source, wrt=wrt if wrt is None or len(wrt) > 1 else wrt[0], layout=args.layout,
                        order=args.order, named=not args.no_names, **declarations(args.let))
    blocks = _blocks(result, args.order)
    assumed = blocks[0][1].assumptions
    reports = [d.check() for _, d in blocks] if args.check else [None] * len(blocks)
    failed = any(r is not None and not r.ok for r in reports)
    if args.format == "json":
        _write(out, _derive_json(args, source, blocks, reports, assumed))
    elif args.format in CODE_FORMATS:
        _write(out, _derive_code(args, blocks, reports, assumed))
    else:
        _write(out, "\n".join(_derive_lines(args, blocks, reports, assumed)))
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace, source: str, out: TextIO) -> int:
    from .api import check_claim
    from .typecheck import analyse

    decls = declarations(args.let)
    assumed = analyse(source, decls)[1]
    _notes(assumed.notes, args)
    report = check_claim(source, args.wrt, args.claim, layout=args.layout, **decls)
    _write(out, str(report))
    if str(assumed):
        _write(out, str(assumed))
    return 0 if report.ok else 1


def cmd_parse(args: argparse.Namespace, source: str, out: TextIO) -> int:
    from .printing import declarations_of, to_latex, to_text, to_unicode
    from .shapes import describe
    from .typecheck import analyse

    node, assumed = analyse(source, declarations(args.let))
    _notes(assumed.notes, args)
    decls = declarations_of(node)
    if args.format == "json":
        import json

        _write(out, json.dumps({"input": source, "expression": to_text(node), "unicode": to_unicode(node),
                                "latex": to_latex(node), "shape": [str(s) for s in node.shape],
                                "kind": describe(node.shape), "declarations": decls,
                                "assumptions": assumed.as_list(), "where": str(assumed),
                                "notes": [n.message for n in assumed.notes]},
                               ensure_ascii=False, indent=2))
        return 0
    shown = {"text": to_text, "unicode": to_unicode, "latex": to_latex}[args.format](node)
    _write(out, shown)
    _write(out, f"  shape: {describe(node.shape)}")
    for a in assumed:  # each name's kind and where it came from
        _write(out, f"  {a}")
    return 0


COMMANDS = {"derive": cmd_derive, "check": cmd_check, "parse": cmd_parse}


def _limits_of(args: argparse.Namespace):
    """The --time-limit and --memory-limit options as a :func:`matcalc.limits` block."""
    from .budget import limits

    changes = {}
    if getattr(args, "time_limit", None) is not None:
        changes["time"] = None if args.time_limit == 0 else args.time_limit
    if getattr(args, "memory_limit", None) is not None:
        changes["memory"] = None if args.memory_limit == 0 else int(args.memory_limit * 2**20)
    return limits(**changes)


def _error(text: str) -> None:
    """A message on standard error, if standard error can still be written."""
    try:
        if sys.stderr is not None:
            _write(sys.stderr, text)
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again on exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


#: Python spellings in messages, and what the command line calls them.
_CLI_SPELLINGS = (("(wrt=...)", "(--wrt VAR)"), ("wrt must be", "--wrt must be"), ("give wrt as", "give --wrt as"),
                  ("declare it to get", "declare it (--let) to get"))


def cli_message(text: str) -> str:
    """A message as the command line shows it: options, not Python keywords (``--wrt``, not ``wrt=``)."""
    for python, cli in _CLI_SPELLINGS:
        text = text.replace(python, cli)
    return text


def _notes(notes, args: argparse.Namespace) -> None:
    """The assumption warnings, as ``note:`` lines on standard error (``--no-warn`` silences them)."""
    if getattr(args, "no_warn", False):
        return
    for note in notes:
        _write(sys.stderr, f"note: {note}")


class _noting:
    """Show the AssumptionWarnings issued inside the block as ``note:`` lines, whatever happens in it."""

    def __init__(self, args: argparse.Namespace):
        import warnings

        self.args = args
        self.catch = warnings.catch_warnings(record=True)

    def __enter__(self):
        import warnings

        from .errors import AssumptionWarning

        self.caught = self.catch.__enter__()
        warnings.simplefilter("always", AssumptionWarning)
        return self

    def __exit__(self, *exc) -> bool:
        from .errors import AssumptionWarning

        self.catch.__exit__(*exc)
        _notes([w.message for w in self.caught if isinstance(w.message, AssumptionWarning)], self.args)
        return False


def _fail(args: argparse.Namespace, code: int, kind: str, exc: Exception, text: str) -> int:
    """Report an error: JSON on standard output under ``--format json`` (so a script reading JSON always
    gets JSON), else one line and a caret on standard error."""
    if getattr(args, "format", None) == "json":
        import json

        err = {"type": type(exc).__name__, "message": cli_message(getattr(exc, "message", str(exc))),
               "position": getattr(exc, "position", None), "exit_code": code, "text": text}
        _write(sys.stdout, json.dumps({"error": err}, ensure_ascii=False, indent=2))
    else:
        _error(text)
    return code


def _closed_pipe() -> int:
    """Standard output was closed early (``matcalc ... | head -1``): end quietly, as Unix tools do, with
    the exit code of a process ended by SIGPIPE (128 + 13), and never flush into the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind sys.stdout (a test's StringIO)
        pass
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(utf8_args(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version, or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "serve":
        from .web import run
        return run(args)
    try:
        code = _run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader went away (matcalc ... | head -1): end quietly
        return _closed_pipe()
    except OSError as exc:  # output to a full disk, a closed descriptor: the environment, not matcalc
        _silence_stdout()
        _error(f"error: cannot write the output: {exc.strerror or exc}")
        return 1


def _run(args: argparse.Namespace) -> int:
    """One command under the --time-limit/--memory-limit budget, its errors reported with their exit codes."""
    try:
        with _limits_of(args):
            source = read_expr(args.expr, sys.stdin)
            return COMMANDS[args.command](args, source, sys.stdout)
    except OSError:  # writing failed: main() says so
        raise
    except MatcalcError as exc:
        return _fail(args, 1, "error", exc, f"error: {cli_message(str(exc))}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in matcalc, not in the input
        if os.environ.get("MATCALC_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        return _fail(args, 3, "internal error", exc, f"internal error: {type(exc).__name__}: {exc}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
