"""Run a derivative's generated code in NumPy, JAX or PyTorch and compare it with ``evaluate()``, entry by
entry (shared by the regression tests of issue #12 and the code-generation property test)."""

from __future__ import annotations

import importlib.util

import numpy as np

from matcalc.codegen import compile_numpy, generate
from matcalc.nodes import symbols_of

#: NumPy always; JAX and PyTorch where they are installed (CI installs both: the `jax` and `torch` extras)
TARGETS = ("numpy",) + tuple(t for t in ("jax", "torch") if importlib.util.find_spec(t) is not None)


def run_code(d, target: str, values: dict, jit: bool = True) -> np.ndarray:
    """The value the generated ``target`` code returns at ``values``, as a float64 ndarray. Only the
    function's parameters are passed (a Hessian with respect to a matrix is the tensor of the gradient,
    whose function may have lost a variable of the expression, e.g. an added constant)."""
    names = {s.name for s in symbols_of(d.function)} | {s.name for s in symbols_of(d.expr)}
    values = {k: v for k, v in values.items() if k in names}
    if target == "numpy":
        return np.asarray(compile_numpy(d)(**values), dtype=np.float64)
    namespace: dict = {}
    exec(generate(d, target, name="f"), namespace)  # noqa: S102 - matcalc's own generated code
    if target == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        f = jax.jit(namespace["f"]) if jit else namespace["f"]
        return np.asarray(f(**values), dtype=np.float64)
    import torch

    tensors = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in values.items()}
    out = namespace["f"](**tensors)
    return np.asarray(out.numpy() if torch.is_tensor(out) else out, dtype=np.float64)


def differences(got, want, rtol: float = 1e-7, floor: float = 1e-9) -> list[tuple]:
    """The entries where ``got`` and ``want`` differ: ``|got - want| > rtol |want| + floor max(1, max|want|)``
    (each entry against its own magnitude; the floor, relative to the largest entry, absorbs the rounding
    of entries that cancel). A shape mismatch is one difference, at index None."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return [(None, got.shape, want.shape)]
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    bad = ~(np.abs(got - want) <= rtol * np.abs(want) + floor * scale)
    return [(tuple(int(i) for i in k), float(got[tuple(k)]), float(want[tuple(k)])) for k in np.argwhere(bad)]
