"""The backward pass of a scalar function at the level of layers: the way papers derive a network's gradients.

Parr and Howard's method (:mod:`.steps`) names every operation and chains Jacobians; on attention that is a
dozen intermediates whose partials are 4-way tensors. Papers (FlashAttention, the batch-norm paper) instead
name one variable per *layer* (scores ``S``, probabilities ``P``, output ``O``) and run the forward pass
backwards: each layer's *adjoint* ``dZ = ∂y/∂Z`` (shaped like ``Z``) is computed from the adjoints of the
layers that use ``Z``, by one rule per layer (``dP = dO Vᵀ``, ``dS = P ⊙ (dP − rowsum(dP ⊙ P))``).

Which operations make a layer: anything nonlinear (element-wise functions, softmax, a quotient by a
dependent value, ...), a matrix product whose value is used by another product or is the model's output
before the loss, and the input of any of those. Cheap linear operations (sums, negation, transposes, scaling,
a product with a constant matrix feeding a nonlinearity) are folded into the layer that uses them, so
``S = Q Kᵀ / √d + M`` is one step. Every adjoint is computed by :func:`~.derivative.gradient` of
``sum(dZ ⊙ Z(...))`` with respect to one input: the same machinery as the answer, so the two cannot disagree,
and a test evaluates the adjoints and compares them with the derivative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import nodes as N
from ..nodes import Node, symbols_of
from .derivative import gradient
from .linear import dependents, substitute

#: Linear operations folded into the layer that uses them (a product of matrices only when its value feeds
#: a nonlinearity through such operations: the pre-activation ``X W + b``).
CHEAP = ("Add", "Neg", "Transpose", "Div", "Sum", "Mean", "Hadamard", "Numel")
#: Names for the layers of attention, as papers write them (used when free): the input and output of a
#: softmax, and the product that applies the probabilities.
SOFTMAX = ("Softmax", "SoftmaxRows", "LogSoftmax", "LogSoftmaxRows")


@dataclass
class BackwardPass:
    """The layers (name, definition over earlier names, the original node), and the adjoints in the order
    they are computed (name, expression over the layers and the later adjoints, the uses it sums: the
    name and definition of each layer that uses the value)."""

    function: Node
    variables: list
    layers: list[tuple[N.Symbol, Node, Node]] = field(default_factory=list)
    adjoints: list[tuple[N.Symbol, Node, list]] = field(default_factory=list)


def _cheap(n: Node, deps: set) -> bool:
    """A linear operation in its dependent operands: folded into its consumer."""
    kind = type(n).__name__
    if kind == "MatMul":  # scaling, or a row or column sum or broadcast (the other factors vectors of ones)
        matrices = [f for f in n.args if f.shape != () and not _ones(f)]
        return len(matrices) <= 1 and sum(1 for f in n.args if f in deps) <= 1
    if kind == "Hadamard":
        return sum(1 for f in n.args if f in deps) <= 1
    if kind == "Div":
        return n.args[1] not in deps
    return kind in CHEAP


def _ones(n: Node) -> bool:
    """A vector of ones (as a column or transposed): its products are row or column sums and broadcasts."""
    return isinstance(n, N.Ones) or (isinstance(n, N.Transpose) and isinstance(n.args[0], N.Ones))


def _scaling(n: Node, deps: set) -> bool:
    """``Xᵀ``, ``-X``, ``X / c``, ``c X`` with a constant scalar ``c``, a vector repeated over the rows or
    columns of a matrix: no layer of their own."""
    kind = type(n).__name__
    if kind in ("Transpose", "Neg"):
        return True
    if kind == "Div":
        return n.args[1] not in deps
    if kind == "MatMul":  # c X, or a vector broadcast over the rows or columns (v 𝟙ᵀ, 𝟙 vᵀ)
        arrays = [f for f in n.args if f.shape != ()]
        if all(f not in deps for f in n.args if f.shape == ()) and len(arrays) <= 1:
            return True
        return len(arrays) == 2 and sum(map(_ones, arrays)) == 1 and all(1 in f.shape for f in arrays)
    return False


def _consumers(order: list, deps: set) -> dict:
    """For each dependent node, the dependent nodes that use it (once each): where its adjoint comes from."""
    users: dict[Node, list[Node]] = {}
    for n in order:
        for c in n.children:
            if c in deps and n not in users.setdefault(c, []):
                users[c].append(n)
    return users


def _feeds_nonlinearity(n: Node, users: dict, deps: set, root: Node) -> bool:
    """Whether ``n``'s value reaches a nonlinear operation through cheap operations only (then it is part
    of that operation's pre-activation), rather than the loss at the root or another product."""
    while True:
        above = users.get(n, [])
        if len(above) != 1 or n is root:
            return False
        n = above[0]
        if not _cheap(n, deps):
            return type(n).__name__ != "MatMul"


def _is_layer(n: Node, users: dict, deps: set, root: Node) -> bool:
    if n is root or len(users.get(n, [])) > 1:
        return True
    parent = users[n][0]
    if _scaling(n, deps):  # a transpose, negation or scaling commutes into the layer that uses it
        return False
    if type(n).__name__ == "MatMul" and not _cheap(n, deps):  # a product of two dependent matrices, or a chain
        return not _feeds_nonlinearity(n, users, deps, root)
    if not _cheap(n, deps):
        return True
    return not _cheap(parent, deps) and not _scaling(parent, deps)  # the input of a layer


def _name(n: Node, named: dict, taken: set, counter: list) -> str:
    """P and S around a softmax, O for the product that applies P; otherwise u1, u2, ...; y for the root."""
    kind = type(n).__name__
    wanted = None
    if kind in SOFTMAX:
        wanted = "P"
    elif kind == "MatMul" and any(named.get(f) is not None and named[f].name == "P" for f in n.args):
        wanted = "O"
    if wanted and wanted not in taken:
        taken.add(wanted)
        return wanted
    while True:
        counter[0] += 1
        if f"u{counter[0]}" not in taken:
            taken.add(f"u{counter[0]}")
            return f"u{counter[0]}"


def _dependents(F: Node, variables: list) -> tuple[list, set]:
    """Nodes of ``F`` that depend on any of ``variables``, children before parents."""
    deps: set = set()
    for X in variables:
        deps |= dependents(F, X)[1]
    order: list[Node] = []
    done: set = set()
    stack: list[tuple[Node, bool]] = [(F, False)]
    while stack:  # iterative post-order: deep expressions are fine
        n, expanded = stack.pop()
        if n in done:
            continue
        if expanded:
            done.add(n)
            if n in deps:
                order.append(n)
            continue
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(n.children) if c not in done)
    return order, deps


def _layers(F: Node, variables: list):
    """(name, definition over the earlier layers' names, node) for each layer, children before parents."""
    order, deps = _dependents(F, variables)
    users = _consumers(order, deps)
    taken = {s.name for s in symbols_of(F)} | {"y"}
    layer_nodes = [n for n in order if not isinstance(n, N.Symbol) and _is_layer(n, users, deps, F)]
    for n in layer_nodes:  # the input of a softmax is the scores S
        if type(n).__name__ in SOFTMAX and n.args[0] in layer_nodes and "S" not in taken:
            taken.add("S")
    named: dict[Node, N.Symbol] = {X: X for X in variables}
    out = []
    counter = [0]
    for n in layer_nodes:
        if n is F:
            name = "y"
        elif any(type(p).__name__ in SOFTMAX and p.args[0] is n for p in users.get(n, [])) and "S" in taken \
                and not any(s.name == "S" for s in named.values()):
            name = "S"
        else:
            name = _name(n, named, taken, counter)
        local = _over(n, named, deps)
        sym = N.Symbol(name, n.shape)
        named[n] = sym
        out.append((sym, local, n))
    return out


def _over(n: Node, named: dict, deps: set) -> Node:
    """``n`` with every dependent child that is a layer replaced by its name (the others written out)."""
    if not n.children:
        return n
    kids = tuple(named[c] if c in named else (_over(c, named, deps) if c in deps else c) for c in n.children)
    return n.with_children(kids)


def backward_pass(F: Node, variables) -> BackwardPass:
    """The layers of the scalar ``F`` between ``variables`` (a symbol or a list) and the root, and their
    adjoints, last layer first; the last adjoints are those of the variables."""
    variables = [variables] if isinstance(variables, N.Symbol) else list(variables)
    out = BackwardPass(F, variables)
    out.layers = _layers(F, variables)
    seeds: dict[N.Symbol, list[tuple[Node, str, Node]]] = {}
    taken = {s.name for s in symbols_of(F)} | {sym.name for sym, _, _ in out.layers}
    adjoint_of = {sym: N.Symbol(_fresh_d(sym.name, taken), sym.shape) for sym, _, _ in out.layers}
    for sym, local, _ in reversed(out.layers):
        bar = None if sym.name == "y" else adjoint_of[sym]
        if bar is not None:
            expr = _by_name(_add([e for e, _, _ in seeds[sym]]), out.layers)
            out.adjoints.append((bar, expr, [(n, u) for _, n, u in seeds[sym]]))
        for inp in _inputs(local, [s for s, _, _ in out.layers] + variables):
            seeds.setdefault(inp, []).append((_pull(local, inp, bar), sym.name, local))
    for X in variables:
        final = seeds.get(X, [])
        expr = _by_name(_add([e for e, _, _ in final]), out.layers) if final else _zero(X)
        out.adjoints.append((N.Symbol(_fresh_d(X.name, taken), X.shape), expr, [(n, u) for _, n, u in final]))
    return out


def _by_name(expr: Node, layers: list) -> Node:
    """``expr`` with each layer's definition written as its name (``exp(S)`` is ``P`` when ``P = exp(S)``)."""
    mapping = {local: sym for sym, local, _ in layers if local.children and sym.name != "y"}
    return substitute(expr, mapping) if mapping else expr


def _zero(X: N.Symbol) -> Node:
    """The adjoint of a variable no layer uses."""
    from .. import simplify as S

    return S.zero_like(X.shape)


def _fresh_d(name: str, taken: set) -> str:
    """``dZ`` for the adjoint of ``Z``, primed with ``_`` until it clashes with no name of the function."""
    out = f"d{name}"
    while out in taken:
        out += "_"
    return out


def _add(parts: list[Node]) -> Node:
    """The sum of an adjoint's contributions (one per use), simplified."""
    from .. import simplify as S

    return parts[0] if len(parts) == 1 else S.add(*parts)


def _inputs(local: Node, candidates: list) -> list:
    """The layers and variables a layer's definition reads (each gets a contribution to its adjoint)."""
    present = set(symbols_of(local))
    return [c for c in candidates if c in present]


def _pull(local: Node, inp: N.Symbol, bar: N.Symbol | None) -> Node:
    """The contribution of one use of ``inp`` to its adjoint: the gradient of ⟨bar, local⟩ in ``inp``."""
    from .. import simplify as S

    if bar is None:
        return gradient(local, inp)
    paired = S.mul(bar, local) if local.shape == () else N.Sum(N.Hadamard(bar, local))
    return gradient(paired, inp)
