"""The one validation of variable and dimension names, shared by every way of declaring them.

A name reaches matcalc from the ``where`` clause, from Python keyword declarations
(``parse(text, A="matrix(n, n)")``), from shape tuples (``x=("n", 1)``) and from the command line's
``--let``. Whatever the door, names are data: they must be names of the language (the grammar's ``NAME``:
a Latin or Greek letter, then letters, ASCII digits and underscores, at most :data:`MAX_NAME_LENGTH`
characters), they may not be reserved (``I``, the function names, ``where``), and a numeric size must be a
positive integer no larger than :data:`MAX_SIZE`. Nothing that fails here can reach generated code.
"""

from __future__ import annotations

import re

from .errors import DeclarationError
from .ops import FUNCTION_NAMES

__all__ = ["check_name", "check_size", "MAX_NAME_LENGTH", "MAX_SIZE", "RESERVED_NAMES"]

#: The grammar's NAME token (grammar/matcalc.lark), anchored.
NAME = re.compile(r"[A-Za-z\u0370-\u03ff][A-Za-z0-9_\u0370-\u03ff]*\Z")
#: The longest name accepted (a declaration is data; nobody needs a longer one).
MAX_NAME_LENGTH = 100
#: The largest numeric dimension a declaration may give.
MAX_SIZE = 10**9

#: Names a declaration may not take: the identity, the keyword of the where clause, and every function
#: (the grammar's FUNCNAME, generated from the same catalogue :mod:`matcalc.ops`).
RESERVED_NAMES = frozenset({"I", "where"} | set(FUNCTION_NAMES))


def _shown(name: object) -> str:
    text = repr(name)
    return text if len(text) <= 40 else text[:37] + "..."


def check_name(name: object, what: str = "variable", position: int | None = None, source: str | None = None,
               reserved: bool = True) -> str:
    """``name`` if it is a valid, unreserved name of the language; else a DeclarationError saying why."""
    if not isinstance(name, str):
        raise DeclarationError(f"a {what} name must be a string, not {type(name).__name__}", position, source)
    if len(name) > MAX_NAME_LENGTH:
        raise DeclarationError(f"the {what} name {_shown(name)} is longer than {MAX_NAME_LENGTH} characters",
                               position, source)
    if not NAME.match(name):
        raise DeclarationError(
            f"{_shown(name)} is not a valid {what} name: a name is a Latin or Greek letter followed by "
            "letters, digits 0-9 and underscores", position, source)
    if reserved and name in RESERVED_NAMES:
        raise DeclarationError(f"{name!r} is reserved and cannot be declared", position, source)
    return name


def check_size(size: object, owner: str = "?") -> int | str:
    """A dimension of a shape tuple: a positive integer up to :data:`MAX_SIZE`, or a dimension name."""
    if isinstance(size, bool) or not isinstance(size, int | str):
        raise DeclarationError(f"the shape of {owner} must hold positive integers and dimension names, "
                               f"not {_shown(size)}")
    if isinstance(size, str):
        return check_name(size, "dimension")
    if not 1 <= size <= MAX_SIZE:
        raise DeclarationError(f"the shape of {owner} has the size {size if abs(size) < 10**20 else '(huge)'}; "
                               f"a size must be a positive integer no larger than {MAX_SIZE:,}")
    return size
