"""The shared half of the code printers: Python precedence, naming, and matrix-product planning.

A code printer turns one node into one Python expression for an array library. It follows the design
of :mod:`matcalc.printing`: one ``_print_<NodeClass>`` method per node class, returning ``(code,
precedence)``. What differs between NumPy, JAX and PyTorch (function names, dtype handling) is a small
set of hooks that the target printers override; the shape logic is written once, here.

Conventions inside generated code (the same as :mod:`matcalc.numeric` shows the user): a scalar is a
0-d value, a row or column vector is a 1-D array (its orientation is static, known from the node),
a matrix is a 2-D array. Keeping vectors 1-D is what lets ``A @ x`` stay a matrix-vector product.

Nodes listed in ``names`` (temporaries and parameters) print as their name: that is how common
subexpressions are computed once (see :mod:`matcalc.codegen.plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from .. import nodes as N
from .. import ops
from ..errors import MatcalcError
from ..nodes import Node
from ..printing.base import Printer
from ..shapes import Dim, DimLike, DimProduct, is_column, is_row
from ..visit import find_method
from .broadcast import broadcast_parts, is_ones
from .naming import Namer

# Python's operator precedence, loosest first (only the levels generated code uses).
CMP, ADD, MUL, UNARY, POW, ATOM = range(1, 7)

#: Terms of a sum written in one flat chain; longer sums are grouped in parentheses of this many terms
#: (a flat chain of 3,000 terms makes Python's compile() raise RecursionError).
ADD_CHUNK = 64

#: Nominal size of a symbolic dimension when choosing how to associate a matrix product.
NOMINAL_SIZE = 100


class CodegenError(MatcalcError):
    """An expression that cannot be turned into code (e.g. a dimension no argument fixes)."""


def _short_number(value: Fraction) -> str:
    """A huge number for a message: its first digits and how many there are (str() of it may be refused)."""
    n = abs(value.numerator) // value.denominator
    digits = int(n.bit_length() * 0.30103) + 1
    return f"of about {digits:,} digits" if digits > 30 else f"{float(value):g}"


def statement_nodes_of(target: str) -> tuple[type, ...]:
    """The call node classes a target computes with statements: those whose record has an ``assign`` rule."""
    return tuple(getattr(N, op.node) for op in ops.BY_NODE.values()
                 if (op.code_rule(target) or ("", None))[0] == "assign")


def kind_of(node: Node) -> str:
    """``scalar``, ``vector`` (row or column, 1-D in code) or ``matrix`` (2-D in code)."""
    if node.shape == ():
        return "scalar"
    if is_column(node.shape) or is_row(node.shape):
        return "vector"
    return "matrix"


def nominal(d: DimLike) -> int:
    """A size for cost estimates: exact for numbers, :data:`NOMINAL_SIZE` for each symbolic factor."""
    if isinstance(d, int):
        return d
    if isinstance(d, DimProduct):
        out = 1
        for f in d.factors:
            out *= nominal(f)
        return out
    return NOMINAL_SIZE


@dataclass
class Term:
    """A factor or partial product of a matrix chain, with what is known about how it was built.

    ``transpose_of``, ``diag_of`` and ``inv_of`` hold the code of ``X`` when the term is ``X.T``,
    ``diag(X)`` or ``inv(X)`` written directly, so a product can use ``v @ X``, a broadcast, or a solve.
    """

    code: str
    prec: int
    rows: DimLike
    cols: DimLike
    transpose_of: str | None = None
    diag_of: str | None = None
    inv_of: str | None = None
    #: the term is a vector of ones (𝟙): a product with it is a sum along an axis or a broadcast
    ones: bool = False
    #: ``transpose_of`` without its parentheses (an argument of a call: ``np.sum(A * B, 0)``)
    transposed_arg: str | None = None

    @property
    def kind(self) -> str:
        if self.rows == 1 and self.cols == 1:
            return "scalar"
        if self.rows == 1:
            return "row"
        if self.cols == 1:
            return "column"
        return "matrix"


class _TemplateFields(dict):
    """The fields of a code template: ``{x}`` and the like as given, any other ``{name}`` the target
    module's function ``name`` (``{exp}`` is ``np.exp``)."""

    def __init__(self, fn: Callable[[str], str], **fields: str):
        super().__init__(fields)
        self.fn = fn

    def __missing__(self, key: str) -> str:
        return self.fn(key)


class CodePrinter(Printer):
    """Base class of the target printers: every node class, written against a few target hooks."""

    #: How the array module is spelled in generated code, and the import lines it needs.
    module = "np"
    imports: tuple[str, ...] = ("import numpy as np",)
    #: The keys of this target's code templates in the catalogue (matcalc.ops), first match wins.
    code_targets: tuple[str, ...] = ("numpy",)
    #: This target's key in the code rules of the operation catalogue (``Function.code``/``assign``).
    target = "numpy"
    #: Node classes that this target computes with several statements (see ``_assign_<Class>`` and the
    #: catalogue's ``assign`` rules).
    statement_nodes: tuple[type, ...] = ()
    #: Python's precedence levels, for the catalogue's code rules (``p.ATOM``)
    CMP, ADD, MUL, UNARY, POW, ATOM = CMP, ADD, MUL, UNARY, POW, ATOM

    def __init__(self, names: dict[Node, str] | None = None, dims: dict[str, str] | None = None,
                 fresh: Callable[[str], str] | None = None):
        self.names: dict[Node, str] = names if names is not None else {}
        self.dims: dict[str, str] = dims if dims is not None else {}
        #: Hands out new local names for statements that need scratch variables.
        self.fresh: Callable[[str], str] = fresh or Namer().fresh
        #: The module-level definitions the printed code calls (the catalogue's preambles), in order of use.
        self.preambles: list[str] = []

    # --- entry points --------------------------------------------------------------------------
    def print(self, node: Node) -> tuple[str, int]:
        name = self.names.get(node)
        if name is not None:
            return name, ATOM
        return super().print(node)

    def define(self, node: Node, name: str) -> list[str]:
        """The statements that compute ``node`` into the variable ``name`` (its own name ignored)."""
        rule = node.record.code_rule(self.target) if isinstance(node, N.Call) else None
        if rule is not None and rule[0] == "assign":
            return rule[1](self, node, name)
        assign = find_method(self, "_assign_", type(node))
        if assign is not None:
            return assign(node, name)
        return [f"{name} = {Printer.print(self, node)[0]}"]

    def code(self, node: Node) -> str:
        return self.print(node)[0]

    # --- small helpers -------------------------------------------------------------------------
    def fn(self, name: str) -> str:
        return f"{self.module}.{name}"

    def call(self, function: str, *args: str) -> tuple[str, int]:
        return f"{function}({', '.join(args)})", ATOM

    def dim(self, d: DimLike) -> str:
        """Code for a dimension: a literal, a bound size variable, or a product of them."""
        if isinstance(d, int):
            return str(d)
        if isinstance(d, DimProduct):
            return "(" + " * ".join(self.dim(f) for f in d.factors) + ")"
        if isinstance(d, Dim) and d.name in self.dims:
            return self.dims[d.name]
        raise CodegenError(f"the size of dimension {d} is not fixed by any argument")

    def size_args(self, node: Node) -> str:
        """The size argument of ones/zeros/full: ``n`` for a vector, ``(m, n)`` for a matrix."""
        if kind_of(node) == "vector":
            return self.dim(node.shape[0] if is_column(node.shape) else node.shape[1])
        return f"({self.dim(node.shape[0])}, {self.dim(node.shape[1])})"

    def number(self, value: Fraction) -> tuple[str, int]:
        try:
            if value.denominator == 1:
                text = f"{float(value.numerator)!r}"
            else:
                try:
                    text = f"({float(value.numerator)!r} / {float(value.denominator)!r})"
                except OverflowError:  # both huge, the ratio maybe not: 10^400 / 3^800
                    text = f"{float(value)!r}"
        except OverflowError:
            raise CodegenError(f"the number {_short_number(value)} is beyond the range of a float64 "
                               "(about 1.8e308); code cannot compute with it") from None
        return text, (UNARY if value < 0 else ATOM)

    def binary(self, op: str, a: Node, b: Node, level: int = MUL) -> tuple[str, int]:
        return f"{self.sub(a, level + 1)} {op} {self.sub(b, level + 1)}", level

    def as_2d(self, node: Node) -> str:
        """A vector as the 2-D column or row it stands for (for kron); matrices unchanged."""
        code = self.sub(node, ATOM)
        if kind_of(node) != "vector":
            return code
        return f"{code}[:, None]" if is_column(node.shape) else f"{code}[None, :]"

    # --- target hooks (NumPy spellings; JAX and PyTorch override) ------------------------------
    def elementwise(self, function: str, arg: Node) -> str:
        """The catalogue's code template for this target (matcalc.ops), filled in."""
        template, preamble = ops.ELEMENTWISE[function].code_and_preamble(self.code_targets)
        if preamble is not None and preamble not in self.preambles:
            self.preambles.append(preamble)
        fields = _TemplateFields(self.fn, x=self.ew_arg(arg))
        if "{x_unary}" in template:
            fields["x_unary"] = self.sub(arg, UNARY)
        return template.format_map(fields)

    def ew_arg(self, node: Node) -> str:
        """The argument of an element-wise function (PyTorch wraps plain numbers as tensors)."""
        return self.code(node)

    def constant(self, what: str, size: str) -> str:
        """``eye``, ``ones`` or ``zeros`` of the given size argument."""
        return f"{self.fn(what)}({size})"

    def fill(self, size: str, value: str) -> str:
        return f"{self.fn('full')}({size}, {value})"

    def power(self, base: Node, exponent: Node) -> tuple[str, int]:
        if isinstance(exponent, N.Number) and exponent.value == 2:  # a square is a product, not a pow()
            b = self.sub(base, POW + 1)
            return f"{b} * {b}" if isinstance(base, N.Symbol) or base in self.names else f"{b} ** 2", MUL
        return self.call(self.fn("power"), self.code(base), self.code(exponent))

    def linalg(self, name: str) -> str:
        return f"{self.module}.linalg.{name}"

    def array_of(self, entries: list[str]) -> str:
        return f"{self.fn('array')}([{', '.join(entries)}])"

    def matrix_of(self, rows: list[list[str]]) -> str:
        return f"{self.fn('array')}([{', '.join('[' + ', '.join(r) + ']' for r in rows)}])"

    # --- calls -------------------------------------------------------------------------------------
    def _print_Call(self, n):
        """A call (det, softmax, kron ...): its record's code for this target (a statement node's code is
        its ``assign`` rule, which :meth:`define` applies)."""
        rule = n.record.code_rule(self.target)
        if rule is None or rule[0] != "code":
            raise CodegenError(f"{n.record.name} has no expression form in {self.target} code")
        return rule[1](self, n)

    # --- leaves --------------------------------------------------------------------------------
    def _print_Symbol(self, n):  # parameters are in ``names``; reaching here is a bug
        raise CodegenError(f"the variable {n.name} is not an argument of the generated function")

    def _print_Differential(self, n):
        raise CodegenError(f"a differential d{n.symbol.name} cannot be evaluated as code")

    def _print_Number(self, n):
        return self.number(n.value)

    def _print_Pi(self, n):
        return "3.141592653589793", ATOM

    def _print_Identity(self, n):
        return self.constant("eye", self.dim(n.size)), ATOM

    def _print_Commutation(self, n):
        # row i n + j of K(m, n) is row i + j m of the identity: vec(Aᵀ) = K vec(A), columns stacked
        m, k = self.dim(n.args[0]), self.dim(n.args[1])
        eye = self.constant("eye", f"{m} * {k}")
        return f"{eye}[{self.fn('arange')}({m} * {k}).reshape({k}, {m}).T.reshape(-1)]", ATOM

    def _print_Ones(self, n):
        return self.constant("ones", self.size_args(n)), ATOM

    def _print_Zeros(self, n):
        return self.constant("zeros", self.size_args(n)), ATOM

    def _print_Fill(self, n):
        return self.fill(self.size_args(n), self.code(n.value)), ATOM

    # --- arithmetic ----------------------------------------------------------------------------
    def _print_Add(self, n):
        if len(n.args) > ADD_CHUNK:  # Python's compiler recurses once per "+": group long sums
            chunks = [n.args[i:i + ADD_CHUNK] for i in range(0, len(n.args), ADD_CHUNK)]
            return " + ".join(f"({self._print_terms(c)})" for c in chunks), ADD
        return self._print_terms(n.args), ADD

    def _print_terms(self, terms) -> str:
        bare = self._has_full(terms)
        parts = [self.operand(terms[0], ADD, bare)]
        for t in terms[1:]:
            if isinstance(t, N.Neg) and t not in self.names:
                parts.append(f" - {self.operand(t.args[0], ADD + 1, bare)}")
            else:
                parts.append(f" + {self.operand(t, ADD + 1, bare)}")
        return "".join(parts)

    # --- implicit broadcasting -------------------------------------------------------------------
    def _has_full(self, operands) -> bool:
        """Whether an element-wise operation has an operand that is a whole matrix in code (so the
        others may be a column ``v[:, None]`` or a row and broadcast against it)."""
        for t in operands:
            if isinstance(t, N.Neg) and t not in self.names:
                t = t.args[0]
            if kind_of(t) == "matrix" and (t in self.names or broadcast_parts(t) is None):
                return True
        return False

    def operand(self, node: Node, level: int, bare: bool) -> str:
        """An operand of an element-wise operation; with ``bare``, a vector repeated over a matrix
        (``v 𝟙ᵀ``, ``𝟙 w``) as the vector, which the operation broadcasts: no m x n array is built
        (``broadcast_to`` makes a view in NumPy and torch, but XLA may materialise it)."""
        parts = broadcast_parts(node) if bare and node not in self.names else None
        if parts is None:
            return self.sub(node, level)
        vector, _, left = parts
        # The vector of 𝟙 𝟙ᵀ C is a new node 𝟙ᵀ C, which may be a temporary the plan computes later (it
        # only knows this node's children): it is printed from its factors, never by its name.
        text, prec = self.print(vector) if len(node.args) == 2 else Printer.print(self, vector)
        if left:
            return f"{text if prec >= ATOM else self.paren(text)}[:, None]"
        return text if prec >= level else self.paren(text)

    def _print_Neg(self, n):
        return f"-{self.sub(n.args[0], UNARY)}", UNARY

    def _print_Div(self, n):
        return self.binary("/", *n.args)

    def _print_ElemDiv(self, n):
        bare = self._has_full(n.args)
        return f"{self.operand(n.args[0], MUL + 1, bare)} / {self.operand(n.args[1], MUL + 1, bare)}", MUL

    def _print_Hadamard(self, n):
        bare = self._has_full(n.args)
        return " * ".join(self.operand(f, MUL + 1, bare) for f in n.args), MUL

    def _print_Power(self, n):
        base, exponent = n.args
        if base.shape == ():
            return self.power(base, exponent)
        return self.call(self.linalg("matrix_power"), self.code(base), str(int(exponent.value)))

    def _print_ElemPower(self, n):
        return self.power(*n.args)

    def _print_Transpose(self, n):
        x = n.args[0]
        if kind_of(x) != "matrix":  # scalars and 1-D vectors: transposing changes nothing in code
            return self.print(x)
        return f"{self.sub(x, ATOM)}.T", ATOM

    # --- functions -----------------------------------------------------------------------------
    def _print_Apply(self, n):
        return self.elementwise(n.function, n.args[1]), ATOM

    def _print_VectorLit(self, n):
        return self.array_of([self.code(e) for e in n.args]), ATOM

    def _print_MatrixLit(self, n):
        return self.matrix_of([[self.code(e) for e in row] for row in n.rows]), ATOM

    def _assign_Adjugate(self, n: Node, name: str) -> list[str]:
        """adj(X) from the SVD (see :mod:`matcalc.codegen.adjugate`): defined at singular X too."""
        u, s, vt, p = (self.fresh(k) for k in ("u", "s", "vt", "p"))
        others = f"{self.fn('prod')}({self.concat()}([{s}[:i], {s}[i + 1:]]))"
        det = self.linalg("det")
        return [f"{u}, {s}, {vt} = {self.linalg('svd')}({self.code(n.args[0])})",
                f"{p} = {self.fn('stack')}([{others} for i in range({s}.shape[0])])",
                f"{name} = {det}({u}) * {det}({vt}) * (({vt}.T * {p}) @ {u}.T)"]

    def concat(self) -> str:
        return self.fn("concatenate")

    # --- matrix products -------------------------------------------------------------------------
    def _print_MatMul(self, n):
        scalars: list[Node] = []
        factors: list[Node] = []
        self._flatten(n, scalars, factors)
        parts = [self.print(s) for s in scalars]
        if factors:
            product = self._chain([self._term(f) for f in factors])
            parts.append((product.code, product.prec))
        elif n.shape != ():  # only identities were left: the product is the identity
            parts.append((self.constant("eye", self.dim(n.shape[0])), ATOM))
        if not parts:
            return "1.0", ATOM
        if len(parts) == 1:
            return parts[0]
        return " * ".join(c if p > MUL else f"({c})" for c, p in parts), MUL

    def _flatten(self, n: Node, scalars: list[Node], factors: list[Node]) -> None:
        """Scalar factors and matrix factors of a product, nested products opened, identities dropped."""
        for f in n.args:
            if f.shape == ():
                scalars.append(f)
            elif isinstance(f, N.MatMul) and f not in self.names:
                self._flatten(f, scalars, factors)
            elif isinstance(f, N.Identity) and f not in self.names:
                continue
            else:
                factors.append(f)

    def _term(self, f: Node) -> Term:
        rows, cols = f.shape
        term = Term(*self.print(f), rows, cols)
        if f in self.names:
            return term
        if isinstance(f, N.Transpose) and kind_of(f) == "matrix":
            term.transpose_of = self.sub(f.args[0], ATOM)
            term.transposed_arg = self.code(f.args[0])
        elif isinstance(f, N.DiagMat):
            term.diag_of = self.sub(f.args[0], ATOM)
        elif isinstance(f, N.Inv):
            term.inv_of = self.sub(f.args[0], ATOM)
        elif is_ones(f):  # 𝟙, or 𝟙ᵀ (the same 1-D array in code)
            term.ones = True
        return term

    def _chain(self, terms: list[Term]) -> Term:
        """The product of ``terms``, associated to minimise work (so vectors stay vectors)."""
        k = len(terms)
        if k == 1:
            return terms[0]
        sizes = [nominal(terms[0].rows)] + [nominal(t.cols) for t in terms]
        diag = [t.diag_of is not None for t in terms]
        cost = [[0] * k for _ in range(k)]
        split = [[0] * k for _ in range(k)]
        for length in range(2, k + 1):
            for i in range(k - length + 1):
                j = i + length - 1
                best = None
                for s in range(i, j):
                    step = sizes[i] * sizes[j + 1]
                    if not ((s == i and diag[i]) or (s + 1 == j and diag[j])):
                        step *= sizes[s + 1]
                    c = cost[i][s] + cost[s + 1][j] + step
                    if best is None or c < best:
                        best, split[i][j] = c, s
                cost[i][j] = best
        return self._build(terms, split, 0, k - 1)

    def _build(self, terms: list[Term], split, i: int, j: int) -> Term:
        if i == j:
            return terms[i]
        s = split[i][j]
        return self.product(self._build(terms, split, i, s), self._build(terms, split, s + 1, j))

    def ones_product(self, a: Term, b: Term) -> Term | None:
        """A product with a vector of ones, without the ones (issue 15: the batch operations build them):
        ``X 𝟙`` and ``𝟙ᵀ X`` are sums along an axis, ``c 𝟙ᵀ`` and ``𝟙 r`` broadcasts (views, not copies)."""
        rows, cols, ka, kb = a.rows, b.cols, a.kind, b.kind
        if b.ones and kb == "column" and ka in ("matrix", "row"):  # X 𝟙: the row sums (Yᵀ 𝟙: Y's column sums)
            if a.transpose_of is not None:
                return Term(f"{self.fn('sum')}({a.transposed_arg}, 0)", ATOM, rows, cols)
            return Term(f"{self.fn('sum')}({a.code}, {1 if ka == 'matrix' else 0})", ATOM, rows, cols)
        if a.ones and ka == "row" and kb in ("matrix", "column"):  # 𝟙ᵀ X: the column sums (𝟙ᵀ Yᵀ: Y's row sums)
            if b.transpose_of is not None:
                return Term(f"{self.fn('sum')}({b.transposed_arg}, 1)", ATOM, rows, cols)
            return Term(f"{self.fn('sum')}({b.code}, 0)", ATOM, rows, cols)
        if b.ones and ka == "column" and kb == "row":  # c 𝟙ᵀ: c repeated over the columns
            return Term(self.spread(f"{self.paren_term(a, ATOM)}[:, None]", rows, cols), ATOM, rows, cols)
        if a.ones and ka == "column" and kb == "row":  # 𝟙 r: r repeated over the rows
            return Term(self.spread(self.paren_term(b, ATOM), rows, cols), ATOM, rows, cols)
        return None

    def spread(self, code: str, rows: DimLike, cols: DimLike) -> str:
        """``code`` (a row, or a column as ``c[:, None]``) broadcast to a rows x cols matrix, as a view."""
        return f"{self.fn('broadcast_to')}({code}, ({self.dim(rows)}, {self.dim(cols)}))"

    def paren_term(self, t: Term, level: int = MUL + 1) -> str:
        return t.code if t.prec >= level else f"({t.code})"

    def product(self, a: Term, b: Term) -> Term:
        """``a @ b`` for two terms, written the cheap way for their kinds."""
        rows, cols = a.rows, b.cols
        ka, kb = a.kind, b.kind
        la, lb = self.paren_term(a), self.paren_term(b)
        if ka == "scalar" or kb == "scalar":
            return Term(f"{la} * {lb}", MUL, rows, cols)
        if a.diag_of is not None and b.diag_of is not None:
            return Term(f"{self.fn('diag')}({a.diag_of} * {b.diag_of})", ATOM, rows, cols,
                        diag_of=f"({a.diag_of} * {b.diag_of})")
        if a.diag_of is not None:  # diag(v) M scales the rows of M
            left = a.diag_of if kb == "column" else f"{a.diag_of}[:, None]"
            return Term(f"{left} * {lb}", MUL, rows, cols)
        if b.diag_of is not None:  # M diag(v) scales the columns of M
            return Term(f"{la} * {b.diag_of}", MUL, rows, cols)
        with_ones = self.ones_product(a, b)
        if with_ones is not None:
            return with_ones
        if ka == "column" and kb == "row":
            return Term(f"{self.fn('outer')}({a.code}, {b.code})", ATOM, rows, cols)
        if ka == "matrix" and kb == "column":
            if a.transpose_of is not None:  # Xᵀ v = (vᵀ X)ᵀ: no transposed copy of X
                return Term(f"{lb} @ {a.transpose_of}", MUL, rows, cols)
            if a.inv_of is not None:
                return Term(f"{self.linalg('solve')}({a.inv_of}, {b.code})", ATOM, rows, cols)
        if ka == "row" and kb == "matrix":
            if b.transpose_of is not None:  # vᵀ Xᵀ = (X v)ᵀ
                return Term(f"{b.transpose_of} @ {la}", MUL, rows, cols)
            if b.inv_of is not None:  # vᵀ X⁻¹ = (X⁻ᵀ v)ᵀ
                return Term(f"{self.linalg('solve')}({b.inv_of}.T, {a.code})", ATOM, rows, cols)
        if ka == "matrix" and kb == "matrix" and a.inv_of is not None:
            return Term(f"{self.linalg('solve')}({a.inv_of}, {b.code})", ATOM, rows, cols)
        return Term(f"{la} @ {lb}", MUL, rows, cols)
