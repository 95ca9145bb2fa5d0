"""Derivatives whose natural shape has three or four axes: a vector or matrix with respect to a matrix,
a matrix with respect to a vector.

They have no matrix in the layouts of :mod:`.derivative`, so matcalc gives them in three forms, all read
off the differential ``dF`` (which is linear in ``dX``):

- the **linear map** in matrix form, as the literature writes it: ``d(A X B) = A dX B``;
- the **Kronecker form** on vectorised arguments, where one exists (every term ``± L dX R`` with ``dX``
  untransposed, or ``X`` a vector): ``vec(dF) = Σ ± (Rᵀ ⊗ L) vec(dX)``, vec stacking columns;
- the **index (Einstein) form**: ``∂F_ij/∂X_kl = A_ik B_lj``, repeated indices summed.

``evaluate()`` returns an ndarray of shape ``F.shape + X.shape`` (vectors contribute one axis): entry
``[i, j, k, l]`` is ``∂F_ij/∂X_kl``. It is computed by applying the linear map to each basis matrix, so it
does not depend on either printed form.
"""

from __future__ import annotations

from .. import nodes as N
from .. import simplify as S
from ..errors import NoMatrixFormError
from ..nodes import Node
from ..printing import to_text, to_unicode
from ..shapes import dim_product, is_column, is_row
from .derivative import Derivative
from .linear import dependents


def _axes(shape) -> tuple:
    if shape == ():
        return ()
    if is_column(shape):
        return (shape[0],)
    if is_row(shape):
        return (shape[1],)
    return tuple(shape)


# --- the Kronecker form ---------------------------------------------------------------------------------------
def _kron_terms(dF: Node, dX: Node, deps: set[Node], sign: int = 1):
    """``dF`` as a list of ``(sign, L, R, occurrence)`` with ``dF = Σ sign L occurrence R``, where the
    occurrence is ``dX`` or, for a vector ``x``, ``dxᵀ`` (whose vec is ``dx``)."""
    if dF is dX:
        return [(sign, S.ONE, S.ONE, dF)]
    if isinstance(dF, N.Add):
        if any(a.shape != dF.shape for a in dF.args if a in deps):
            raise NoMatrixFormError("a broadcast scalar term has no Kronecker form here")
        return [t for a in dF.args if a in deps for t in _kron_terms(a, dX, deps, sign)]
    if isinstance(dF, N.Neg):
        return _kron_terms(dF.args[0], dX, deps, -sign)
    if isinstance(dF, N.Div) and dF.args[1] not in deps:  # dM / s: the constant scalar scales the left side
        return [(s, S.div(left, dF.args[1]), right, occ)
                for s, left, right, occ in _kron_terms(dF.args[0], dX, deps, sign)]
    if isinstance(dF, N.Transpose) and dF.args[0] is dX:  # vec(dXᵀ) = K vec(dX) (K = I for a vector)
        return [(sign, S.ONE, S.ONE, dF)]
    if isinstance(dF, N.Hadamard) and is_column(dF.shape):
        lin = [a for a in dF.args if a in deps]
        if len(lin) == 1:
            weights = S.had(*[a for a in dF.args if a not in deps])
            inner = _kron_terms(lin[0], dX, deps, sign)
            return [(s, S.mul(S.diagmat(weights) if weights.shape != () else weights, left), right, occ)
                    for s, left, right, occ in inner]
    if isinstance(dF, N.MatMul):
        idx = [i for i, f in enumerate(dF.args) if f in deps]
        if len(idx) == 1 and not (dF.args[idx[0]].shape == () and dF.shape != ()):
            i = idx[0]
            left, right = S.mul(*dF.args[:i]), S.mul(*dF.args[i + 1:])
            return [(s, S.mul(left, l2), S.mul(r2, right), occ)
                    for s, l2, r2, occ in _kron_terms(dF.args[i], dX, deps, sign)]
    raise NoMatrixFormError(f"no Kronecker form through {to_unicode(dF)}")


def _side(factor: Node, size) -> Node:
    """A factor of a Kronecker product: a scalar ``c`` stands for ``c I`` of the given size."""
    if factor.shape != ():
        return factor
    return factor if size == 1 else S.mul(factor, N.Identity(size))


def kronecker_form(dF: Node, dX: Node) -> Node | None:
    """``∂vec(F)/∂vec(X)`` as a sum of Kronecker products ``Rᵀ ⊗ L``, or None when there is none."""
    _, deps = dependents(dF, dX)
    try:
        terms = _kron_terms(dF, dX, deps)
    except NoMatrixFormError:
        return None
    groups: dict[tuple[Node, Node | None], list[Node]] = {}
    for sign, left, right, occ in terms:
        rows, cols = (occ.shape + (1, 1))[:2] if occ.shape != () else (1, 1)
        rt = _side(S.transpose(right), cols)
        groups.setdefault((rt, _commutation(occ, dX)), []).append(S.scale(sign, _side(left, rows)))
    parts = []
    for (rt, k), lefts in groups.items():
        left = S.add(*lefts)
        if rt.shape == () or left.shape == ():
            part = S.mul(rt, left)
        elif isinstance(rt, N.Identity) and isinstance(left, N.Identity):  # I ⊗ I = I
            part = N.Identity(dim_product(rt.size, left.size))
        else:
            c, core = S.split_coeff(left)
            part = S.scale(c, N.Kron(rt, core))
        parts.append(part if k is None else S.mul(part, k))
    return S.add(*parts) if parts else None


def _commutation(occ: Node, dX: Node) -> Node | None:
    """``K(m, n)`` for an occurrence ``dXᵀ`` of an m x n matrix ``X`` (``vec(dXᵀ) = K vec(dX)``), else None."""
    if occ is dX or is_column(dX.shape) or is_row(dX.shape):
        return None
    return N.Commutation(dX.shape[0], dX.shape[1])


# --- the index form -------------------------------------------------------------------------------------------
class _Index:
    """Einstein notation of a differential, with ``dX_ab`` replaced by ``δ_ak δ_bl``.

    Every node is addressed by a (row, column) pair of index names; a dimension of size 1 gets the
    empty name, so vectors carry one index and scalars none.
    """

    POOL = "pqrstuvwabcdefgh"

    def __init__(self, dX: Node, var_indices: tuple[str, ...], deps: set[Node]):
        self.dX = dX
        self.var = var_indices
        self.deps = deps
        self.count = 0

    def dummy(self) -> str:
        name = self.POOL[self.count % len(self.POOL)]
        self.count += 1
        return name

    @staticmethod
    def own(idx: tuple[str, str]) -> tuple[str, ...]:
        return tuple(i for i in idx if i)

    def ref(self, node: Node, idx: tuple[str, ...]) -> str:
        if isinstance(node, N.Symbol):
            name = node.name
        elif isinstance(node, N.Transpose):
            return self.ref(node.args[0], idx[::-1])
        else:
            name = f"({to_unicode(node)})"
        return f"{name}_{''.join(idx)}" if idx else name

    def terms(self, n: Node, row: str, col: str) -> list[tuple[int, list[str]]]:
        """Terms (sign, factors) of entry (row, col) of ``n``."""
        if n is self.dX:
            return [(1, [f"δ_{a}{k}" for a, k in zip(self.own((row, col)), self.var, strict=False)])]
        if n not in self.deps:
            return [(1, [self.ref(n, self.own((row, col)))])]
        if isinstance(n, N.Add):  # a scalar term is broadcast: the same for every (row, col)
            return [t for a in n.args if a in self.deps
                    for t in self.terms(a, *((row, col) if a.shape != () else ("", "")))]
        if isinstance(n, N.Neg):
            return [(-s, f) for s, f in self.terms(n.args[0], row, col)]
        if isinstance(n, N.Transpose):
            return self.terms(n.args[0], col, row)
        if isinstance(n, N.Hadamard):
            return self._product([(a, (row, col) if a.shape != () else ("", "")) for a in n.args])
        if isinstance(n, N.MatMul):
            pieces = []
            current = row
            last = max((i for i, f in enumerate(n.args) if f.shape != ()), default=-1)
            for i, f in enumerate(n.args):
                if f.shape == ():
                    pieces.append((f, ("", "")))
                    continue
                r = current if f.shape[0] != 1 else ""
                c = "" if f.shape[1] == 1 else (col if i == last else self.dummy())
                pieces.append((f, (r, c)))
                current = c
            return self._product(pieces)
        if isinstance(n, N.DiagMat):
            return [(s, [f"δ_{row}{col}"] + f) for s, f in self.terms(n.args[0], row, "")]
        if isinstance(n, N.Trace):
            d = self.dummy()
            return self.terms(n.args[0], d, d)
        if isinstance(n, N.Sum):
            x = n.args[0]
            r = self.dummy() if x.shape and x.shape[0] != 1 else ""
            c = self.dummy() if x.shape and x.shape[1] != 1 else ""
            return self.terms(x, r, c)
        if isinstance(n, N.Div):
            return [(s, f + [f"/ {to_unicode(n.args[1])}"]) for s, f in self.terms(n.args[0], row, col)]
        raise NoMatrixFormError(f"no index form through {to_unicode(n)}")

    def _product(self, pieces) -> list[tuple[int, list[str]]]:
        out: list[tuple[int, list[str]]] = [(1, [])]
        for node, (r, c) in pieces:
            sub = self.terms(node, r, c)
            out = [(s1 * s2, f1 + f2) for s1, f1 in out for s2, f2 in sub]
        return out


def _contract(factors: list[str], free: set[str]) -> list[str]:
    """Eliminate deltas that carry a summed index: ``δ_pk A_ip -> A_ik``."""
    factors = list(factors)
    changed = True
    while changed:
        changed = False
        for i, f in enumerate(factors):
            if not f.startswith("δ_") or len(f) != 4:
                continue
            a, b = f[2], f[3]
            if a == b:
                factors.pop(i)
                changed = True
                break
            dummy, keep = (a, b) if a not in free else (b, a) if b not in free else (None, None)
            if dummy is None:
                continue
            factors.pop(i)
            factors = [_rename(g, dummy, keep) for g in factors]
            changed = True
            break
    return factors


def _rename(factor: str, old: str, new: str) -> str:
    head, sep, idx = factor.rpartition("_")
    if not sep or " " in idx:
        return factor
    return f"{head}_{idx.replace(old, new)}"


def index_form(F: Node, X: N.Symbol, dF: Node) -> str:
    """``∂F_ij/∂X_kl = ...`` in Einstein notation (repeated indices are summed)."""
    out_idx = ("i", "j")[: len(_axes(F.shape))]
    var_idx = ("k", "l")[: len(_axes(X.shape))]
    dX = N.Differential(X)
    _, deps = dependents(dF, dX)
    builder = _Index(dX, var_idx, deps)
    row, col = (out_idx + ("", ""))[:2]
    if is_row(F.shape):
        row, col = "", out_idx[0]
    terms = builder.terms(dF, row, col)
    free = set(out_idx) | set(var_idx)
    parts = []
    for sign, factors in terms:
        body = " ".join(_contract(factors, free)) or "1"
        parts.append(("- " if sign < 0 else "+ ") + body)
    text = " ".join(parts)
    text = text[2:] if text.startswith("+ ") else "-" + text[2:]
    lhs_out = f"{to_unicode(F) if isinstance(F, N.Symbol) else '(' + to_unicode(F) + ')'}_{''.join(out_idx)}"
    return f"∂{lhs_out}/∂{X.name}_{''.join(var_idx)} = {text}"


def _symmetrised(dF: Node, X: N.Symbol) -> Node:
    """``dF`` with ``dX`` replaced by ``(dX + dXᵀ)/2``: the map whose entries follow the symmetric convention
    (entry (k, l) is the derivative along ``(E_kl + E_lk)/2``), for a symmetric matrix ``X``."""
    from .linear import substitute

    dX = N.Differential(X)
    return S.simplify(substitute(dF, {dX: S.div(S.add(dX, S.transpose(dX)), N.Number(2))}))


# --- the derivative --------------------------------------------------------------------------------------------
class TensorDerivative(Derivative):
    """A 3- or 4-way derivative, given as a linear map, a Kronecker form and an index form.

    ``expr`` is the Kronecker (vec) matrix ``∂vec(F)/∂vec(X)`` when there is one (None otherwise): code
    generation computes it and reshapes it, column-major, to the tensor's axes.
    """

    def __init__(self, function: Node, variable: N.Symbol, differential: Node, layout: str = "numerator",
                 order: int = 1):
        self.differential = differential
        self.kronecker = kronecker_form(differential, N.Differential(variable))
        #: A symmetric matrix variable: entry (k, l) is the derivative along (E_kl + E_lk)/2 (the documented
        #: convention), in evaluate(), in the printed forms and in generated code alike.
        self.symmetrised = variable.symmetric and len(_axes(variable.shape)) == 2
        try:
            self.index = index_form(function, variable, _symmetrised(differential, variable)
                                    if self.symmetrised else differential)
        except NoMatrixFormError:
            self.index = None
        super().__init__(function, variable, self.kronecker, layout, order)

    @property
    def shape(self) -> tuple:
        """Output axes then variable axes (a vector contributes one axis)."""
        return _axes(self.function.shape) + _axes(self.variable.shape)

    @property
    def linear_map(self) -> str:
        return f"d({to_unicode(self.function)}) = {to_unicode(self.differential)}"

    def evaluate(self, values=None, /, sizes=None, **named):
        """The ndarray ``T`` with ``T[out..., var...] = ∂F[out...]/∂X[var...]``."""
        import numpy as np  # only here: deriving (the command line) does not import NumPy

        from ..numeric import _real_array, evaluate, lookup_value
        from .derivative import sizes_from

        values = {**(values or {}), **named}
        sizes = sizes_from(self.function, values, sizes, self.variable)
        x = _real_array(lookup_value(values, self.variable), self.variable.name)
        dX = N.Differential(self.variable)
        slices = []
        for idx in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[idx] = 1.0
            if self.variable.symmetric and len(idx) == 2 and idx[0] != idx[1]:
                e[idx[::-1]] = 1.0
                e /= 2.0  # the symmetric convention: half of each off-diagonal pair
            slices.append(np.asarray(evaluate(self.differential, {**values, dX: e}, sizes=sizes), dtype=float))
        out_shape = slices[0].shape
        T = np.stack(slices, axis=-1).reshape(out_shape + x.shape)
        return T

    def _symmetriser(self, text: bool) -> str:
        """The factor that applies the symmetric convention to a vec form (empty when there is none)."""
        if not self.symmetrised:
            return ""
        n, name = self.variable.shape[0], self.variable.name
        if text:
            return (f" N, with N = (I + K)/2 the symmetriser of vec({name}) (K vec(d{name}) = vec(d{name}'), "
                    f"K the {n}² x {n}² commutation matrix)")
        return (f" Nₙ, with Nₙ = (I + Kₙₙ)/2 the symmetriser of vec({name}) (Kₙₙ vec(d{name}) = "
                f"vec(d{name}ᵀ))")

    def vec_form(self, printer=to_text) -> str:
        """The printed vec form: ``∂vec(F)/∂vec(X)``, times the symmetriser for a symmetric ``X``."""
        text = printer(self.kronecker)
        if self.symmetrised and isinstance(self.kronecker, N.Add):
            text = f"({text})"
        return text + self._symmetriser(printer is to_text)

    def text(self, named: bool | None = None) -> str:
        lines = [f"d({to_text(self.function)}) = {to_text(self.differential)}"]
        if self.kronecker is not None:
            lines.append(f"vec form: {self.vec_form(to_text)}")
        if self.index is not None:
            lines.append(self.index)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<TensorDerivative {self.linear_map}>"

    def unicode(self, named: bool | None = None) -> str:
        lines = [self.linear_map]
        if self.kronecker is not None:
            lines.append(f"∂vec/∂vec = {self.vec_form(to_unicode)}")
        if self.index is not None:
            lines.append(self.index)
        return "\n".join(lines)

    def latex(self, named: bool | None = None) -> str:
        from ..printing import to_latex

        return f"d{to_latex(self.variable)} \\mapsto {to_latex(self.differential)}"

    def _repr_latex_(self) -> str:
        from ..printing import to_latex

        head = f"d\\left({to_latex(self.function)}\\right) = {to_latex(self.differential)}"
        if self.kronecker is not None:
            vec = "\\frac{\\partial\\, \\mathrm{vec}}{\\partial\\, \\mathrm{vec}}"
            head += f",\\quad {vec} = {to_latex(self.kronecker)}"
        from ..printing.latex import where_latex

        where = where_latex(self.assumptions)
        return f"${head},\\quad {where}$" if where else f"${head}$"

    def _repr_markdown_(self) -> str:
        lines = [*self.unicode().splitlines(), str(self.assumptions)]
        return "\n\n".join(f"`{line}`" for line in lines if line)

    def __eq__(self, other) -> bool:
        return isinstance(other, TensorDerivative) and (self.function, self.variable, self.differential) == (
            other.function, other.variable, other.differential)

    def __hash__(self) -> int:
        return hash((self.function, self.variable, self.differential))
