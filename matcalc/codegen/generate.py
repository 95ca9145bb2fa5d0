"""Assemble one standalone Python function from a :class:`~matcalc.diff.derivative.Derivative`.

The function takes the variables of the original expression by name, checks their shapes (binding the
symbolic dimensions from them), computes every shared subexpression once into a temporary, and returns
the derivative (or ``(value, derivative)``) in :mod:`matcalc.numeric`'s conventions: scalars 0-d,
vectors 1-D, matrices 2-D.
"""

from __future__ import annotations

import linecache
from typing import Any

from ..budget import budgeted
from ..diff.tensor import TensorDerivative
from ..nodes import Node, Symbol, symbols_of
from ..printing import to_text
from ..shapes import Dim, is_column, is_row
from .adjugate import Adjugate, with_adjugates
from .naming import Namer, valid_identifier
from .plan import plan_temporaries
from .printer import CodegenError, CodePrinter, kind_of
from .products import share_products
from .rewrite import for_evaluation
from .targets import PRINTERS

ALIASES = {"np": "numpy", "pytorch": "torch", "jnp": "jax"}


def _shape_text(node: Node) -> str:
    """How an argument or result is laid out in code, for the docstring."""
    kind = kind_of(node)
    if kind == "scalar":
        return "scalar"
    if kind == "vector":
        length = node.shape[0] if is_column(node.shape) else node.shape[1]
        what = "column" if is_column(node.shape) else "row"
        return f"{what} vector of length {length} (1-D array of shape ({length},))"
    return f"{node.shape[0]} x {node.shape[1]} matrix (2-D array)"


def _tuple_text(items) -> str:
    """``(n,)``, ``(m, n)`` or ``()``: a Python tuple display of ``items``."""
    items = [str(i) for i in items]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


#: Past this many nodes in its printed tree, the docstring does not write the formula out (the code
#: computes each shared subexpression once; the printed formula repeats it at every use).
DOC_FORMULA_NODES = 2000


def _formula(expr: Node) -> str:
    from ..printing import tree_size

    size = tree_size(expr)
    if size > DOC_FORMULA_NODES:
        return f"(a formula of {size:,} nodes once its shared parts are written out: see the code below)"
    return to_text(expr)


def _doc_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


class _Builder:
    """The pieces of one generated function; :meth:`source` puts them together."""

    def __init__(self, derivative, target: str, value_and_grad: bool, name: str | None):
        target = ALIASES.get(target, target)
        if target not in PRINTERS:
            raise CodegenError(f"unknown code generation target {target!r}; the targets are "
                               f"{', '.join(PRINTERS)}")
        if derivative.expr is None:
            raise CodegenError(f"{derivative!r} has no Kronecker (vec) form to generate code from; "
                               "use its .evaluate()")
        self.target = target
        self.d = derivative
        self.value_and_grad = value_and_grad
        self.namer = Namer()
        self.params: list[Symbol] = list(symbols_of(derivative.function))
        for s in symbols_of(derivative.expr):
            if s not in self.params:
                self.params.append(s)
        names: dict[Node, str] = {s: self.namer.take(s.name) for s in self.params}
        self.dims: dict[str, str] = {}
        for s in self.params:
            for size in self._code_axes(s):
                if isinstance(size, Dim) and size.name not in self.dims:
                    self.dims[size.name] = self.namer.take(size.name, "_dim")
        self.roots = share_products([for_evaluation(with_adjugates(r), numpy=target == "numpy") for r in
                                     ([derivative.function] if value_and_grad else []) + [derivative.expr]])
        cls = PRINTERS[target]
        self.temps = plan_temporaries(self.roots, cls.statement_nodes + (Adjugate,))
        for t in self.temps:
            if t not in names:
                names[t] = self.namer.fresh("t")
        self.printer: CodePrinter = cls(names, self.dims, self.namer.fresh)
        self.names = names
        if name is None:
            what = "hessian" if derivative.order == 2 else "derivative"
            name = f"{'value_and_' if value_and_grad else ''}{what}_{names[derivative.variable]}"
        elif not valid_identifier(name):
            raise CodegenError(f"the function name {name!r} is not a Python identifier")
        self.name = name

    @staticmethod
    def _code_axes(s: Symbol) -> tuple:
        """The sizes along the axes the argument has in code (1-D for vectors)."""
        if s.shape == ():
            return ()
        if is_column(s.shape):
            return (s.shape[0],)
        if is_row(s.shape):
            return (s.shape[1],)
        return s.shape

    # --- the parts of the function -------------------------------------------------------------
    def docstring(self) -> list[str]:
        d = self.d
        order = "second derivative (Hessian)" if d.order == 2 else "derivative"
        lines = [
            f"The {order} of {_formula(d.function)} with respect to {d.variable.name} ({d.layout} layout).",
            "",
            f"    {'d2/d' + d.variable.name + '2' if d.order == 2 else 'd/d' + d.variable.name} = {_formula(d.expr)}",
            "",
            "Arguments:",
        ]
        for s in self.params:
            renamed = "" if self.names[s] == s.name else f" (the variable {s.name})"
            lines.append(f"    {self.names[s]}{renamed}: {_shape_text(s)}")
        if any(self.names[s] != s.name for s in self.params):
            lines += ["", "Variables whose names are Python keywords or builtins, or names this code uses itself,",
                      "are renamed here; the function matcalc's compile() returns takes them by their own names."]
        if self.value_and_grad:
            lines += ["", "Returns (value, derivative):", f"    value: {_shape_text(d.function)}",
                      f"    derivative: {_shape_text(d.expr)}"]
        else:
            lines += ["", f"Returns the derivative: {_shape_text(d.expr)}"]
        lines += ["", "Generated by matcalc."]
        return ['"""' + _doc_safe(lines[0])] + [_doc_safe(x) for x in lines[1:]] + ['"""']

    def conversions(self) -> list[str]:
        out: list[str] = []
        arrays = [s for s in self.params if s.shape != ()]
        scalars = [s for s in self.params if s.shape == ()]
        if self.target == "numpy":
            out += [f"{self.names[s]} = np.asarray({self.names[s]}, float)" for s in arrays]  # float: float64, and fast
            out += [f"{self.names[s]} = float({self.names[s]})" for s in scalars]
        elif self.target == "jax":
            out += [f"{self.names[s]} = jnp.asarray({self.names[s]})" for s in self.params]
            # constants (ones, eye) take the arguments' dtype: float32 inputs stay float32 under x64
            out.append("dtype = jnp.result_type(" + ", ".join([self.names[s] for s in arrays] + ["float"]) + ")")
        else:
            out += [f"{self.names[s]} = torch.as_tensor({self.names[s]})" for s in arrays]
            if arrays:
                out.append(f"dtype = {self.names[arrays[0]]}.dtype")
            elif scalars:  # plain Python numbers compute in float64, as NumPy does
                first = self.names[scalars[0]]
                out.append(f"dtype = {first}.dtype if torch.is_tensor({first}) else torch.float64")
            else:
                out.append("dtype = torch.float64")
            out += [f"{self.names[s]} = torch.as_tensor({self.names[s]}, dtype=dtype)" for s in scalars]
        return out

    def shape_checks(self) -> list[str]:
        """One unpacking statement binds every size and checks every argument's number of axes; one
        comparison checks the sizes that recur. On the fast path that is two statements (tens of
        nanoseconds: per-argument asserts were a third of a small gradient's running time)."""
        checked = [s for s in self.params if self._code_axes(s) or self.target != "numpy"]
        if not checked:  # (NumPy: float() in the conversions already refused anything but a single number)
            return []
        targets, conditions = [], []
        bound: set[str] = set()
        for s in checked:
            names = []
            for size in self._code_axes(s):
                if isinstance(size, Dim) and size.name not in bound:
                    bound.add(size.name)
                    names.append(self.dims[size.name])
                    continue
                other = self.namer.fresh(f"{self.names[s]}_size")
                names.append(other)
                conditions.append(f"{other} != {self.printer.dim(size)}")
            targets.append(_tuple_text(names))
        sources = [f"{self.names[s]}.shape" for s in checked]
        # The message is built from string literals (repr) and str() of the shapes: no user text is ever
        # inside an f-string or format string of the generated code.
        expected = ", ".join(f"{s.name} {_tuple_text(self._code_axes(s))}" for s in checked)
        got = " + ', ' + ".join(f"{s.name + ' '!r} + str(tuple({self.names[s]}.shape))" for s in checked)
        out = ["try:  # bind the sizes; a wrong number of axes or a size that differs is refused",
               f"    {', '.join(targets)} = {', '.join(sources)}"]
        if conditions:
            out += [f"    if {' or '.join(conditions)}:", "        raise ValueError"]
        prefix = f"{self.name}: expected shapes {expected}; got "
        out += ["except ValueError:", f"    raise ValueError({prefix!r} + {got}) from None"]
        return out

    def body(self) -> list[str]:
        out: list[str] = []
        for t in self.temps:
            out += self.printer.define(t, self.names[t])
        results = [self._result(r) for r in self.roots]
        if isinstance(self.d, TensorDerivative):  # a tensor: the vec-by-vec matrix, reshaped column-major
            results[-1] = self._tensor_result(results[-1])
            if getattr(self.d, "symmetrised", False):  # the symmetric convention, as evaluate() has it
                tensor = self.namer.fresh("tensor")
                out.append(f"{tensor} = {results[-1]}")
                results[-1] = self._symmetrise(tensor)
        if self.value_and_grad:
            out += [f"value = {results[0]}", f"grad = {results[1]}", "return value, grad"]
        else:
            out.append(f"return {results[0]}")
        return out

    def _result(self, root: Node) -> str:
        code = self.printer.code(root)
        if self.target == "numpy" and root.shape == ():
            return f"float({code})"
        return code

    def _tensor_result(self, code: str) -> str:
        sizes = [self.printer.dim(a) for a in self.d.shape]
        axes = _tuple_text(sizes)
        if self.target == "torch":  # torch has no column-major reshape: reverse, reshape, permute back
            rev = ", ".join(str(i) for i in reversed(range(len(self.d.shape))))
            rev_axes = _tuple_text(self.printer.dim(a) for a in reversed(self.d.shape))
            return f"({code}).T.reshape{rev_axes}.permute({rev})"
        lib = "np" if self.target == "numpy" else "jnp"
        return f"{lib}.reshape({code}, {axes}, order='F')"

    def _symmetrise(self, tensor: str) -> str:
        """Entry (k, l) of a derivative with respect to a symmetric matrix is the derivative along
        ``(E_kl + E_lk)/2``: the mean of the unconstrained entries (k, l) and (l, k), the last two axes."""
        if self.target == "torch":
            return f"0.5 * ({tensor} + {tensor}.transpose(-1, -2))"
        lib = "np" if self.target == "numpy" else "jnp"
        return f"0.5 * ({tensor} + {lib}.swapaxes({tensor}, -1, -2))"

    def source(self) -> str:
        args = ", ".join(self.names[s] for s in self.params)
        inner = self.docstring() + self.conversions() + self.shape_checks() + self.body()
        lines = list(self.printer.imports)
        for preamble in self.printer.preambles:  # helpers the library lacks (NumPy's erf), once each
            lines += ["", "", *preamble.rstrip("\n").split("\n")]
        lines += ["", "", f"def {self.name}({args}):"]
        lines += [("    " + line) if line else "" for line in inner]
        return "\n".join(lines) + "\n"


@budgeted("code generation")
def generate(derivative, target: str = "numpy", value_and_grad: bool = False, name: str | None = None) -> str:
    """The source of one standalone function computing ``derivative`` with NumPy, JAX or PyTorch.

    The function takes the variables of ``derivative.function`` by name (in order of first appearance),
    asserts their shapes, and returns the derivative; with ``value_and_grad=True`` it returns
    ``(value, derivative)``. ``name`` is the function's name (default ``derivative_<variable>``).
    """
    return _Builder(derivative, target, value_and_grad, name).source()


@budgeted("compile()")
def compile_numpy(derivative, value_and_grad: bool = False, name: str | None = None) -> Any:
    """The NumPy version of ``derivative`` as a callable taking the variables by name.

    The source is generated by :func:`generate` from the AST (never from user text; every name in it
    is a validated identifier) and executed in a fresh namespace that holds only NumPy. The callable
    keeps its source in ``__matcalc_source__``, and tracebacks through it show the generated lines.
    """
    import numpy

    builder = _Builder(derivative, "numpy", value_and_grad, name)
    source = builder.source()
    filename = f"<matcalc-generated {builder.name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"np": numpy}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - generated from the AST, see docstring
    function = _under_user_names(namespace[builder.name], [(s.name, builder.names[s]) for s in builder.params])
    function.__matcalc_source__ = source
    return function


def _under_user_names(function, params: list[tuple[str, str]]):
    """``function`` taking its arguments under the user's names where the source had to rename them
    (``min`` -> ``min_``, ``self`` -> ``self_``); positional calls work as before."""
    import functools
    import inspect

    if all(user == code for user, code in params):
        return function
    to_code = dict(params)

    @functools.wraps(function)
    def under_user_names(*args, **kwargs):
        return function(*args, **{to_code.get(k, k): v for k, v in kwargs.items()})

    try:
        under_user_names.__signature__ = inspect.Signature(
            [inspect.Parameter(user, inspect.Parameter.POSITIONAL_OR_KEYWORD) for user, _ in params])
    except ValueError:  # a Python keyword (lambda) cannot be shown in a signature; it still works as **kw
        pass
    return under_user_names
