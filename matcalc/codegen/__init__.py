"""Code generation: a derivative as the source of one standalone NumPy, JAX or PyTorch function.

>>> import matcalc
>>> d = matcalc.derive("x' A x", wrt="x", layout="denominator")
>>> print(generate(d, "numpy"))          # doctest: +SKIP
>>> grad = compile_numpy(d)
>>> grad(x=[1.0, 2.0], A=[[1.0, 0.0], [0.0, 1.0]])
array([2., 4.])

One printer class per target (:mod:`.targets`), one method per node class (:mod:`.printer`); shared
subexpressions become temporaries (:mod:`.plan`); :mod:`.generate` assembles the function.
"""

from __future__ import annotations

from .generate import compile_numpy, generate
from .joint import compile_joint, generate_joint
from .printer import CodegenError, CodePrinter
from .targets import PRINTERS, JaxPrinter, NumpyPrinter, TorchPrinter

TARGETS = tuple(PRINTERS)

__all__ = ["generate", "compile_numpy", "generate_joint", "compile_joint", "CodegenError", "CodePrinter",
           "NumpyPrinter", "JaxPrinter", "TorchPrinter", "PRINTERS", "TARGETS"]
