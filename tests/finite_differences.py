"""Central finite differences of any matcalc expression, arranged in matcalc's layouts.

Used by the derivative tests: every closed form is compared with these numbers, never only printed.
"""

from __future__ import annotations

import numpy as np

from matcalc import nodes as N
from matcalc.numeric import evaluate
from matcalc.sympy_backend import default_sizes


def random_values(function: N.Node, seed: int = 0, positive=(), spd=(), sizes=None) -> dict:
    """Random values for every symbol: ``positive`` names get entries in [0.5, 1.5], ``spd`` matrices are
    symmetric positive definite, other matrices are well conditioned (3 I + noise), symmetric ones symmetric."""
    rng = np.random.default_rng(seed)
    sizes = dict(sizes or default_sizes(function))

    def size(d):
        return d if isinstance(d, int) else sizes[str(d)]

    values = {}
    for s in N.symbols_of(function):
        shape = tuple(size(d) for d in s.shape)
        if shape == ():
            v = rng.uniform(0.5, 1.5) if s.name in positive else rng.normal()
            values[s.name] = float(v)
            continue
        if s.name in positive:
            v = rng.uniform(0.5, 1.5, shape)
        elif s.name in spd or (s.symmetric and s.name not in positive):
            m = rng.normal(size=(shape[0], shape[0]))
            v = m @ m.T + shape[0] * np.eye(shape[0]) if s.name in spd else (m + m.T) / 2
        elif len(shape) == 2 and shape[1] != 1 and shape[0] == shape[1]:
            v = 3 * np.eye(shape[0]) + 0.3 * rng.normal(size=shape)
        else:
            v = rng.normal(size=shape)
        if len(shape) == 2 and shape[1] == 1:
            v = v.reshape(-1)
        values[s.name] = v
    return values


def _f(function, values, name):
    def f(v):
        return np.asarray(evaluate(function, {**values, name: v}), dtype=float)

    return f


def _perturbations(x0: np.ndarray, symmetric: bool):
    for idx in np.ndindex(x0.shape):
        if symmetric and idx[0] > idx[1]:
            continue
        e = np.zeros_like(x0)
        e[idx] = 1.0
        if symmetric:
            e[idx[::-1]] = 1.0
        yield idx, e


def first(function: N.Node, variable: N.Symbol, values: dict, layout: str = "numerator", h: float = 1e-6):
    """d function / d variable by central differences, in matcalc's layout and value conventions."""
    f = _f(function, values, variable.name)
    x0 = np.asarray(values[variable.name], dtype=float)
    out0 = f(x0)
    J = np.zeros(out0.shape + x0.shape)
    for idx, e in _perturbations(x0, variable.symmetric):
        J[(Ellipsis,) + idx] = (f(x0 + h * e) - f(x0 - h * e)) / (2 * h)
    if variable.symmetric:
        # the symmetric gradient: a symmetric perturbation of (i, j) moves both entries
        n = x0.shape[0]
        for i in range(n):
            for j in range(i):
                J[..., i, j] = J[..., j, i] = J[..., j, i] / 2
    if J.ndim == 0:
        return float(J)
    if out0.ndim == 0:  # scalar function: J has the variable's shape (denominator layout)
        if x0.ndim == 2 and layout == "numerator":
            return J.T
        return J
    if x0.ndim == 0:  # function of a scalar: shaped like the function
        return J
    if out0.ndim == 1 and x0.ndim == 1:
        return J if layout == "numerator" else J.T
    raise ValueError("tensor-valued derivative")


def second(function: N.Node, variable: N.Symbol, values: dict, h: float = 1e-4):
    """The Hessian of a scalar function of a vector (or the second derivative in a scalar)."""
    f = _f(function, values, variable.name)
    x0 = np.asarray(values[variable.name], dtype=float)
    if x0.ndim == 0:
        return float((f(x0 + h) - 2 * f(x0) + f(x0 - h)) / h**2)
    n = x0.size
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = h
            ej[j] = h
            H[i, j] = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej) + f(x0 - ei - ej)) / (4 * h * h)
    return H
