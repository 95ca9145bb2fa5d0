"""The text printer: the input language, in ASCII, so that ``parse(to_text(e)) == e``."""

from __future__ import annotations

from .. import nodes as N
from ..shapes import Dim
from .base import ADD, ATOM, DIV, DOT, EDIV, HAD, MUL, NEG, POST, POW, Printer, fraction_text, stacked_rows

#: node types that a product's factor puts in parentheses whatever their precedence
MISREADABLE_IN_PRODUCT = (N.Hadamard, N.ElemDiv, N.Div, N.Dot)

#: The row-wise nodes by the name of their call: the transpose of one of a transpose is its axis=0 form.
AXIS_NODES = {N.SoftmaxRows: "softmax", N.LogSumExpRows: "logsumexp", N.MaxRows: "max",
              N.MaxRowsMask: "maxmask"}


class TextPrinter(Printer):
    """Prints a node in the matcalc input language (ASCII operators, juxtaposition for products)."""

    transpose_mark = "'"
    hadamard_op = " .* "
    elemdiv_op = " ./ "
    elempow_op = ".^"

    def __init__(self, explicit_sizes: bool = False):
        # With explicit_sizes, constants whose size the text would otherwise leave to inference are
        # printed with it (eye(n), ones(1, n)), so that the text parses back to the very same node.
        self.explicit_sizes = explicit_sizes

    # --- leaves --------------------------------------------------------------------------------
    def _print_Symbol(self, n):
        return n.name, ATOM

    def _print_Differential(self, n):
        return "d" + n.symbol.name, ATOM

    def _print_Number(self, n):
        return fraction_text(n.value)

    def _print_Pi(self, n):
        return "pi", ATOM

    def _print_Identity(self, n):
        if self.explicit_sizes and isinstance(n.size, int | Dim):
            return f"eye({n.size})", ATOM
        return "I", ATOM

    def _print_Commutation(self, n):
        return f"commutation({n.args[0]}, {n.args[1]})", ATOM

    def _shape_args(self, shape):
        if shape[1] == 1:
            return str(shape[0])
        return f"{shape[0]}, {shape[1]}"

    def _print_Ones(self, n):
        if n.shape[0] == 1 and not self.explicit_sizes:  # a row of ones is the transpose of a column
            return f"ones({n.shape[1]}){self.transpose_mark}", POST
        return f"ones({self._shape_args(n.shape)})", ATOM

    def _print_Zeros(self, n):
        if n.shape[0] == 1 and not self.explicit_sizes:
            return f"zeros({n.shape[1]}){self.transpose_mark}", POST
        return f"zeros({self._shape_args(n.shape)})", ATOM

    def _print_Fill(self, n):
        kind = "vector" if n.shape[1] == 1 else "matrix"
        return f"{kind}({self.doprint(n.value)})", ATOM

    # --- operators -----------------------------------------------------------------------------
    def _chain_head(self, n, level: int) -> str:
        """The first operand of a chain; a chain of the same kind there is parenthesised, since the parser
        reads ``a + b + c`` as one flat sum and ``(a + b) + c`` as a sum inside a sum."""
        head = n.args[0]
        return self.sub(head, level + 1 if type(head) is type(n) else level)

    def _print_Add(self, n):
        rows = stacked_rows(n)
        if rows is not None:  # the Jacobian of a vector literal: its rows stacked, [r₁; r₂; …]
            return "[" + "; ".join(self.doprint(r) for r in rows) + "]", ATOM
        parts = [self._chain_head(n, ADD)]
        for t in n.args[1:]:
            if isinstance(t, N.Neg):
                parts.append(" - " + self.sub(t.args[0], MUL))
            else:
                parts.append(" + " + self.sub(t, MUL))
        return "".join(parts), ADD

    def _print_Neg(self, n):
        x = n.args[0]
        if isinstance(x, N.Number):  # keep Neg(2) distinct from the number -2
            return "-(" + self.doprint(x) + ")", NEG
        return "-" + self.sub(x, NEG), NEG

    def _juxtaposable(self, left: str, right: str) -> bool:
        if not right or right[0] in "-+|‖" or right.startswith("−"):
            return False
        return not (left[-1:].isdigit() and (right[0].isdigit() or right[0] == "."))

    def mul_sep(self, left: str, right: str) -> str:
        return " " if self._juxtaposable(left, right) else " * "

    def factor(self, f, level: int, head: bool = False) -> str:
        """A factor of a matrix product. Element-wise products and quotients, quotients and dot products
        are always parenthesised there (``Xᵀ (y ⊙ s)``, ``(2 / N) Xᵀ r``, ``(x · y) x``), so no reader needs
        to know that the grammar binds them tighter than juxtaposition; so is a factor that would start
        with a sign (``2 (-y)``, never ``2 ⋅ -y``)."""
        if isinstance(f, MISREADABLE_IN_PRODUCT):
            text, prec = self.print(f)
            return text if prec == ATOM else self.paren(text)  # dot(x, y) is a call already
        text = self.sub(f, level)
        return self.paren(text) if text[:1] in "-−" and not head else text

    def _print_MatMul(self, n):
        first = n.args[0]
        text = self.factor(first, MUL + 1 if type(first) is type(n) else MUL, head=True)
        for f in n.args[1:]:
            right = self.factor(f, HAD)
            text += self.mul_sep(text, right) + right
        return text, MUL

    def _print_Div(self, n):
        return f"{self.sub(n.args[0], DIV)} / {self.sub(n.args[1], DOT)}", DIV

    def _print_Hadamard(self, n):
        return self.hadamard_op.join(
            [self._chain_head(n, HAD)] + [self.sub(f, EDIV) for f in n.args[1:]]), HAD

    def _print_ElemDiv(self, n):
        return f"{self.sub(n.args[0], EDIV)}{self.elemdiv_op}{self.sub(n.args[1], DIV)}", EDIV

    def exponent(self, e) -> str:
        if isinstance(e, N.Number) and e.value < 0:
            text, prec = self.print(e)
            return text if prec >= NEG else self.paren(text)
        return self.sub(e, POW)

    def _print_Power(self, n):
        return f"{self.sub(n.args[0], POST)}^{self.exponent(n.args[1])}", POW

    def _print_ElemPower(self, n):
        return f"{self.sub(n.args[0], POST)}{self.elempow_op}{self.exponent(n.args[1])}", POW

    def _print_Transpose(self, n):
        x = n.args[0]
        if type(x) in AXIS_NODES and isinstance(x.args[0], N.Transpose) and 1 not in x.args[0].args[0].shape:
            return self.axis_call(AXIS_NODES[type(x)], x.args[0].args[0], 0)  # softmax(X, axis=0)
        return self.sub(x, POST) + self.transpose_mark, POST

    # --- functions -----------------------------------------------------------------------------
    def call(self, name, *args):
        return f"{name}({', '.join(self.doprint(a) for a in args)})", ATOM

    def _print_Apply(self, n):
        return self.call(n.function, n.args[1])

    def _print_Call(self, n):
        """A call (det, softmax ...): its record's text form, by default ``name(args)``."""
        record = n.record
        return record.text(self, n) if record.text else self.call(record.name, *n.children)

    def axis_call(self, name: str, x, axis: int):
        """``logsumexp(X, axis=1)``: a row-wise node (axis=1), or one of the transpose transposed (axis=0)."""
        return f"{name}({self.doprint(x)}, axis={axis})", ATOM

    def _print_VectorLit(self, n):
        return "[" + ", ".join(self.doprint(e) for e in n.args) + "]", ATOM

    def _print_MatrixLit(self, n):
        return "[" + "; ".join(", ".join(self.doprint(e) for e in row) for row in n.rows) + "]", ATOM
