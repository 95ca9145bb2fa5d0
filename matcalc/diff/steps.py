"""The steps of a derivation, the way Parr and Howard write one.

1. *Introduce intermediate variables* for the nested subexpressions that depend on the variable
   (``u1 = w ⊙ x``, ``y = sum(u1)``).
2. *Give each partial derivative* with the rule that produces it (``∂u1/∂w = diag(x)`` by the
   element-wise product rule); where a partial is a tensor (a matrix intermediate), its differential is
   given instead (``du1 = A dX``), as matrix calculus texts do.
3. *Chain them* (the vector chain rule, summing over every path when a variable is used twice).
4. *Simplify* to the closed form.

The partials are computed by the same :func:`derive` that gives the answer, on one operation at a time,
so the steps can never disagree with the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import nodes as N
from ..budget import BudgetError, budgeted
from ..errors import MatcalcError
from ..nodes import Node, symbols_of
from ..printing import to_latex, to_unicode
from .derivative import jacobian
from .linear import dependents
from .rules import differential
from .tensor import TensorDerivative

RULES = {
    "Add": "sum rule", "Neg": "negation", "MatMul": "product rule (matrix product)", "Div": "quotient rule",
    "Hadamard": "element-wise product", "ElemDiv": "element-wise quotient",
    "Power": "power rule", "ElemPower": "element-wise power rule", "Transpose": "transpose",
    "VectorLit": "vector of functions", "MatrixLit": "matrix of functions", "Fill": "constant fill",
}


HEADERS = {"define": "Introduce intermediate variables:", "partial": "Partial derivatives:",
           "chain": "Chain rule:", "layer": "By layers, forward pass (one variable per layer):",
           "adjoint": "Backward pass (the forward pass run backwards; dZ = ∂y/∂Z has the shape of Z):",
           "result": "Simplified:"}
#: Past this many layers, the by-layer view is left out (it would repeat the element-level steps).
MAX_LAYERS = 40


def _rule_name(n: Node) -> str:
    if isinstance(n, N.Apply):
        return f"element-wise function {n.function}"
    if isinstance(n, N.Call):  # its record names it
        return n.record.rule
    return RULES.get(type(n).__name__, type(n).__name__)


@dataclass
class Step:
    """One line of a derivation: a ``kind`` (define, partial, chain, result), its text and LaTeX."""

    kind: str
    text: str
    latex: str = ""
    rule: str = ""


@dataclass
class Steps:
    """The derivation; ``str()`` gives plain text, notebooks show Markdown."""

    title: str
    items: list[Step] = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __str__(self) -> str:
        lines = [self.title]
        section = None
        headers = HEADERS
        for s in self.items:
            if s.kind != section:
                section = s.kind
                lines.append(headers.get(section, section))
            lines.append(f"  {s.text}" + (f"    [{s.rule}]" if s.rule else ""))
        return "\n".join(lines)

    # One convention with Derivative: str() is plain text, unicode() the texts' notation (the same here),
    # latex() LaTeX; calling the steps returns them, so ``d.steps`` and ``d.steps()`` both work.
    def __call__(self) -> Steps:
        return self

    def unicode(self) -> str:
        return str(self)

    def latex(self) -> str:
        """The derivation as a LaTeX ``aligned`` block: the section headings as text, each step as math."""
        headers = HEADERS
        lines = [f"&\\text{{{_tex_text(self.title)}}}"]
        section = None
        for s in self.items:
            if s.kind != section:
                section = s.kind
                lines.append(f"&\\textbf{{{headers.get(section, section)}}}")
            body = s.latex or f"\\text{{{_tex_text(s.text)}}}"
            lines.append(f"&\\quad {body}" + (f" && \\text{{[{_tex_text(s.rule)}]}}" if s.rule else ""))
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _repr_markdown_(self) -> str:
        out = [f"**{self.title}**", ""]
        for s in self.items:
            body = f"${s.latex}$" if s.latex else f"`{s.text}`"
            out.append(f"- {body}" + (f" — *{s.rule}*" if s.rule else ""))
        return "\n".join(out)


def _tex_text(text: str) -> str:
    """Plain text for ``\\text{...}``: LaTeX's special characters escaped."""
    for ch, esc in (("\\", "\\textbackslash{}"), ("{", "\\{"), ("}", "\\}"), ("_", "\\_"), ("^", "\\^{}"),
                    ("&", "\\&"), ("%", "\\%"), ("$", "\\$"), ("#", "\\#")):
        text = text.replace(ch, esc)
    return text


def _fresh(taken: set[str], stem: str) -> str:
    k = 1
    while f"{stem}{k}" in taken:
        k += 1
    name = f"{stem}{k}"
    taken.add(name)
    return name


@budgeted("the explanation (steps)")
def explain(derivative) -> Steps:
    """The steps of ``derivative`` (a :class:`~matcalc.diff.derivative.Derivative`)."""
    F, X = derivative.function, derivative.variable
    order, deps = dependents(F, X)
    locals_, names = _locals(F, X, order, deps)
    title = f"d({to_unicode(F)}) / d{X.name}, {derivative.layout} layout"
    steps = Steps(title)
    for sym, local, _ in locals_:
        steps.items.append(Step("define", f"{sym.name} = {to_unicode(local)}",
                                f"{to_latex(sym)} = {to_latex(local)}"))
    partials: dict[tuple[str, str], str] = {}
    for sym, local, original in locals_:
        rule = _rule_name(original)
        inputs = []
        for c in original.children:
            if c in deps and names[c].name not in inputs:
                inputs.append(names[c].name)
        for inp in inputs:
            var = next(s for s in symbols_of(local) if s.name == inp)
            direct = inp == X.name and sym is locals_[-1][0] and len(inputs) > 1
            label = f"∂{sym.name}/∂{inp}" + (" (direct)" if direct else "")
            frac = f"\\frac{{\\partial {to_latex(sym)}}}{{\\partial {to_latex(var)}}}"
            try:
                part = jacobian(local, var)
                named = getattr(derivative, "named", True)
                text = f"{label} = {to_unicode(part, named=named)}"
                tex = frac + ("_{\\text{direct}}" if direct else "") + f" = {to_latex(part, named=named)}"
            except MatcalcError:
                dl = differential(local, var)  # None: the partial is zero (through sign or step)
                text = f"d{sym.name} = {to_unicode(dl) if dl is not None else '0'}"
                tex = f"d{sym.name} = {to_latex(dl) if dl is not None else '0'}"
            partials[(sym.name, inp)] = text
            steps.items.append(Step("partial", text, tex, rule))
    chain = _chain_text(locals_, X, deps, names) if locals_ else ""
    lhs, _, rhs = chain.partition(" = ")
    if chain and lhs != rhs:
        steps.items.append(Step("chain", chain))
    if F.shape == () and X.shape != ():
        steps.items.extend(layer_steps(F, [X], named=getattr(derivative, "named", True)))
    steps.items.extend(_results(derivative, F, X))
    return steps


def layer_steps(F: Node, variables: list, named: bool = True) -> list[Step]:
    """The backward pass of the scalar ``F`` by layers (:mod:`.backward`): each layer's definition, then
    each adjoint with the layers it comes from and their rules. Empty when there are fewer than two layers
    (the element-level steps say it all) or too many, or when a layer has no matrix form."""
    from .backward import backward_pass

    try:
        bp = backward_pass(F, variables)
    except BudgetError:  # out of time or memory: the whole explanation stops, as it does without layers
        raise
    except MatcalcError:  # a layer with no matrix form: the element-level steps stand alone
        return []
    if not 2 <= len(bp.layers) <= MAX_LAYERS:
        return []
    out = [Step("layer", f"{sym.name} = {to_unicode(local)}", f"{to_latex(sym)} = {to_latex(local)}")
           for sym, local, _ in bp.layers]
    for sym, expr, uses in bp.adjoints:
        rule = "; ".join(f"from {name} = {to_unicode(local)}: {_rule_name(local)}" for name, local in uses)
        out.append(Step("adjoint", f"{sym.name} = {to_unicode(expr, named=named)}",
                        f"{to_latex(sym)} = {to_latex(expr, named=named)}", rule))
    return out


@budgeted("the explanation (steps)")
def explain_layers(derivatives) -> Steps:
    """The backward pass by layers for several variables at once (``derive(f, wrt=[...])``): the paper's
    form of a layer's gradients, ``dQ``, ``dK``, ``dV`` from one forward pass run backwards."""
    derivatives = list(derivatives)
    F = derivatives[0].function
    names = ", ".join(d.variable.name for d in derivatives)
    steps = Steps(f"the backward pass of {to_unicode(F)} for {names}, by layers (denominator layout)")
    steps.items.extend(layer_steps(F, [d.variable for d in derivatives]))
    return steps


def _locals(F: Node, X: N.Symbol, order: list, deps: set):
    """A local name (``y`` for the whole, ``u1``, ``u2``, ...) for each node between ``X`` and ``F``: the
    list of (name, the node over named children, the node) and the names by node."""
    taken = {s.name for s in symbols_of(F)}
    names: dict[Node, N.Symbol] = {X: X}
    locals_: list[tuple[N.Symbol, Node, Node]] = []
    for n in order:
        if n is X or isinstance(n, N.Symbol):
            continue
        name = "y" if n is F and "y" not in taken else _fresh(taken, "u")
        kids = tuple(names.get(c, c) if c in deps else c for c in n.children)
        local = n.with_children(kids) if kids else n
        sym = N.Symbol(name, n.shape)
        names[n] = sym
        locals_.append((sym, local, n))
    return locals_, names


def _results(derivative, F: Node, X: N.Symbol) -> list[Step]:
    """The closing steps: the result, or for a tensor its linear map (and its Kronecker form)."""
    out: list[Step] = []
    tensor = isinstance(derivative, TensorDerivative)
    if derivative.layout == "denominator" and not tensor:
        out.append(Step("result", "the partials above are Jacobians (numerator layout); the "
                                  "denominator-layout result is their transpose"))
    if tensor and derivative.linear_map is not None and derivative.expr is None:
        out.append(Step("result", derivative.linear_map))
    elif tensor:
        out.append(Step("result", derivative.linear_map))
        out.append(Step("result", f"∂vec/∂vec = {to_unicode(derivative.expr)}"))
    else:
        out.append(Step(
            "result", f"∂{to_unicode(F)}/∂{X.name} = {derivative.unicode()}",
            f"\\frac{{\\partial}}{{\\partial {to_latex(X)}}}\\left({to_latex(F)}\\right) = "
            f"{derivative.latex()}"))
    return out


def _chain_text(locals_, X, deps, names) -> str:
    """``∂y/∂x = ∂y/∂u2 ∂u2/∂u1 ∂u1/∂x``, summed over paths when a value is used more than once."""
    parents: dict[str, list[str]] = {}
    for sym, _local, original in locals_:
        for c in original.children:
            if c in deps:
                parents.setdefault(names[c].name, [])
                if sym.name not in parents[names[c].name]:
                    parents[names[c].name].append(sym.name)
    top = locals_[-1][0].name
    paths: list[list[str]] = []
    # depth first, iteratively (a chain of 1,000 functions is 1,000 levels deep); at most 9 paths, and a
    # bounded number of steps, since a DAG can have exponentially many
    stack: list[list[str]] = [[X.name]]
    steps = 0
    while stack and len(paths) <= 8 and steps < 100_000:
        path = stack.pop()
        steps += len(path)
        if path[-1] == top:
            paths.append(path)
            continue
        stack.extend(path + [p] for p in reversed(parents.get(path[-1], [])))
    terms = []
    for path in paths:
        chain = [f"∂{path[i + 1]}/∂{path[i]}" for i in range(len(path) - 1)]
        if len(path) == 2 and len(paths) > 1:
            chain = [chain[0] + " (direct)"]
        terms.append(" ".join(reversed(chain)))
    more = " + ..." if len(paths) > 8 else ""
    return f"∂{top}/∂{X.name} = " + " + ".join(terms) + more
