"""The operation catalogue: everything matcalc knows about each operation of the language, in one record.

Why: an operation used to be spread over a dozen files (grammar, nodes, typecheck, rules, numeric,
sympy_backend, the printers, code generation, verify), and a file that was missed failed silently (the
code printer would emit ``np.gelu``). Every consumer now reads these records instead of keeping its own
table, and ``tests/test_ops.py`` checks that every record is complete in every consumer.

* :mod:`.elementwise` - the element-wise functions (:class:`Elementwise`, node :class:`matcalc.nodes.Apply`):
  spellings, derivative, NumPy/SymPy evaluation, generated code per target, LaTeX/Unicode spellings and
  the facts verification and the code rewrites need.
* :mod:`.calls` - the other calls (:class:`Function`: reductions, ``det``, ``softmax``, ``kron`` ...):
  spellings, typing, shape rule, differential, transpose and Jacobian rules where linear, evaluation,
  printed forms and code. Their node classes in :mod:`matcalc.nodes` take their shape rule from here,
  and every stage dispatches a call node to its record (:data:`BY_NODE`).

Adding an operation is one record plus its tests and a line of docs (docs/design.md, "How to add an
operation"). The package imports nothing of matcalc but the bottom modules ``shapes`` and ``errors``.
"""

from __future__ import annotations

from .calls import FUNCTION_RECORDS
from .elementwise import ELEMENTWISE, ERF_PREAMBLE, erf_functions
from .records import Elementwise, Function

__all__ = ["Elementwise", "Function", "ELEMENTWISE", "FUNCTIONS", "BY_NODE", "ALIASES", "FUNCTION_NAMES",
           "lookup", "ERF_PREAMBLE", "erf_functions"]

#: The other calls by canonical name (the spelled ones).
FUNCTIONS: dict[str, Function] = {op.name: op for op in FUNCTION_RECORDS if op.spelled}

#: The record of each call node class, by class name: the record of its node that holds its rules.
BY_NODE: dict[str, Function] = {}
for _op in FUNCTION_RECORDS:
    if _op.has_rules:
        BY_NODE.setdefault(_op.node, _op)

#: Every spelling of a call (canonical names and aliases) -> its canonical name.
ALIASES: dict[str, str] = {}
for _op in (*ELEMENTWISE.values(), *FUNCTION_RECORDS):
    if getattr(_op, "spelled", True):
        for _spelling in (_op.name, *_op.aliases):
            ALIASES[_spelling] = _op.name
del _op, _spelling

#: Every function name the grammar accepts (its FUNCNAME terminal is generated from this), in order.
FUNCTION_NAMES: tuple[str, ...] = tuple(ALIASES)


def lookup(spelling: str) -> Elementwise | Function | None:
    """The record of a spelling of a call, or None."""
    name = ALIASES.get(spelling)
    return ELEMENTWISE.get(name) or FUNCTIONS.get(name) if name else None
