"""The printer machinery shared by every target: dispatch on the node class and minimal parentheses.

A printer method ``_print_<NodeClass>(node)`` returns ``(text, precedence)``; :meth:`Printer.sub` prints a
child and parenthesises it when it binds more loosely than its position needs. The precedence levels
mirror ``grammar/matcalc.lark`` so that the text printer's output parses back to the same tree.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

from ..budget import checkpoint
from ..nodes import Node
from ..visit import find_method

ADD, MUL, HAD, EDIV, DIV, DOT, NEG, POW, POST, ATOM = range(1, 11)


#: The longest number printed, in digits (Python itself refuses to print integers over 4,300 digits).
PRINT_DIGITS = 4000


def _check_digits(value: Fraction) -> None:
    """Refuse to print a number longer than :data:`PRINT_DIGITS` (a product of long literals can build one;
    powers of numbers stay symbolic past ``matcalc.limits(digits=...)``)."""
    from ..budget import BudgetError

    bits = max(abs(value.numerator).bit_length(), value.denominator.bit_length())
    if bits * 0.30103 > PRINT_DIGITS:
        raise BudgetError(f"a number of about {int(bits * 0.30103):,} digits is longer than the {PRINT_DIGITS:,} "
                          "digits matcalc prints", "digits")


def fraction_text(value: Fraction) -> tuple[str, int]:
    """An exact rational as a decimal when one exists (0.5, 0.001), else as p/q."""
    _check_digits(value)
    if value.denominator == 1:
        return str(value.numerator), (ATOM if value >= 0 else NEG)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den == 1:
        with localcontext() as ctx:
            ctx.prec = 200
            text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
        if len(text) <= 24:
            return text, (ATOM if value >= 0 else NEG)
    return f"{value.numerator}/{value.denominator}", DIV


class Printer:
    """Base class: subclasses define ``_print_<Class>`` methods and the spellings they use.

    ``aliases`` maps the named parts of an expression to their names (see :mod:`.names`); ``taken`` holds
    the names of the printed expression's variables, which a dimension's name must not be mistaken for.
    """

    aliases: dict = {}
    taken: frozenset = frozenset()
    #: the precedence levels, for the printed-form rules of the operation catalogue (``p.ATOM``)
    ADD, MUL, HAD, EDIV, DIV, DOT, NEG, POW, POST, ATOM = ADD, MUL, HAD, EDIV, DIV, DOT, NEG, POW, POST, ATOM

    def doprint(self, node: Node) -> str:
        return self.print(node)[0]

    def print(self, node: Node) -> tuple[str, int]:
        checkpoint()
        alias = self.aliases.get(node)
        if alias is not None:
            return alias, ATOM
        method = find_method(self, "_print_", type(node))
        if method is None:  # pragma: no cover - every node class has a method
            raise NotImplementedError(f"{type(self).__name__} cannot print {type(node).__name__}")
        return method(node)

    def size_name(self, x: Node) -> str | None:
        """``numel(x)`` by the names of its dimensions (``n``, ``m n``), unless a variable has that name."""
        dims = [d for d in x.shape if d != 1]
        names = [str(d) for d in dims]
        if not names or any(n in self.taken for n in names) or not all(n.isidentifier() or n.isdigit()
                                                                         for n in names):
            return None
        return " ".join(names)

    def sub(self, node: Node, level: int) -> str:
        text, prec = self.print(node)
        return self.paren(text) if prec < level else text

    def paren(self, text: str) -> str:
        return f"({text})"


def stacked_rows(n: Node) -> list[Node] | None:
    """The rows ``[r₁; r₂; …]`` of a matrix written as the sum ``Σ eᵢ rᵢ`` over unit vectors ``eᵢ`` (the
    Jacobian of a vector literal, one gradient per row), with a row of zeros for a missing ``i``; None
    for any other node. The printers write such a sum as the stacked literal, which parses back to it."""
    from .. import nodes as N

    if not isinstance(n, N.Add) or len(n.shape) != 2 or n.shape[0] == 1:
        return None
    rows: dict[int, Node] = {}
    size = None
    for t in n.args:
        found = _unit_row(t)
        if found is None or found[0] in rows or (size is not None and found[1] != size):
            return None
        i, size, row = found
        rows[i] = row
    width = n.shape[1]
    return [rows.get(i, N.Zeros((1, width))) for i in range(size)]


def _unit_row(t: Node):
    """``(i, k, r)`` when ``t`` is ``c eᵢ r`` or ``(c eᵢ r) / s`` with ``eᵢ`` the i-th of ``k`` unit vectors
    (a literal of 0s and one 1) and ``r`` a row; the row returned carries ``c`` and ``s``."""
    from .. import nodes as N

    sign, divisor = 1, None
    if isinstance(t, N.Neg):
        sign, t = -1, t.args[0]
    if isinstance(t, N.Div):
        t, divisor = t.args
    if not isinstance(t, N.MatMul):
        return None
    factors = list(t.args)
    coeff = None
    if isinstance(factors[0], N.Number):
        coeff = factors.pop(0)
    if len(factors) < 2 or not isinstance(factors[0], N.VectorLit):
        return None
    unit = factors[0].args
    ones = [i for i, e in enumerate(unit) if isinstance(e, N.Number) and e.value == 1]
    if len(ones) != 1 or not all(isinstance(e, N.Number) and e.value in (0, 1) for e in unit):
        return None
    rest = factors[1:]
    row = rest[0] if len(rest) == 1 else N.MatMul(*rest)
    if row.shape == () or row.shape[0] != 1:
        return None
    if coeff is not None:
        row = N.MatMul(coeff, *(row.args if isinstance(row, N.MatMul) else (row,)))
    if divisor is not None:
        row = N.Div(row, divisor)
    return ones[0], len(unit), (N.Neg(row) if sign < 0 else row)
