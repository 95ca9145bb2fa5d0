"""The two kinds of record of the operation catalogue (see :mod:`matcalc.ops`).

Imports nothing of matcalc but the bottom modules :mod:`matcalc.shapes` and :mod:`matcalc.errors`; a rule
receives the object it works with (the NumPy module, a printer, the differentiator ...) as its first
argument, so that the records need no import of the stages that use them.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Elementwise", "Function"]


class Elementwise:
    """One element-wise function ``f``, applied entry by entry.

    ``derivative(d, u)`` builds f'(u) with the differentiation builder ``d`` (``d.apply(name, u)``,
    ``d.add``, ``d.neg``, ``d.mul``, ``d.had``, ``d.div``, ``d.square``, ``d.recip``, ``d.number(k)``,
    ``d.one``, ``d.pi``) and returns None where f' is 0 almost everywhere (sign, step). ``numpy(np, x)`` and
    ``sympy(sp, x)`` evaluate it. ``code`` maps a code-generation target (``numpy``, ``jax``, ``torch``)
    to a template over ``{x}`` (the argument), ``{x_unary}`` (the argument bracketed as an operand of
    unary minus) and ``{<name>}`` (the target module's function ``name``, e.g. ``{exp}`` is ``np.exp``);
    a target without a template calls the module's function of the same name. The code printer takes a
    filled template for an atom (``f(u)^2``, ``1 / f(u)``): one that is not a single call is bracketed as
    a whole (``(({x}) * ...)``). ``preamble`` holds, per target, the module-level definitions a template
    calls (NumPy has no erf; a record with a NumPy preamble gives JAX a template of its own, since
    generated JAX code does not import NumPy). ``latex`` is the LaTeX command of the call form, or a
    template over ``{x}`` for a non-call form (``\\sqrt{{{x}}}``).
    """

    __slots__ = ("name", "aliases", "derivative", "numpy", "sympy", "code", "preamble", "latex", "unicode",
                 "letter", "kink", "nonnegative", "domain")

    def __init__(self, name: str, *, derivative: Callable, numpy: Callable, sympy: Callable,
                 code: dict[str, str] | None = None, preamble: dict[str, str] | None = None,
                 latex: str | None = None, unicode: str | None = None, letter: str | None = None,
                 aliases: tuple[str, ...] = (), kink: bool = False, nonnegative: bool = False,
                 domain: str | None = None):
        self.name = name
        #: other spellings the parser accepts (``ln`` for log, ``σ`` for sigmoid)
        self.aliases = aliases
        self.derivative = derivative
        self.numpy = numpy
        self.sympy = sympy
        self.code = code or {}
        #: per target, module-level source the template calls (a helper the library lacks: NumPy's erf);
        #: the helpers' names start with ``_matcalc_``, which generated code never gives a variable
        self.preamble = preamble or {}
        self.latex = latex if latex is not None else f"\\operatorname{{{name}}}"
        #: the Unicode printer's spelling of the name
        self.unicode = unicode or name
        #: the letter a named subexpression f(u) gets in printed derivations (σ(u) is a probability p)
        self.letter = letter
        #: non-differentiable at 0: verify keeps sample points away from the kink
        self.kink = kink
        #: every value is >= 0 (the code rewrites use it, e.g. sqrt of a weight)
        self.nonnegative = nonnegative
        #: None (all reals), "positive" (x > 0), "unit" (|x| < 1) or "above-1" (x > -1): where verify samples
        self.domain = domain

    def code_template(self, targets: tuple[str, ...]) -> str:
        """The code template of the first of ``targets`` that has one, else the plain call."""
        return self.code_and_preamble(targets)[0]

    def code_and_preamble(self, targets: tuple[str, ...]) -> tuple[str, str | None]:
        """The code template of the first of ``targets`` that has one and the preamble it needs (or None);
        else the plain call."""
        for target in targets:
            if target in self.code:
                return self.code[target], self.preamble.get(target)
        return "{" + self.name + "}({x})", None

    def __repr__(self) -> str:
        return f"Elementwise({self.name!r})"

class Function:
    """A call of the language that is not element-wise: one record with everything matcalc knows of it.

    *Spellings and typing.* ``name`` and ``aliases`` are what the parser accepts (``spelled=False``: a
    record of a node no call spells directly, such as the row-wise softmax, which ``softmax`` of a matrix
    builds). ``arity`` is (least, most) arguments, most None for any number. ``matrix_arg``: the argument is
    a square matrix (tr, det, logdet, inv). ``forces_vector``: an argument of undeclared kind is inferred to
    be a vector rather than a scalar. ``axis``: the call takes the keyword ``axis=0|1|-1`` (``dim=`` too);
    ``rows`` names the node class of its row-wise form on a matrix, where it has one of its own.
    ``node`` names the :mod:`matcalc.nodes` class the call builds (None where it is rewritten into other
    nodes: ``max(a, b) = b + relu(a - b)``); a record whose node has rules is that node's record
    (:data:`matcalc.ops.BY_NODE`).

    ``infer`` is the result's shape for the typechecker's inference: ``"scalar"`` (numel, norm1, tr, det,
    logdet) or ``"same"`` (inv); calls whose result depends on the argument's kind or an axis (diag,
    softmax, kron, the reductions) have their inference rule in :mod:`matcalc.typecheck`.
    ``rule`` names its differentiation rule in the steps (``determinant (Jacobi's formula)``).

    *Rules* (each receives the object that applies it, then the node; see docs/design.md, "How to add an
    operation"):

    * ``shape(*args)`` - the node's shape from its arguments (nodes and parameters); raises ShapeError;
    * ``differential(d, n)`` - dF as an expression linear in the differential; ``d.d(child)`` is a child's
      differential (None where it does not depend on the variable), ``d.S`` the simplifying constructors,
      ``d.N`` the node classes;
    * ``transpose(t, n, c)`` and ``forward(f, n, tangents)`` - for a linear node, the cotangents of its
      children given its own, and its Jacobian from its children's (:mod:`matcalc.diff.linear`);
    * ``contract(c, m, v, w, tr)`` - for a matrix-valued linear node, the Jacobian of ``(W ⊙ M) v`` (or of
      its transpose) through it (:mod:`matcalc.diff.contract`; diag and kron);
    * ``numpy(ev, n, *values)`` and ``sympy(b, n, *values)`` - the value from the children's values
      (``ev.np`` is NumPy, ``b.sp`` SymPy);
    * ``text(p, n)``, ``unicode(p, n)``, ``latex_form(p, n)`` - printed forms returning (text, precedence);
      by default the call form ``name(args)`` (Unicode as text) and ``latex(args)``, ``latex`` being the
      LaTeX spelling of the name;
    * ``code[target](p, n)`` - generated code for ``numpy``, ``jax`` and ``torch`` (``"*"``: every target),
      returning (code, precedence); or ``assign[target](p, n, name)`` - the statements that compute it into
      the variable ``name`` (for the numerically careful forms: slogdet, shifted softmax).

    *Facts* for the other stages: ``letter`` (a named part's letter), ``nonnegative`` (the code rewrites),
    ``conditioned`` and ``avoid`` (where verify samples).

    Every node record has every rule its kind needs: ``tests/test_ops.py`` checks them in every consumer.
    """

    __slots__ = ("name", "aliases", "arity", "node", "matrix_arg", "forces_vector", "latex", "axis", "rows",
                 "spelled", "infer", "rule", "shape", "differential", "transpose", "forward", "contract", "numpy",
                 "sympy", "text", "unicode", "latex_form", "code", "assign", "letter", "nonnegative",
                 "conditioned", "avoid")

    def __init__(self, name: str, node: str | None, arity: tuple[int, int | None] = (1, 1), *,
                 aliases: tuple[str, ...] = (), matrix_arg: bool = False, forces_vector: bool = False,
                 latex: str | None = None, axis: bool = False, rows: str | None = None, spelled: bool = True,
                 infer: str | None = None, rule: str | None = None, shape: Callable | None = None,
                 differential: Callable | None = None,
                 transpose: Callable | None = None, forward: Callable | None = None,
                 contract: Callable | None = None,
                 numpy: Callable | None = None, sympy: Callable | None = None, text: Callable | None = None,
                 unicode: Callable | None = None, latex_form: Callable | None = None,
                 code: dict[str, Callable] | None = None, assign: dict[str, Callable] | None = None,
                 letter: str | None = None, nonnegative: bool = False, conditioned: bool = False,
                 avoid: Callable | None = None):
        self.name = name
        self.axis = axis
        self.rows = rows
        self.node = node
        self.arity = arity
        self.aliases = aliases
        self.matrix_arg = matrix_arg
        self.forces_vector = forces_vector or matrix_arg
        self.latex = latex if latex is not None else f"\\operatorname{{{name}}}"
        self.spelled = spelled
        #: the result shape the typechecker infers before any size is known: "scalar" (whatever the
        #: argument) or "same" (the argument's, for a square-matrix call); None where it has its own rule
        self.infer = infer
        #: the name of its differentiation rule in the steps (``determinant (Jacobi's formula)``)
        self.rule = rule or name
        self.shape = shape
        self.differential = differential
        self.transpose = transpose
        self.forward = forward
        self.contract = contract
        self.numpy = numpy
        self.sympy = sympy
        self.text = text
        self.unicode = unicode
        self.latex_form = latex_form
        self.code = code or {}
        self.assign = assign or {}
        #: the letter a named part gets in printed derivations (a softmax is a distribution s, P)
        self.letter = letter
        #: every entry is >= 0 (the code rewrites use it, e.g. sqrt of a weight)
        self.nonnegative = nonnegative
        #: its argument must be a well-conditioned square matrix: verify samples such matrices
        self.conditioned = conditioned
        #: ``avoid(n)`` -> (kind, node): where verify keeps its sample points away from, "kink" (‖u‖₁ at
        #: u = 0) or "nonzero" (‖u‖ at u = 0)
        self.avoid = avoid

    @property
    def has_rules(self) -> bool:
        """Whether this is the record of its node (it holds the node's rules)."""
        return self.differential is not None

    def code_rule(self, target: str) -> tuple[str, Callable] | None:
        """``("code", rule)`` or ``("assign", rule)`` for a code-generation target, or None."""
        for key in (target, "*"):
            if key in self.assign:
                return "assign", self.assign[key]
            if key in self.code:
                return "code", self.code[key]
        return None

    def __repr__(self) -> str:
        return f"Function({self.name!r})"

