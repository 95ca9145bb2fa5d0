"""The one exception hierarchy of matcalc.

Every error a user can cause is a :class:`MatcalcError`. It knows the input text and the 0-based
offset where the problem is, and its message shows that input with a caret under the position, so the
command line, a notebook and a traceback all point at the same character.
"""

from __future__ import annotations

__all__ = [
    "MatcalcError",
    "MatcalcSyntaxError",
    "ShapeError",
    "UnknownNameError",
    "UnknownFunctionError",
    "DeclarationError",
    "NestingError",
    "DerivativeError",
    "NoMatrixFormError",
    "CheckError",
    "ArgumentShapeError",
    "AssumptionWarning",
    "DivisionByZeroError",
]


class MatcalcError(Exception):
    """Base class of every error matcalc reports about its input."""

    def __init__(self, message: str, position: int | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.source = source

    def located(self, position: int | None, source: str | None) -> MatcalcError:
        """Attach the position and input text if they are not known yet; returns self."""
        if self.position is None:
            self.position = position
        if self.source is None:
            self.source = source
        return self

    def caret(self) -> str:
        """The input line holding the error, with a caret under the offending character."""
        if self.source is None or self.position is None:
            return ""
        pos = max(0, min(self.position, len(self.source)))
        line_start = self.source.rfind("\n", 0, pos) + 1
        line_end = self.source.find("\n", pos)
        if line_end < 0:
            line_end = len(self.source)
        line = self.source[line_start:line_end]
        column = pos - line_start
        # Show at most 70 characters around the caret so a 100 KB input stays readable.
        if len(line) > 70:
            lo = max(0, column - 35)
            hi = min(len(line), lo + 70)
            prefix = "..." if lo > 0 else ""
            suffix = "..." if hi < len(line) else ""
            column = column - lo + len(prefix)
            line = prefix + line[lo:hi] + suffix
        return f"  {line}\n  {_pad(line[:column])}^"

    def __str__(self) -> str:
        where = "" if self.position is None else f" (at position {self.position})"
        caret = self.caret()
        return f"{self.message}{where}" + (f"\n{caret}" if caret else "")


def _pad(before: str) -> str:
    """Blanks as wide on screen as ``before``: tabs stay tabs (the terminal expands both lines alike), wide
    characters (CJK, full-width) take two columns, combining marks none."""
    import unicodedata

    out = []
    for ch in before:
        if ch == "\t":
            out.append("\t")
        elif unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            out.append("  ")
        else:
            out.append(" ")
    return "".join(out)


class MatcalcSyntaxError(MatcalcError):
    """The text is not a sentence of the matcalc language; the message says what was expected."""


class ShapeError(MatcalcError):
    """Two operands whose shapes cannot be combined, or an argument of the wrong kind."""


class UnknownNameError(MatcalcError):
    """A name that matcalc does not know, such as a `wrt` variable absent from the expression."""


class UnknownFunctionError(UnknownNameError):
    """A call of a function matcalc does not know; the message suggests the nearest known one."""


class DeclarationError(MatcalcError):
    """A malformed or contradictory declaration (`where x: vector(n)`, `A="matrix(n,n)"`)."""


class NestingError(MatcalcError):
    """An expression nested deeper than matcalc handles."""


class DerivativeError(MatcalcError):
    """A derivative that matcalc cannot compute."""


class NoMatrixFormError(DerivativeError):
    """A derivative that exists but has no matrix form in the requested layout."""


class CheckError(MatcalcError):
    """A verification request that cannot be carried out (e.g. sizes that do not fit the shapes)."""


class ArgumentShapeError(ShapeError, CheckError):
    """A value given to ``evaluate`` whose shape does not fit its variable; the message names the
    argument, the shape expected (with the sizes other arguments fixed) and the shape given."""


class AssumptionWarning(UserWarning):
    """A reading of the input that users rarely intend (``Ax`` as one name, a bias ``b1`` read as a scalar).

    Not an error: the answer is computed as the input was read. The message names the assumption and
    how to override it, and shows the input with a caret like a :class:`MatcalcError`. Silence it per call
    with ``warn=False`` (``parse``, ``derive``, ``hessian``) or ``--no-warn`` on the command line, or with
    Python's ``warnings`` filters.
    """

    def __init__(self, message: str, position: int | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.source = source

    def __str__(self) -> str:
        return str(MatcalcError(self.message, self.position, self.source))
class DivisionByZeroError(MatcalcError):
    """A division by a literal zero (``1/0``, ``a ./ 0``, ``0^-1``): refused, never folded away."""
