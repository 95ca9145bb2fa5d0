"""The three target printers: NumPy, JAX and PyTorch.

Each is a :class:`~matcalc.codegen.printer.CodePrinter` that only says how its library spells things;
the product planning, temporaries and shape conventions are shared. Numerically delicate functions use
each library's stable form: ``sigmoid`` never evaluates ``exp`` of a large positive number, ``logsumexp``
and ``softmax`` shift by the maximum, ``logdet`` goes through ``slogdet``.
"""

from __future__ import annotations

from .. import nodes as N
from ..nodes import Node
from .printer import POW, UNARY, CodePrinter, statement_nodes_of
from .rewrite import WeightedGram

#: From which size on (both dimensions of X) Xᵀ diag(w) X is computed with symmetric products, for
#: weights of either sign (two products over the rows split by sign) and for nonnegative ones (one);
#: below it, the general product's lower fixed cost wins. Measured (single-threaded OpenBLAS): split /
#: general 3.5x at 10 x 10, 1.0x at 100 x 100, 0.87x at 200 x 200; one symmetric product / general
#: 1.2x at 10, 0.96x at 32, 0.7x at 100.
GRAM_FROM = {False: 128, True: 32}


class NumpyPrinter(CodePrinter):
    """NumPy (no SciPy): sigmoid as exp(-logaddexp(0, -x)), logsumexp as logaddexp.reduce."""

    module = "np"
    imports = ("import numpy as np",)
    target = "numpy"
    statement_nodes = (*statement_nodes_of("numpy"), WeightedGram)

    def _assign_WeightedGram(self, n: Node, name: str) -> list[str]:
        w, x, nonnegative = n.args
        lines = []
        weights, matrix = self.names.get(w), self.names.get(x)
        if weights is None:
            weights = self.fresh("w")
            lines.append(f"{weights} = {self.code(w)}")
        if matrix is None:
            matrix = self.fresh("x")
            lines.append(f"{matrix} = {self.code(x)}")
        rows = self.fresh("rows")
        lines += [f"if min({matrix}.shape) < {GRAM_FROM[nonnegative]}:  # small: one general product is cheaper",
                  f"    {name} = {matrix}.T @ ({weights}[:, None] * {matrix})"]
        if nonnegative:
            return lines + [
                "else:  # X' diag(w) X as B' B with B = sqrt(w) X: a symmetric product",
                f"    {rows} = np.sqrt({weights})[:, None] * {matrix}",
                f"    {name} = {rows}.T @ {rows}",
            ]
        positive, p = self.fresh("positive"), self.fresh("p")
        return lines + [
            "else:  # X' diag(w) X as P' P - Q' Q (rows with w > 0 and the others): two symmetric products",
            f"    {rows} = np.sqrt(np.abs({weights}))[:, None] * {matrix}",
            f"    {positive} = {weights} > 0",
            f"    {p} = {rows}[{positive}]",
            f"    {rows} = {rows}[~{positive}]",
            f"    {name} = {p}.T @ {p} - {rows}.T @ {rows}",
        ]


class JaxPrinter(CodePrinter):
    """JAX: jax.numpy plus jax.nn's stable sigmoid, softmax and logsumexp; jit-friendly (no Python ifs)."""

    module = "jnp"
    imports = ("import jax", "import jax.numpy as jnp")
    code_targets = ("jax", "numpy")
    target = "jax"
    statement_nodes = statement_nodes_of("jax")

    def constant(self, what: str, size: str) -> str:
        return f"jnp.{what}({size}, dtype=dtype)"


class TorchPrinter(CodePrinter):
    """PyTorch: tensors of the arguments' dtype (the generated function binds ``dtype``)."""

    module = "torch"
    imports = ("import torch",)
    code_targets = ("torch",)
    target = "torch"
    statement_nodes = statement_nodes_of("torch")

    def ew_arg(self, node: Node) -> str:
        code = self.code(node)
        if isinstance(node, N.Number | N.Pi) and node not in self.names:  # torch functions need tensors
            return f"torch.tensor({code}, dtype=dtype)"
        if node.shape == () and not N.symbols_of(node):  # sqrt(2 pi), or a temporary of it: a Python float
            return f"torch.as_tensor({code}, dtype=dtype)"
        return code

    def constant(self, what: str, size: str) -> str:
        return f"torch.{what}({size}, dtype=dtype)"

    def fill(self, size: str, value: str) -> str:
        return f"torch.full({size}, 1.0, dtype=dtype) * {value}"

    def spread(self, code: str, rows, cols) -> str:
        return f"{code}.expand({self.dim(rows)}, {self.dim(cols)})"

    def concat(self) -> str:
        return "torch.cat"

    def power(self, base: Node, exponent: Node) -> tuple[str, int]:
        if isinstance(exponent, N.Number) and exponent.value == 2:  # a square is a product (torch's pow is slower)
            return super().power(base, exponent)
        return f"{self.sub(base, POW + 1)} ** {self.sub(exponent, UNARY)}", POW

    def array_of(self, entries: list[str]) -> str:
        return "torch.stack([" + ", ".join(f"torch.as_tensor({e}, dtype=dtype)" for e in entries) + "])"

    def matrix_of(self, rows: list[list[str]]) -> str:
        return "torch.stack([" + ", ".join(self.array_of(r) for r in rows) + "])"

PRINTERS: dict[str, type[CodePrinter]] = {"numpy": NumpyPrinter, "jax": JaxPrinter, "torch": TorchPrinter}
