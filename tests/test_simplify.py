"""The simplifier's rules, one by one: each named rule of ``matcalc.simplify.RULES`` turns its own
``before`` example into its ``after`` example, the rule itself is what fires, and the rewrite keeps the
value (checked with NumPy at random points)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from finite_differences import random_values

import matcalc
from matcalc import nodes as N
from matcalc import parse, to_text, to_unicode
from matcalc import simplify as S
from matcalc.numeric import evaluate
from matcalc.sympy_backend import default_sizes

ALL_RULES = [(kind, i, r) for kind, rules in S.RULES.items() for i, r in enumerate(rules)]


def before_node(rule):
    """The rule's ``before`` example as a node; the parser itself reads ``A^-1`` as ``inv(A)``, so that one
    example is built from the node classes, as the differentiation rules build it."""
    if (rule.kind, rule.name) == ("Power", "matrix inverse"):
        A = parse("A where A: matrix(n, n)")
        return N.Power(A, N.Number(-1))
    return parse(rule.before)


def test_every_node_type_has_its_list():
    assert {"Add", "MatMul", "Hadamard", "Div", "Transpose", "Inv", "DiagMat", "DiagVec", "Sum", "Dot", "Trace",
            "Power", "ElemPower"} <= set(S.RULES)
    names = [(r.kind, r.name) for _, _, r in ALL_RULES]
    assert len(names) == len(set(names)), "rule names are unique within a node type"
    assert not hasattr(S, "apply") and not hasattr(S, "_EXPANDING")


@pytest.mark.parametrize("kind,index,rule", ALL_RULES, ids=[f"{k}: {r.name}" for k, _, r in ALL_RULES])
def test_rule_before_after(kind, index, rule, monkeypatch):
    fired = []

    def spy(*operands):
        out = rule.fn(*operands)
        if out is not None:
            fired.append(out)
        return out

    patched = list(S.RULES[kind])
    patched[index] = dataclasses.replace(rule, fn=spy)
    monkeypatch.setitem(S.RULES, kind, patched)
    S.clear_caches()  # a transpose memoised under the unpatched rules would hide the spy
    before = before_node(rule)
    got = S.simplify(before)
    assert fired, f"{rule!r} did not fire on {rule.before}"
    want = S.simplify(parse(rule.after))
    assert got is want, f"{rule.before} -> {to_text(got)}, expected {rule.after}"


@pytest.mark.parametrize("kind,index,rule", ALL_RULES, ids=[f"{k}: {r.name}" for k, _, r in ALL_RULES])
def test_rule_keeps_the_value(kind, index, rule):
    before = before_node(rule)
    after = S.simplify(before)
    sizes = {str(k): v for k, v in default_sizes(before).items()}
    for seed in (1, 2):
        values = random_values(before, seed=seed, positive=("b",))
        want = np.asarray(evaluate(before, values, sizes=sizes), float)
        got = np.asarray(evaluate(after, values, sizes=sizes), float)
        np.testing.assert_allclose(np.broadcast_to(got, want.shape) if got.shape != want.shape else got, want,
                                   rtol=1e-9, atol=1e-12)


# --- the issue's cases, whole ----------------------------------------------------------------------
@pytest.mark.parametrize("text,decls,printed", [
    # like terms collected over the whole sum (no "2 y + 2 ⋅ -y")
    ("2 y + 2 z + 2 (-y) + 2 (-z) + 4 w", dict(w="scalar", y="scalar", z="scalar"), "4 w"),
    # signs folded to the front, not hidden in a difference
    ("inv(S) (y - x) (x - y)' inv(S)", {}, "-(S⁻¹ (x - y) (x - y)ᵀ S⁻¹)"),
    # numbers cancel across a quotient
    ("(2 (X w - y)) ./ (2 sqrt((X w - y).^2 + 1))", {}, "(X w - y) ⊘ sqrt((X w - y)⊙² + 1)"),
    ("(2 a) / (4 a b)", {}, "0.5 / b"),
    # a scalar quotient is one product of powers
    ("1 / (norm(x) (norm(x) norm(y))^2) norm(y)", {}, "1 / (‖x‖³ ‖y‖)"),
    # a product's vector quotient: the scalar leaves the chain, I disappears
    ("(I / det(X)) inv(X)", {}, "X⁻¹ / det(X)"),
    # exp(u)ᵏ / (exp(u) + 1)ᵏ is a power of the sigmoid
    ("exp(a)^2 / (exp(a) + 1)^2", {}, "σ(a)²"),
    # the bias gradient of the training notebook
    ("(1 - y)' s + y' (s - 1)", {}, "sum(s - y)"),
])
def test_issue_cases(text, decls, printed):
    node = parse(text, **decls)
    out = S.simplify(node)
    assert to_unicode(out) == printed
    values = random_values(node, seed=4, positive=("b",))
    sizes = {str(k): v for k, v in default_sizes(node).items()}
    np.testing.assert_allclose(np.asarray(evaluate(out, values, sizes=sizes), float),
                               np.asarray(evaluate(node, values, sizes=sizes), float), rtol=1e-9)


@pytest.mark.parametrize("text,decls", [
    ("0.5 inv(S) - 0.5 inv(S) (x - m) (x - m)' inv(S)", {"S": "symmetric(n)"}),
    ("A' diag(d) A", {"d": "vector(n)"}),
    ("inv(S) v v' inv(S)", {"S": "symmetric(n)"}),
    ("A + A' + B' B", {}),
])
def test_symmetric_expressions_are_their_own_transpose(text, decls):
    g = S.simplify(parse(text, **decls))
    assert S.transpose(g) is g
    # so the symmetric gradient (G + Gᵀ)/2 of an already symmetric G is G
    from matcalc.diff.derivative import _symmetrise

    assert _symmetrise(g) is g


def test_the_printed_form_does_not_depend_on_where_the_nodes_live_in_memory():
    """Nodes hash by identity, so a set of nodes iterates by memory address: a rule that walked one chose
    its common factor by address, and the Hessian of a product of five sums printed one of two forms from
    run to run (found by comparing two trees' outputs on a corpus). Rebuild the nodes at other addresses
    (the old ones collected, other objects allocated in between) and require one printed form."""
    import gc
    import random

    rng = random.Random(5)
    forms = set()
    for _ in range(12):
        junk = [bytearray(rng.randint(16, 200)) for _ in range(rng.randint(0, 3000))]
        e = matcalc.parse("(x + (x + x)) .* ((x + (x + x)) .* ((x + (x + x)) .* ((x + (x + x)) .* x)))")
        d = matcalc.derive(e, "x", layout="denominator", warn=False)
        forms.add(d.text(named=False))
        np.testing.assert_allclose(d.evaluate(x=np.array([0.5, -1.0])), np.diag([5 * 81 * 0.5**4, 5 * 81]))
        del e, d
        gc.collect()
        del junk[::2]
    assert len(forms) == 1, forms
