"""Python names for the generated function: arguments, size variables and temporaries.

Names come from matcalc symbols, which may be Python keywords (``lambda`` is a Greek scalar in the
language) or hold characters Python does not accept or normalises away (``x₁`` reads as ``x1``). Every
name is checked here, so generated source never contains anything but validated identifiers.
"""

from __future__ import annotations

import builtins
import keyword
import unicodedata

#: Names generated code uses for itself (modules and locals), and every Python builtin: a variable called
#: ``min``, ``float`` or ``ValueError`` would shadow what the code calls, so such variables are renamed
#: (``min_``) in the generated source; ``compile()`` still takes them under the user's names.
RESERVED = frozenset({"np", "jnp", "jax", "torch", "dtype", "value", "grad", "self", "cls"}
                     | set(dir(builtins)))

#: The prefix of the module-level helpers of generated code (matcalc.ops preambles: ``_matcalc_erf``); no
#: argument or temporary ever gets a name with it.
HELPER_PREFIX = "_matcalc_"


def valid_identifier(name: str) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


class Namer:
    """Hands out distinct identifiers, comparing them as Python does (NFKC-normalised)."""

    def __init__(self, reserved: frozenset[str] = RESERVED):
        self.taken: set[str] = {unicodedata.normalize("NFKC", r) for r in reserved}
        self.counters: dict[str, int] = {}

    def take(self, wanted: str, suffix: str = "_") -> str:
        """``wanted`` made a valid identifier, with ``suffix`` appended until it is free."""
        base = unicodedata.normalize("NFKC", wanted)
        base = "".join(ch if ("_" + ch).isidentifier() else "_" for ch in base) or "_"
        if not (base[0].isidentifier() or base[0] == "_"):
            base = "_" + base
        name = base
        while not valid_identifier(name) or name in self.taken or name.startswith(HELPER_PREFIX):
            name += suffix
        self.taken.add(name)
        return name

    def fresh(self, prefix: str) -> str:
        """The next free ``prefix1``, ``prefix2``, ..."""
        while True:
            self.counters[prefix] = self.counters.get(prefix, 0) + 1
            name = f"{prefix}{self.counters[prefix]}"
            if name not in self.taken and not name.startswith(HELPER_PREFIX):
                self.taken.add(name)
                return name
