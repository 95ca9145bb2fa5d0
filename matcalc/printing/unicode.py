"""The Unicode printer: the notation of the source texts (ᵀ, ⊙, ⊘, ·, 𝟙, ‖x‖, A⁻¹, x²)."""

from __future__ import annotations

from .. import nodes as N
from .. import ops
from .base import ATOM, POST, POW
from .text import TextPrinter

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


class UnicodePrinter(TextPrinter):
    """Math notation for reading; not meant to be parsed back (use the text printer for that)."""

    transpose_mark = "ᵀ"

    def _print_Pi(self, n):
        return "π", ATOM
    hadamard_op = " ⊙ "
    elemdiv_op = " ⊘ "

    def mul_sep(self, left: str, right: str) -> str:
        return " "

    def _print_Commutation(self, n):
        return f"K({n.args[0]},{n.args[1]})", ATOM

    def _print_Ones(self, n):
        return ("𝟙ᵀ", POST) if n.shape[0] == 1 else ("𝟙", ATOM)

    def _print_Zeros(self, n):
        return ("0ᵀ", POST) if n.shape[0] == 1 else ("0", ATOM)

    def _small_int(self, e):
        return isinstance(e, N.Number) and e.value.denominator == 1 and abs(e.value) < 100

    def _print_Power(self, n):
        base, e = n.args
        if self._small_int(e):
            level = POST + 1 if isinstance(base, N.Transpose) else POST  # (Xᵀ)², not Xᵀ²
            return self.sub(base, level) + str(e.value.numerator).translate(_SUPERSCRIPT), POW
        return super()._print_Power(n)

    def _print_ElemPower(self, n):
        base, e = n.args
        if self._small_int(e):
            return self.sub(base, POST) + "⊙" + str(e.value.numerator).translate(_SUPERSCRIPT), POW
        return super()._print_ElemPower(n)

    def _print_Transpose(self, n):
        if isinstance(n.args[0], N.Inv):
            return self.sub(n.args[0].args[0], POST) + "⁻ᵀ", POW
        return super()._print_Transpose(n)

    def _print_Call(self, n):
        """A call: its record's Unicode form (``A⁻¹``, ``‖x‖``), else its text form."""
        record = n.record
        return record.unicode(self, n) if record.unicode else super()._print_Call(n)

    def _print_Apply(self, n):
        return self.call(ops.ELEMENTWISE[n.function].unicode, n.args[1])

    def _print_Differential(self, n):
        return "d" + n.symbol.name, ATOM
