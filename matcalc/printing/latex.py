"""The LaTeX printer: bold vectors, \\top, \\odot, \\operatorname{diag}, for notebooks and papers."""

from __future__ import annotations

import re

from .. import nodes as N
from .. import ops
from .base import ADD, ATOM, DIV, EDIV, HAD, MUL, NEG, POST, POW, Printer, fraction_text, stacked_rows
from .text import AXIS_NODES

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
    "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
}


def latex_name(name: str, shape) -> str:
    """``W_1`` -> ``\\mathbf{W}_{1}``; vectors and matrices are bold, scalars italic, Greek as symbols.

    Distinct names give distinct LaTeX, always valid: only ``base_sub`` with one inner underscore becomes a
    subscript (``x_1`` -> ``x_{1}``, while ``x1`` stays ``x1``); a Greek letter's name becomes its symbol
    (``lambda`` -> ``\\lambda``, but ``lam`` stays ``\\mathrm{lam}``); any other underscore is escaped
    (``x__`` -> ``\\mathrm{x\\_\\_}``).
    """
    match = re.fullmatch(r"([^_]+)_([^_]+)", name)
    if match:
        base, subscript = match.groups()
    elif "_" in name:
        base, subscript = name, ""
        body = f"\\mathrm{{{name.replace('_', chr(92) + '_')}}}"
        return f"\\mathbf{{{body}}}" if shape != () else body
    else:
        base, subscript = name, ""
    if base in _GREEK:
        body = "\\" + base
    elif len(base) > 1 and not base.isupper() and not re.fullmatch(r"[A-Za-z][0-9]+", base):
        body = f"\\mathrm{{{base}}}"
    else:
        body = base
    if shape != () and base not in _GREEK:
        body = f"\\mathbf{{{body}}}"
    return body + (f"_{{{subscript}}}" if subscript else "")


def where_latex(assumptions) -> str:
    """The ``where`` line of a :class:`matcalc.assumed.Assumptions` in LaTeX (empty when nothing was assumed)."""
    return assumptions.latex(latex_name) if assumptions is not None else ""


class LatexPrinter(Printer):
    """LaTeX for ``Derivative._repr_latex_`` and ``--format latex``."""

    def paren(self, text: str) -> str:
        return f"\\left({text}\\right)"

    def _print_Symbol(self, n):
        return latex_name(n.name, n.shape), ATOM

    def _print_Differential(self, n):
        return "d" + latex_name(n.symbol.name, n.symbol.shape), ATOM

    def _print_Number(self, n):
        v = n.value
        if v.denominator != 1 and fraction_text(v)[1] == DIV:
            sign = "-" if v < 0 else ""
            return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}", (NEG if v < 0 else ATOM)
        return fraction_text(v)

    def _print_Pi(self, n):
        return "\\pi", ATOM

    def _print_Identity(self, n):
        return "I", ATOM

    def _print_Commutation(self, n):
        return f"K_{{{n.args[0]},{n.args[1]}}}", ATOM

    def _print_Ones(self, n):
        return ("\\mathbf{1}^{\\top}", POST) if n.shape[0] == 1 else ("\\mathbf{1}", ATOM)

    def _print_Zeros(self, n):
        return ("\\mathbf{0}^{\\top}", POST) if n.shape[0] == 1 else ("\\mathbf{0}", ATOM)

    def _print_Fill(self, n):
        return f"{self.sub(n.value, MUL)} \\mathbf{{1}}", MUL

    def _print_Add(self, n):
        rows = stacked_rows(n)
        if rows is not None:  # the Jacobian of a vector literal: its rows stacked
            body = " \\\\ ".join(self.doprint(r) for r in rows)
            return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}", ATOM
        parts = [self.sub(n.args[0], ADD)]
        for t in n.args[1:]:
            if isinstance(t, N.Neg):
                parts.append(" - " + self.sub(t.args[0], MUL))
            elif isinstance(t, N.MatMul) and isinstance(t.args[0], N.Number) and t.args[0].value < 0:
                positive = N.MatMul(N.Number(-t.args[0].value), *t.args[1:])
                parts.append(" - " + self.sub(positive, MUL))
            elif isinstance(t, N.Number) and t.value < 0:
                parts.append(" - " + self.sub(N.Number(-t.value), MUL))
            else:
                parts.append(" + " + self.sub(t, MUL))
        return "".join(parts), ADD

    def _print_Neg(self, n):
        return "-" + self.sub(n.args[0], NEG), NEG

    def _factor(self, f, level: int) -> str:
        """A factor of a matrix product: element-wise products and dot products in parentheses."""
        if isinstance(f, N.Hadamard | N.ElemDiv | N.Dot):
            return self.paren(self.doprint(f))
        return self.sub(f, level)

    def _print_MatMul(self, n):
        parts = [self._factor(n.args[0], MUL)]
        for f in n.args[1:]:
            t = self._factor(f, HAD)
            parts.append(self.paren(t) if t[:1] == "-" else ("\\cdot " if t[:1] in "0123456789" else "") + t)
        return " ".join(parts), MUL

    def _print_Div(self, n):
        return f"\\frac{{{self.doprint(n.args[0])}}}{{{self.doprint(n.args[1])}}}", ATOM

    def _print_Hadamard(self, n):
        return " \\odot ".join([self.sub(n.args[0], HAD)] + [self.sub(f, EDIV) for f in n.args[1:]]), HAD

    def _print_ElemDiv(self, n):
        return f"{self.sub(n.args[0], EDIV)} \\oslash {self.sub(n.args[1], DIV)}", EDIV

    def _print_Power(self, n):
        return f"{self.sub(n.args[0], POST)}^{{{self.doprint(n.args[1])}}}", POW

    def _print_ElemPower(self, n):
        return f"{self.sub(n.args[0], POST)}^{{\\circ {self.doprint(n.args[1])}}}", POW

    def _print_Transpose(self, n):
        x = n.args[0]
        if type(x) in AXIS_NODES and isinstance(x.args[0], N.Transpose) and 1 not in x.args[0].args[0].shape:
            return self.axis_call(AXIS_NODES[type(x)], x.args[0].args[0], 0)
        if isinstance(n.args[0], N.Inv):
            return f"{self.sub(n.args[0].args[0], POST)}^{{-\\top}}", POW
        return f"{self.sub(n.args[0], POST)}^{{\\top}}", POST

    def call(self, name, *args):
        inner = ", ".join(self.doprint(a) for a in args)
        return f"{name}\\left({inner}\\right)", ATOM

    def _print_Apply(self, n):
        latex = ops.ELEMENTWISE[n.function].latex  # a command (call form) or a template over {x}
        if "{x}" in latex:
            return latex.format(x=self.doprint(n.args[1])), ATOM
        return self.call(latex, n.args[1])

    def _print_Call(self, n):
        """A call (det, softmax ...): its record's LaTeX form, by default ``\\name(args)``."""
        record = n.record
        return record.latex_form(self, n) if record.latex_form else self.call(record.latex, *n.children)

    def axis_call(self, name: str, x, axis: int):
        """``\\operatorname{logsumexp}(X, \\text{axis}=1)``: as the text printer, by name and axis."""
        return f"\\operatorname{{{name}}}\\left({self.doprint(x)}, \\text{{axis}}={axis}\\right)", ATOM

    def _print_VectorLit(self, n):
        body = " \\\\ ".join(self.doprint(e) for e in n.args)
        return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}", ATOM

    def _print_MatrixLit(self, n):
        body = " \\\\ ".join(" & ".join(self.doprint(e) for e in row) for row in n.rows)
        return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}", ATOM
