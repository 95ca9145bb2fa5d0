"""Property: the generated code of every derivative equals ``evaluate()``, entry by entry, in NumPy, JAX and
PyTorch (issue #12: code rewrites once dropped an identity, and tensors with respect to a symmetric matrix
followed another convention than ``evaluate()``).

The expressions are those of the random-expression strategy of ``tests/test_property_derive.py`` (every
operator and function of the language). Half of them see ``A`` (or else ``B``) replaced by a symmetric ``S``. Each is
differentiated with respect to up to two of its variables in a random layout: first derivatives (gradients,
Jacobians, 3- and 4-way tensors) and, for scalar expressions, second derivatives (Hessians with respect to a
scalar, a vector, or a matrix, the last a 4-way tensor). Every derivative with generated code is run at a
random point in the three targets and compared with ``evaluate()`` there (``codegen_targets.differences``:
``|code - evaluate| <= 1e-7 |evaluate| + 1e-9 max(1, max |evaluate|)``).

CI runs ``CI_EXAMPLES`` fixed examples (about 15 s). ``MATCALC_LONG=1`` runs ``MATCALC_LONG_EXAMPLES``
(default 10,000) random ones; ``MATCALC_LONG_LOG`` appends one line per derivative (target outcomes),
``MATCALC_JAX_EVERY`` thins out JAX; see docs/verification.md for the recorded run.
"""

from __future__ import annotations

import os

import numpy as np
from codegen_targets import TARGETS, differences, run_code
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from test_property_derive import A, B, expr

from matcalc import MatcalcError, NoMatrixFormError
from matcalc import nodes as N
from matcalc.codegen import CodegenError
from matcalc.diff import derive
from matcalc.diff.linear import substitute
from matcalc.printing import to_text
from matcalc.shapes import Dim

LONG = os.environ.get("MATCALC_LONG") == "1"
CI_EXAMPLES = 40
MAX_EXAMPLES = int(os.environ.get("MATCALC_LONG_EXAMPLES", "10000")) if LONG else CI_EXAMPLES
LOG = os.environ.get("MATCALC_LONG_LOG")
#: JAX under jax.jit (MATCALC_JAX_JIT=0: eagerly). Compiling a JAX function costs about a second, far more
#: than everything else together, so the long run may run JAX on every k-th derivative only
#: (MATCALC_JAX_EVERY=k; NumPy and PyTorch always).
JIT = os.environ.get("MATCALC_JAX_JIT", "1") == "1"
JAX_EVERY = int(os.environ.get("MATCALC_JAX_EVERY", "1"))
_COUNT = [0]
S = N.Symbol("S", (Dim("n"), Dim("n")), True)
SIZES = {"n": 3, "m": 2}


def _log(line: str) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def _values(e, rng) -> dict:
    values = {}
    for s in N.symbols_of(e):
        shape = tuple(SIZES[d.name] if isinstance(d, Dim) else d for d in s.shape)
        if s.shape == ():
            values[s.name] = float(rng.uniform(-1, 1))
        elif s.shape[1] == 1:
            values[s.name] = rng.uniform(-1, 1, shape[0])
        else:
            v = rng.uniform(-1, 1, shape)
            values[s.name] = (v + v.T) / 2 if s.symmetric else v
    return values


def _compare(d, values) -> list[str]:
    """One outcome per target: ``same``, or ``DIFF`` (the test fails), or why there was nothing to compare."""
    try:
        with np.errstate(all="ignore"):
            want = np.asarray(d.evaluate(**values), dtype=np.float64)
    except MatcalcError:  # e.g. -n from tr(S - (S + a)): no argument fixes n, for evaluate() as for code
        return ["nosize"]
    if not np.all(np.isfinite(want)):
        return ["nonfinite"]
    out = []
    _COUNT[0] += 1
    for target in TARGETS:
        if target == "jax" and _COUNT[0] % JAX_EVERY:
            continue
        try:
            with np.errstate(all="ignore"):
                got = run_code(d, target, values, jit=JIT)
        except CodegenError:
            return ["nocode"]
        bad = differences(got, want)
        assert not bad, f"{target}: {to_text(d.function)} wrt {d.variable.name} (order {d.order}, {d.layout}) = " \
                        f"{d}\nat {values}\nfirst differences (index, code, evaluate): {bad[:3]}"
        out.append(f"{target}:same")
    return out


def _derivatives(e, v, order: int, layout: str):
    try:
        return [derive(e, v, layout=layout, order=order)]
    except NoMatrixFormError:
        return []


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=not LONG,
          phases=[Phase.explicit, Phase.generate] if LONG else list(Phase),  # long run: report, never shrink
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data(), kind=st.sampled_from(["s", "s", "s", "v", "M"]), symmetric=st.booleans())
def test_generated_code_equals_evaluate(data, kind, symmetric):
    e = data.draw(expr(kind, 5), label="expression")
    matrices = [M for M in (A, B) if M in N.symbols_of(e)]
    if symmetric and matrices:
        e = substitute(e, {matrices[0]: S})
    if not N.symbols_of(e):  # (the substitution may simplify: A (x - x) -> 0)
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31), label="seed"))
    values = _values(e, rng)
    chosen = data.draw(st.lists(st.sampled_from(N.symbols_of(e)), min_size=1, max_size=2, unique=True), label="wrt")
    for v in chosen:
        layout = data.draw(st.sampled_from(["numerator", "denominator"]), label="layout")
        orders = [1, 2] if e.shape == () else [1]
        for order in orders:
            for d in _derivatives(e, v, order, layout):
                if getattr(d, "expr", None) is None:  # a tensor with no Kronecker form: evaluate() only
                    _log("novec")
                    continue
                outcome = _compare(d, values)
                kind_ = "tensor" if hasattr(d, "kronecker") else ("hessian" if order == 2 else "matrix")
                sym = "sym" if getattr(d.variable, "symmetric", False) else ""
                event(f"{kind_}{sym}: {outcome[-1]}")
                _log(f"{kind_}{sym} " + " ".join(outcome))
