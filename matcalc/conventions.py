"""The naming convention of undeclared names, shared by the type checker and the printers.

An undeclared name is a scalar, a vector or a matrix by matrixcalculus.org's letters: ``a``-``g`` and Greek
names scalars, ``h``-``z`` vectors, capitals matrices; ``pi`` and ``π`` are the number. The type checker
(:mod:`matcalc.typecheck`) reads text with it, and :mod:`matcalc.printing.readback` predicts from a node
what the checker would read back from the node's text; both must use the very same rules, hence one module
(it imports nothing, so any module may import it).
"""

from __future__ import annotations

SCALAR, VECTOR, MATRIX, SYMMETRIC = "scalar", "vector", "matrix", "symmetric"

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "lam",
    "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
}

#: Undeclared names that are numbers (spec, "Constants"); a declaration of the name wins.
CONSTANTS = {"pi", "π"}

#: The names the type checker gives to dimensions left symbolic, in this order (then ``n1, n2, ...``).
DIM_NAMES = ("n", "m", "k", "p", "q", "r", "s", "t", "l", "d")


def is_greek(name: str) -> bool:
    """A Greek name: spelled out (``alpha``) or in Greek letters (``α``)."""
    return name in GREEK or "\u0370" <= name[0] <= "\u03ff"


def convention_kind(name: str) -> str:
    """The naming convention for an undeclared name."""
    first = name[0]
    if is_greek(name):
        return SCALAR
    if "a" <= first <= "g":
        return SCALAR
    if "A" <= first <= "Z":
        return MATRIX
    return VECTOR


def convention_reason(name: str) -> str:
    """Why the convention gives ``name`` its kind, as the assumptions show it."""
    first = name[0]
    if is_greek(name):
        return "Greek names are scalars"
    if "a" <= first <= "g":
        return "names starting with a to g are scalars"
    if "A" <= first <= "Z":
        return "capitals are matrices"
    return "names starting with h to z are vectors"
