"""Speed of matcalc's generated backward passes for a transformer's layers (issue #19): the value and every
gradient of a scalar loss of single-head attention and of layer norm, against autodiff.

    python bench/bench_layers.py             # L = 128 and 512, width 64, float64 and float32 (a few minutes)
    python bench/bench_layers.py --smoke     # L = 8, width 4, float64, few repeats (for CI)

Problems (G a constant matrix, so each loss is the layer's output paired with an upstream gradient):

- attention: ``sum(G .* (softmax(Q K' / sqrt(d) + M) V))``, value and d/dQ, d/dK, d/dV (M a constant mask);
- layer norm over the rows with gain and bias: ``sum(G .* ((X - mean(X, axis=1)) ./ sqrt(var(X, axis=1) +
  eps) .* g' + b'))``, value and d/dX, d/dg, d/db.

Each is given to matcalc in the language's row-wise form (issue #15: ``softmax`` of a matrix, ``axis=``,
broadcasting) when this matcalc parses it, otherwise in the equivalent form with explicit ones vectors
(``exp(S) ./ (exp(S) 1 1ᵀ)``, ``X 1 1ᵀ / c`` with ``c`` the width, a scalar argument); the table says
which. The matcalc columns run ONE generated function returning the value and the three gradients
(:func:`matcalc.codegen.generate_joint`), so work the gradients share is done once. Against it:
``jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))`` and torch autograd (the forward pass, then
``torch.autograd.grad`` of the loss: forward plus backward; eager, with ``torch.softmax``'s fused
kernel), plus the generated JAX code under ``jax.jit``.

Timing as bench_codegen.py: one thread per library (the process pinned to one CPU), min over ``--repeat``
interleaved runs of the mean time of one call, each run >= 50 ms; JAX calls blocked on. Every column is
checked against jax (or, without JAX, against generated NumPy) before timing. Generated NumPy code
computes in float64 whatever its input (it converts with ``np.asarray(x, float)``).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys

import bench_codegen  # first: it sizes the thread pools (one thread, one CPU) before NumPy, JAX and torch load

THREADS = bench_codegen.THREADS

import numpy as np  # noqa: E402
from _util import Targets, load_line, optional, table  # noqa: E402
from bench_codegen import bench_all, fmt, jit_compiled, ratio  # noqa: E402

import matcalc  # noqa: E402
from matcalc.codegen import compile_joint, generate_joint  # noqa: E402
from matcalc.errors import MatcalcError  # noqa: E402

jax = optional("jax")
torch = optional("torch")
if jax is not None:
    jnp = jax.numpy

#: name -> (spec form, explicit-ones form, declarations, wrt); both forms take the same arguments
PROBLEMS: dict[str, tuple] = {
    "attention": (
        "sum(G .* (softmax(Q K' / sqrt(d) + M) V))",
        "sum(G .* ((exp(Q K' / sqrt(d) + M) ./ (exp(Q K' / sqrt(d) + M) ones(m) ones(m)')) V))",
        {"Q": "matrix(m,k)", "K": "matrix(m,k)", "V": "matrix(m,k)", "M": "matrix(m,m)", "G": "matrix(m,k)",
         "d": "scalar"},
        ["Q", "K", "V"]),
    "layer norm": (
        "sum(G .* ((X - mean(X, axis=1)) ./ sqrt(var(X, axis=1) + eps) .* g' + b'))",
        "sum(G .* ((X - X ones(k) ones(k)' / c) ./ sqrt(((X - X ones(k) ones(k)' / c) .* (X - X ones(k) ones(k)' / c))"
        " ones(k) ones(k)' / c + eps) .* (ones(m) g') + ones(m) b'))",
        {"X": "matrix(m,k)", "G": "matrix(m,k)", "g": "vector(k)", "b": "vector(k)", "eps": "scalar",
         "c": "scalar"},
        ["X", "g", "b"]),
}


def derive(name: str):
    """The joint derivatives and which form of the text was used ("row-wise" or "explicit ones")."""
    spec, explicit, decls, wrt = PROBLEMS[name]
    try:
        return matcalc.derive(spec, wrt=wrt, layout="denominator", warn=False, **decls), "row-wise"
    except MatcalcError:
        return matcalc.derive(explicit, wrt=wrt, layout="denominator", warn=False, **decls), "explicit ones"


def data(name: str, length: int, width: int, rng) -> dict:
    if name == "attention":
        mask = np.where(np.tril(np.ones((length, length))) > 0, 0.0, -1e4)  # causal; exp(-1e4) is 0
        return {**{v: rng.standard_normal((length, width)) for v in "QKVG"}, "M": mask, "d": float(width)}
    return {"X": rng.standard_normal((length, width)) * 2 + 1, "G": rng.standard_normal((length, width)),
            "g": rng.standard_normal(width), "b": rng.standard_normal(width), "eps": 1e-5, "c": float(width)}


def losses(lib):
    """The two losses written for jax.numpy or torch, taking the differentiated arguments first."""
    if lib == "jax":
        def attention(Q, K, V, M, G, d):
            return jnp.sum(G * (jax.nn.softmax(Q @ K.T / jnp.sqrt(d) + M, axis=-1) @ V))

        def layer_norm(X, g, b, G, eps):
            c = X - X.mean(axis=1, keepdims=True)
            return jnp.sum(G * (c / jnp.sqrt(c.var(axis=1, keepdims=True) + eps) * g + b))
        return {"attention": attention, "layer norm": layer_norm}

    def attention_t(Q, K, V, M, G, d):
        return torch.sum(G * (torch.softmax(Q @ K.T / d ** 0.5 + M, dim=-1) @ V))

    def layer_norm_t(X, g, b, G, eps):
        c = X - X.mean(dim=1, keepdim=True)
        return torch.sum(G * (c / torch.sqrt((c * c).mean(dim=1, keepdim=True) + eps) * g + b))
    return {"attention": attention_t, "layer norm": layer_norm_t}


def _ordered(name: str, values: dict) -> list:
    """The arguments of the hand-written losses: the differentiated ones first."""
    order = {"attention": "Q K V M G d", "layer norm": "X g b G eps"}[name].split()
    return [values[k] for k in order]


def _agree(got, want, dtype) -> None:
    rtol, atol = (1e-9, 1e-9) if dtype == np.float64 else (2e-3, 2e-3)
    for a, b in zip(got, want, strict=True):
        a, b = np.asarray(a, float), np.asarray(b, float)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * max(1.0, np.abs(b).max()))


def columns(name, derivs, values, dtype, use_jax, use_torch) -> tuple[dict, dict]:
    """The functions to time (each computes the value and all three gradients), and JAX compile times."""
    gen = compile_joint(derivs)
    own = set(inspect.signature(gen).parameters)  # the row-wise form has no width argument c
    values = {k: v for k, v in values.items() if k != "c" or k in own}
    cast = {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in values.items()}
    reference = gen(**values)
    fs = {"gen NumPy": lambda: gen(**cast)}
    compiles = {}
    if use_jax:
        jargs = {k: jnp.asarray(v) for k, v in cast.items()}
        ref = jax.value_and_grad(losses("jax")[name], argnums=(0, 1, 2))
        cj, compiles["jax"] = jit_compiled(ref, _ordered(name, jargs))
        value, grads = cj(*_ordered(name, jargs))
        reference = (value, *grads)
        namespace: dict = {}
        exec(generate_joint(derivs, "jax"), namespace)  # noqa: S102 - matcalc's own codegen
        fn = namespace[next(k for k in namespace if k.startswith("value_and_grad"))]
        params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
        gj, compiles["gen"] = jit_compiled(fn, [jargs[p] for p in params])
        _agree(gj(*[jargs[p] for p in params]), reference, dtype)
        fs["gen JAX"] = lambda: jax.block_until_ready(gj(*[jargs[p] for p in params]))
        fs["jax"] = lambda: jax.block_until_ready(cj(*_ordered(name, jargs)))
    _agree(fs["gen NumPy"](), reference, np.float64 if not use_jax else dtype)
    if use_torch:
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        targs = {k: torch.as_tensor(v, dtype=tdtype) if isinstance(v, np.ndarray) else v for k, v in cast.items()}
        namespace = {}
        exec(generate_joint(derivs, "torch"), namespace)  # noqa: S102 - matcalc's own codegen
        gt = namespace[next(k for k in namespace if k.startswith("value_and_grad"))]
        loss = losses("torch")[name]

        def autograd():
            args = _ordered(name, targs)
            leaves = [a.detach().requires_grad_() for a in args[:3]]
            value = loss(*leaves, *args[3:])
            return (value, *torch.autograd.grad(value, leaves))
        _agree([x.detach().numpy() for x in autograd()], reference, dtype)
        tparams = {k: targs[k] for k in inspect.signature(gt).parameters}
        _agree([np.asarray(x) for x in gt(**tparams)], reference, dtype)
        fs["gen torch"] = lambda: gt(**tparams)
        fs["torch"] = autograd
    return fs, compiles


def run(lengths, width, dtypes, repeat, min_run, use_jax, use_torch):
    rng = np.random.default_rng(0)
    rows, results = [], []
    for name in PROBLEMS:
        derivs, form = derive(name)
        for length in lengths:
            values = data(name, length, width, rng)
            for dtype in dtypes:
                fs, comp = columns(name, derivs, values, dtype, use_jax, use_torch)
                t = bench_all(fs, repeat, min_run)
                row = [name, form, length, np.dtype(dtype).name, fmt(t["gen NumPy"])]
                row += ([fmt(t["gen JAX"]), fmt(t["jax"]), ratio(t["gen JAX"], t["jax"]),
                         f"{comp['gen'] * 1e3:.0f} / {comp['jax'] * 1e3:.0f}"] if use_jax
                        else ["skipped: not installed" if jax is None else "skipped (--no-jax)", "", "", ""])
                row += ([fmt(t["gen torch"]), fmt(t["torch"]), ratio(t["gen torch"], t["torch"])] if use_torch
                        else ["skipped: not installed" if torch is None else "skipped (--no-torch)", "", ""])
                rows.append(row)
                results.append((name, length, np.dtype(dtype).name, t))
    return rows, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="L = 8, width 4, float64, two short repeats")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (the minimum is kept)")
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="threads per library (read before they load)")
    args = parser.parse_args(argv)
    if args.smoke:
        lengths, width, dtypes, repeat, min_run = (8,), 4, (np.float64,), 2, 0.001
    else:
        lengths, width, dtypes, repeat, min_run = (128, 512), 64, (np.float64, np.float32), args.repeat, 0.05
    use_jax = jax is not None and not args.no_jax
    use_torch = torch is not None and not args.no_torch
    versions = [f"numpy {np.__version__}"]
    if jax is not None:
        versions.append(f"jax {jax.__version__} ({jax.devices()[0].platform})")
    if torch is not None:
        versions.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"# bench_layers: {', '.join(versions)}; {os.cpu_count()} CPUs, {THREADS} thread(s) per library; "
          f"{load_line()}")
    print(f"# microseconds per call (value and 3 gradients), min over {repeat} runs of >= {min_run * 1e3:.0f} ms; "
          f"width {width}; JAX compile ms (generated / jax) excluded")
    headers = ["layer", "matcalc input", "L", "dtype", "gen NumPy", "gen JAX (jit)", "jax.value_and_grad (jit)",
               "genJAX/jax", "compile ms", "gen torch", "torch autograd", "gentorch/torch"]
    rows, results = run(lengths, width, dtypes, repeat, min_run, use_jax, use_torch)
    print()
    print(table(headers, rows, align="llrl" + "r" * 8))
    print()
    targets = Targets()
    if use_jax:
        worst = max(results, key=lambda r: r[3]["gen JAX"] / r[3]["jax"])
        targets.check(all(r[3]["gen JAX"] <= 1.05 * r[3]["jax"] for r in results),
                      "generated JAX (jit) never slower than jax.value_and_grad (jit) (5% noise allowance)",
                      f"worst {worst[3]['gen JAX'] / worst[3]['jax']:.2f}x: {worst[0]} L={worst[1]} {worst[2]}")
    if use_torch:
        worst = max(results, key=lambda r: r[3]["gen torch"] / r[3]["torch"])
        targets.check(all(r[3]["gen torch"] <= 1.05 * r[3]["torch"] for r in results),
                      "generated PyTorch at least as fast as torch autograd (5% noise allowance)",
                      f"worst {worst[3]['gen torch'] / worst[3]['torch']:.2f}x: {worst[0]} L={worst[1]} {worst[2]}")
    if not (use_jax or use_torch):
        targets.check(True, "generated NumPy agrees with itself (JAX and torch not available: no targets)")
    if args.smoke:
        print("(smoke run: sizes far too small for the targets; the PASS/FAIL lines only show the form)")
    print(targets.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
