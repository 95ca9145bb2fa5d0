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
