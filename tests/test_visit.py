"""The one visitor and transformer (matcalc/visit.py), and every consumer handling every node class.

A new node class that one evaluator, printer or the differentiator forgets fails here, rather than with a
NotImplementedError in a user's derivation.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import matcalc
from matcalc import nodes as N
from matcalc import simplify as S
from matcalc.codegen.printer import CodePrinter
from matcalc.codegen.targets import JaxPrinter, NumpyPrinter, TorchPrinter
from matcalc.diff.linear import substitute
from matcalc.diff.rules import Differentiator
from matcalc.numeric import NumpyEvaluator
from matcalc.printing.latex import LatexPrinter
from matcalc.printing.readback import RawViews
from matcalc.printing.text import TextPrinter
from matcalc.printing.unicode import UnicodePrinter
from matcalc.sympy_backend import ExplicitBuilder
from matcalc.visit import Transformer, Visitor, find_method

#: Every concrete node class of the language.
NODE_CLASSES = sorted((c for name, c in vars(N).items() if inspect.isclass(c) and issubclass(c, N.Node)
                       and c not in (N.Node, N.Call) and not name.startswith("_")), key=lambda c: c.__name__)
#: Every consumer that dispatches on the node class, with its method prefix.
CONSUMERS = [(NumpyEvaluator, "_eval_"), (ExplicitBuilder, "_build_"), (TextPrinter, "_print_"),
             (UnicodePrinter, "_print_"), (LatexPrinter, "_print_"), (NumpyPrinter, "_print_"),
             (JaxPrinter, "_print_"), (TorchPrinter, "_print_"), (Differentiator, "d_"),
             (S.Rebuild, "transform_"), (RawViews, "_view_")]


def _handles(consumer: type, prefix: str, cls: type) -> bool:
    if any(hasattr(consumer, prefix + k.__name__) for k in cls.__mro__):
        return True
    if issubclass(consumer, CodePrinter):  # computed by statements instead (np.linalg.slogdet ...)
        return cls in consumer.statement_nodes and hasattr(consumer, "_assign_" + cls.__name__)
    # a transformer's fallback rebuilds any node as is
    return issubclass(consumer, Transformer)


def test_the_node_classes_are_all_found():
    names = {c.__name__ for c in NODE_CLASSES}
    assert {"Symbol", "Apply", "Det", "Softmax", "Kron", "MatrixLit", "Pi"} <= names
    assert len(NODE_CLASSES) >= 30


@pytest.mark.parametrize("consumer,prefix", CONSUMERS, ids=lambda v: getattr(v, "__name__", v))
def test_every_consumer_handles_every_node_class(consumer, prefix):
    missing = [c.__name__ for c in NODE_CLASSES if not _handles(consumer, prefix, c)]
    assert not missing, f"{consumer.__name__} has no {prefix}<Class> for {missing}"


def test_dispatch_follows_the_mro_with_a_fallback():
    class Base:
        pass

    class Derived(Base):
        pass

    class Other:
        pass

    class Owner:
        def go_Base(self, x):
            return ("base", x)

        def go_Other(self, x):
            return ("other", x)

    owner = Owner()
    assert find_method(owner, "go_", Derived)(1) == ("base", 1)  # inherited along the MRO
    assert find_method(owner, "go_", Other)(2) == ("other", 2)
    assert find_method(owner, "go_", int) is None  # the caller's fallback takes over
    assert find_method(owner, "go_", Derived)(3) == ("base", 3)  # from the cache, still bound


class _Counter(Visitor):
    """Counts the symbols under each node (so a shared subtree counts twice) and the calls made."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def apply(self, node):
        self.calls += 1
        if isinstance(node, N.Symbol):
            return 1
        return sum(self.value(c) for c in node.children)


def test_the_visitor_computes_each_shared_node_once():
    x = N.Symbol("x", (3, 1))
    e = x
    for _ in range(40):  # a DAG of 41 nodes whose tree has 2**40 leaves
        e = N.Add(e, e)
    counter = _Counter()
    assert counter.visit(e) == 2 ** 40
    assert counter.calls == 41
    assert counter.visit(e) == 2 ** 40 and counter.calls == 41  # memoised across calls


def test_the_visitor_does_not_recurse():
    e = N.Symbol("x", (3, 1))
    for _ in range(20000):
        e = N.Neg(e)
    assert _Counter().visit(e) == 1


def test_a_visitor_without_a_method_raises():
    with pytest.raises(NotImplementedError, match="Visitor has no method for Symbol"):
        Visitor().visit(N.Symbol("x", (3, 1)))


def test_the_transformer_keeps_unchanged_nodes_and_substitutes():
    e = matcalc.parse("A x + exp(x) where A: matrix(3, 3), x: vector(3)")
    assert Transformer().visit(e) is e
    x, y = N.Symbol("x", (3, 1)), N.Symbol("y", (3, 1))
    swapped = Transformer().seed([(x, y)]).visit(e)
    assert swapped is matcalc.parse("A y + exp(y) where A: matrix(3, 3), y: vector(3)")
    assert substitute(e, {x: y}) is swapped


def test_simplify_rebuilds_through_the_smart_constructors():
    x = N.Symbol("x", (3, 1))
    raw = N.Add(N.Transpose(N.Transpose(x)), x)  # (xᵀ)ᵀ + x, built without the simplifier
    out = S.simplify(raw)
    assert matcalc.to_text(out) == "2 x"
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(matcalc.evaluate(out, x=v), matcalc.evaluate(raw, x=v))
