"""Issue #19: the code-generation rewrites that made layer norm's generated backward pass faster than
``jax.value_and_grad``. Each test checks the VALUE of the rewritten expression or generated code against
``matcalc.numeric.evaluate`` of the original, not only its form."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from codegen_targets import TARGETS, run_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_property_derive import expr  # the random expressions of every operator and function

import matcalc
from matcalc import nodes as N
from matcalc.codegen import NumpyPrinter, compile_joint, compile_numpy, generate_joint
from matcalc.codegen.broadcast import hadamard_factors
from matcalc.codegen.products import share_products
from matcalc.codegen.rewrite import for_evaluation
from matcalc.numeric import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

DECLS = {"A": "matrix(m,n)", "B": "matrix(m,n)", "C": "matrix(m,n)", "D": "matrix(m,n)", "u": "vector(m)",
         "v": "vector(n)", "x": "vector(m)", "y": "vector(m)"}
SIZES = {"m": 4, "n": 3}


def _parse(text: str) -> N.Node:
    return matcalc.parse(text, warn=False, **DECLS)


def _values(rng) -> dict:
    out = {k: rng.standard_normal((4, 3)) for k in "ABCD"}
    out.update(u=rng.uniform(0.5, 2.0, 4), v=rng.uniform(0.5, 2.0, 3), x=rng.standard_normal(4),
               y=rng.uniform(0.5, 2.0, 4))
    return out


def _same_value(new: N.Node, old: N.Node, values: dict) -> None:
    np.testing.assert_allclose(evaluate(new, values, sizes=SIZES), evaluate(old, values, sizes=SIZES),
                               rtol=1e-12, atol=1e-12)


def _walk(node: N.Node):
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            yield n
            stack.extend(n.children)


def test_a_pair_of_factors_two_products_share_is_one_node():
    rng = np.random.default_rng(1)
    first, second = _parse("(A .* B) .* C"), _parse("(C .* D) .* A")  # no common node before: A ⊙ C
    new = share_products([first, second])
    a, c = _parse("A"), _parse("C")
    shared = [n for n in _walk(new[0]) if isinstance(n, N.Hadamard) and set(map(id, n.args)) == {id(a), id(c)}]
    assert shared and any(n is shared[0] for n in _walk(new[1])), [matcalc.to_text(r) for r in new]
    values = _values(rng)
    for n, o in zip(new, [first, second], strict=True):
        _same_value(n, o, values)


def test_a_repeated_factor_pairs_with_itself():
    rng = np.random.default_rng(2)
    first, second = _parse("(A .* A) .* B"), _parse("A .* (C .* A)")
    new = share_products([first, second])
    a = _parse("A")
    square = [n for n in _walk(new[0]) if isinstance(n, N.Hadamard) and [id(f) for f in n.args] == [id(a)] * 2]
    assert square and any(n is square[0] for n in _walk(new[1]))
    for n, o in zip(new, [first, second], strict=True):
        _same_value(n, o, _values(rng))


def test_equal_factor_lists_become_one_node_whatever_their_order():
    first, second = _parse("(A .* B) .* C"), _parse("C .* (B .* A)")
    assert first is not second
    new = share_products([_parse("sum(A)") , first, second])  # two roots that are the same product
    assert new[1] is new[2]
    _same_value(new[2], second, _values(np.random.default_rng(3)))


def test_broadcast_vectors_are_multiplied_before_they_are_broadcast():
    e = _parse("A .* (u ones(n)') .* B .* (y ones(n)')")
    new = share_products([e])[0]
    bcasts = [f for f in hadamard_factors(new) if isinstance(f, N.MatMul)]
    assert len(bcasts) == 1 and isinstance(bcasts[0].args[0], N.Hadamard)  # (u ⊙ y) 𝟙ᵀ: m products, not m n
    _same_value(new, e, _values(np.random.default_rng(4)))


@pytest.mark.parametrize("text, vector", [
    ("(A .* (u ones(n)')) ones(n)", "u"),            # a row sum of a row-constant factor: u ⊙ (A 𝟙)
    ("ones(m)' (A .* (ones(m) v'))", "v'"),           # a column sum of a column-constant factor
    ("(A .* B .* (u ones(n)') .* (x ones(n)')) ones(n)", "u"),
])
def test_sums_pull_out_the_factor_constant_along_the_summed_axis(text, vector):
    e = _parse(text)
    new = for_evaluation(e)
    assert isinstance(new, N.Hadamard) and any(f is _parse(vector) for f in new.args), matcalc.to_text(new)
    sums = [n for n in _walk(new) if isinstance(n, N.MatMul) and any(isinstance(f, N.Ones) for f in _walk(n))]
    assert all(_parse(vector) not in list(_walk(s)) for s in sums)  # the sum no longer multiplies by it
    _same_value(new, e, _values(np.random.default_rng(5)))


def test_every_power_of_a_divisor_divides_by_one_reciprocal():
    e = _parse("A ./ ((u ones(n)').^2) + B ./ (u ones(n)')")
    new = for_evaluation(e)
    reciprocal = _parse("1 ./ u")
    assert sum(1 for n in _walk(new) if n is reciprocal) == 1 and not any(
        isinstance(n, N.ElemDiv) and n is not reciprocal for n in _walk(new))
    _same_value(new, e, _values(np.random.default_rng(6)))


def test_vector_divisions_share_the_reciprocal_in_generated_code():
    d = matcalc.derive("sum(x ./ y) + sum((x .* x) ./ y)", wrt="x", warn=False, x="vector(m)", y="vector(m)")
    body = d.to_numpy().split("from None")[1]
    assert body.count("1.0 / y") == 1 and "/ y" not in body.replace("1.0 / y", ""), body
    values = {"x": np.arange(1.0, 5.0), "y": np.array([0.5, 2.0, 3.0, 4.0])}
    np.testing.assert_allclose(compile_numpy(d)(**values), d.evaluate(values), rtol=1e-12)


def _run_printed(node: N.Node, values: dict):
    names = {s: s.name for s in N.symbols_of(node)}
    code = NumpyPrinter(names, {"m": "m", "n": "n"}).code(node)
    return code, eval(code, {"np": np, **values, **SIZES})  # noqa: S307 - matcalc's own printed code


@pytest.mark.parametrize("text, spelled, absent", [
    ("A .* (u ones(n)')", "A * u[:, None]", "broadcast_to"),  # broadcast by the product, no m x n copy
    ("(ones(m) v') ./ A + B", "v / A + B", "broadcast_to"),
    ("A - (u ones(n)')", "A - u[:, None]", "broadcast_to"),
    ("u ones(n)'", "broadcast_to", None),  # alone it must be the whole matrix
    ("(u ones(n)') .* (ones(m) v')", "broadcast_to", None),  # no whole matrix to broadcast against
    ("(A .* B)' ones(m)", "np.sum(A * B, 0)", ".T"),  # the column sums, not the row sums of a transpose
    ("ones(n)' (A .* B)'", "np.sum(A * B, 1)", ".T"),
])
def test_printed_spellings_compute_the_same_matrix(text, spelled, absent):
    e = _parse(text)
    values = _values(np.random.default_rng(7))
    code, got = _run_printed(e, values)
    assert spelled in code and (absent is None or absent not in code), code
    want = evaluate(e, values, sizes=SIZES)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _layer_norm():
    import bench_layers

    derivs, _ = bench_layers.derive("layer norm")
    rng = np.random.default_rng(8)
    values = {k: v for k, v in bench_layers.data("layer norm", 6, 5, rng).items() if k != "c"}
    return derivs, values


def test_layer_norm_shares_the_normalised_input_and_one_reciprocal():
    derivs, values = _layer_norm()
    src = generate_joint(derivs, "numpy")
    body = src.split("from None")[1]
    assert body.count("np.sqrt(") == 1 and re.search(r"t\d+ = 1\.0 / np\.sqrt\(", body), body
    # x̂ = (X - mean) ⊙ (1/σ) is one temporary, used by the value, d/dX and d/dg
    xhat = re.search(r"(t\d+) = (t\d+) \* (t\d+)\[:, None\]", body)
    assert xhat and len(re.findall(rf"\b{xhat.group(1)}\b", body)) >= 4, body
    assert "broadcast_to" not in body and ".T, " not in body, body
    got = compile_joint(derivs)(**values)
    want = [evaluate(derivs[0].function, values)] + [d.evaluate(values) for d in derivs]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("target", [t for t in TARGETS if t != "numpy"])
def test_layer_norm_generated_jax_and_torch_agree_with_evaluate(target):
    derivs, values = _layer_norm()
    namespace: dict = {}
    exec(generate_joint(derivs, target), namespace)  # noqa: S102 - matcalc's own generated code
    fn = next(v for k, v in namespace.items() if k.startswith("value_and_grad"))
    if target == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        fn = jax.jit(fn)
    else:
        import torch

        values = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in values.items()}
    got = fn(**values)
    plain = {k: np.asarray(v) for k, v in values.items()}
    want = [evaluate(derivs[0].function, plain)] + [d.evaluate(plain) for d in derivs]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g, dtype=float), w, rtol=1e-10, atol=1e-12)


def test_a_broadcast_of_a_shared_sum_is_printed_after_the_sum_it_uses():
    # found by the long property run: 𝟙 𝟙ᵀ C inside a product was printed as the bare row 𝟙ᵀ C, a node
    # the plan had made a temporary computed later (NameError in the generated function)
    text = ("sum((((C + C) - ones(n) ((ones(n)' ((ones(n) ((ones(n)' C) / numel(ones(n)))) .* C)) / numel(ones(n))))"
            " - C) C' x - logsumexp((((C + C) - ones(n) ((ones(n)' ((ones(n) ((ones(n)' C) / numel(ones(n)))) .* C))"
            " / numel(ones(n)))) - C) C' x))")
    e = matcalc.parse(text, warn=False, C="symmetric(n)", x="vector(n)")
    rng = np.random.default_rng(9)
    c = rng.standard_normal((3, 3))
    values = {"C": c + c.T, "x": rng.standard_normal(3)}
    for d in (matcalc.derive(e, wrt="x", warn=False), matcalc.derive(e, wrt="x", order=2, warn=False)):
        for target in TARGETS:
            np.testing.assert_allclose(run_code(d, target, values), np.asarray(d.evaluate(values)), rtol=1e-7,
                                       atol=1e-9)


@pytest.mark.parametrize("text", [
    "A .* ((c .* u) ones(n)')",            # a scalar inside the broadcast vector's product: not a factor
    "A .* ((u .* c) ones(n)') .* B",
    "(A .* ((c .* u) ones(n)')) ones(n)",
    "A .* ((u .* y) ones(n)') .* B + C .* (y ones(n)') .* B",  # y 𝟙ᵀ ⊙ B shared after opening (u ⊙ y) 𝟙ᵀ
])
def test_broadcast_vectors_of_products_are_opened_only_into_vectors(text):
    e = matcalc.parse(text, warn=False, c="scalar", **DECLS)
    values = {**_values(np.random.default_rng(10)), "c": 1.7}
    _same_value(share_products([for_evaluation(e)])[0], e, values)
    d = matcalc.derive(f"sum({text})" if e.shape != () else text, wrt="A", warn=False, c="scalar", **DECLS)
    for target in TARGETS:
        np.testing.assert_allclose(run_code(d, target, values), np.asarray(d.evaluate(values)), rtol=1e-10)


# --- property: the rewrites keep the value of random expressions ---------------------------------------------------
PROPERTY_SIZES = {"n": 3, "m": 2}
LONG = os.environ.get("MATCALC_LONG") == "1"


def _random_values(e_list, rng) -> dict:
    values = {}
    for e in e_list:
        for s in N.symbols_of(e):
            shape = tuple(PROPERTY_SIZES[d.name] if hasattr(d, "name") else d for d in s.shape)
            values[s.name] = float(rng.uniform(-1, 1)) if s.shape == () else (
                rng.uniform(-1, 1, shape[0]) if s.shape[1] == 1 else rng.uniform(-1, 1, shape))
    return values


@settings(max_examples=3000 if LONG else 60, deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(st.data())
def test_rewritten_random_expressions_keep_their_values(data):
    """for_evaluation and share_products over two random expressions (of every operator and function of the
    language, as tests/test_property_derive.py draws them) evaluate as the originals do."""
    roots = [data.draw(expr(data.draw(st.sampled_from(["s", "v", "M", "C"])))) for _ in range(2)]
    new = share_products([for_evaluation(r) for r in roots])
    values = _random_values(roots, np.random.default_rng(data.draw(st.integers(0, 2**31))))
    for n, o in zip(new, roots, strict=True):
        with np.errstate(all="ignore"):
            try:
                want = np.asarray(evaluate(o, values, sizes=PROPERTY_SIZES), dtype=float)
            except matcalc.MatcalcError:
                continue
            got = np.asarray(evaluate(n, values, sizes=PROPERTY_SIZES), dtype=float)
        finite = np.isfinite(want)
        assert np.array_equal(finite, np.isfinite(got))
        scale = max(1.0, np.abs(want[finite]).max(initial=0))
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-9, atol=1e-9 * scale)
