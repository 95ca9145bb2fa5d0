"""What matcalc assumed about each name of an expression, and the warnings about readings users rarely mean.

matrixcalculus.org shows under every answer what it assumed ("where A is a matrix, x is a vector"); a
derivative of something the user did not mean is a wrong answer from the user's side, so matcalc does the
same: every name's kind and shape, and where that came from (a declaration, the way the expression uses
it, or the letter convention). The type checker (:mod:`matcalc.typecheck`) fills these records; the
printers of a :class:`~matcalc.diff.Derivative`, the command line and the code generators show them.
"""

from __future__ import annotations

import re
import warnings
import weakref

from .errors import AssumptionWarning

__all__ = ["Assumption", "Assumptions", "AssumptionWarning", "split_name", "emit", "remember", "recall"]

#: Where a name's kind came from, as shown in the ``where`` line.
SOURCES = {"declaration": "declared", "usage": "from usage", "convention": "letter convention",
           "given": "given"}


class Assumption:
    """One name: its kind (scalar, vector, matrix, symmetric), its shape, and where the kind came from.

    ``source`` is ``"declaration"``, ``"usage"`` (the expression forces it, ``reason`` says how) or
    ``"convention"`` (matrixcalculus.org's letters: a-g and Greek scalars, h-z vectors, A-Z matrices);
    ``occurs`` is False for a declared name that the expression does not use. (A plain class rather than
    a dataclass: importing dataclasses costs the command line about 6 ms.)
    """

    __slots__ = ("name", "kind", "shape", "source", "reason", "occurs")

    def __init__(self, name: str, kind: str, shape: tuple, source: str, reason: str = "", occurs: bool = True):
        self.name, self.kind, self.shape, self.source, self.reason, self.occurs = (
            name, kind, tuple(shape), source, reason, occurs)

    def _key(self) -> tuple:
        return (self.name, self.kind, self.shape, self.source, self.reason, self.occurs)

    def __eq__(self, other) -> bool:
        return isinstance(other, Assumption) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Assumption({', '.join(repr(v) for v in self._key())})"

    @property
    def declaration(self) -> str:
        """The kind as a declaration ``parse`` accepts: ``scalar``, ``vector(n)``, ``matrix(m, n)``."""
        if self.kind == "scalar":
            return "scalar"
        if self.kind == "vector":
            return f"vector({self.shape[0]})"
        if self.kind == "symmetric":
            return f"symmetric({self.shape[0]})"
        return f"matrix({self.shape[0]}, {self.shape[1]})"

    def __str__(self) -> str:
        origin = SOURCES.get(self.source, self.source)
        if not self.occurs:
            origin += ", does not occur"
        return f"{self.name}: {self.declaration} ({origin})"

    def latex(self, latex_name) -> str:
        """LaTeX, with ``latex_name`` (:func:`matcalc.printing.latex.latex_name`) setting the name."""
        name = latex_name(self.name, self.shape)
        if self.kind == "scalar":
            space = "\\mathbb{R}"
        elif self.kind == "vector":
            space = f"\\mathbb{{R}}^{{{self.shape[0]}}}"
        else:
            space = f"\\mathbb{{R}}^{{{self.shape[0]} \\times {self.shape[1]}}}"
            if self.kind == "symmetric":
                space += "\\ \\text{symmetric}"
        return f"{name} \\in {space}\\ \\text{{({SOURCES.get(self.source, self.source)})}}"

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": [str(d) for d in self.shape],
                "declaration": self.declaration, "source": self.source, "reason": self.reason,
                "occurs": self.occurs}


class Assumptions:
    """The assumptions behind one parsed expression: one :class:`Assumption` per name, and the warnings.

    ``str()`` is the ``where`` line shown under every answer; ``notes`` are the
    :class:`~matcalc.AssumptionWarning` objects about readings users rarely intend.
    """

    __slots__ = ("items", "notes")

    def __init__(self, items: tuple = (), notes: tuple = ()):
        self.items = tuple(items)
        self.notes = tuple(notes)

    def __eq__(self, other) -> bool:
        return isinstance(other, Assumptions) and self.items == other.items

    def __hash__(self) -> int:
        return hash(self.items)

    def __repr__(self) -> str:
        return f"<Assumptions {self}>"

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, name: str) -> Assumption:
        for a in self.items:
            if a.name == name:
                return a
        raise KeyError(name)

    def __contains__(self, name) -> bool:
        return any(a.name == name for a in self.items)

    def __str__(self) -> str:
        return ("where " + ", ".join(str(a) for a in self.items)) if self.items else ""

    def latex(self, latex_name) -> str:
        """The ``where`` line in LaTeX (``matcalc.printing.latex.where_latex`` supplies ``latex_name``)."""
        if not self.items:
            return ""
        return "\\text{where } " + ",\\ ".join(a.latex(latex_name) for a in self.items)

    def as_list(self) -> list[dict]:
        return [a.as_dict() for a in self.items]


# --- one name or several? ---------------------------------------------------------------------------------
_SEGMENT = re.compile(r"[A-Z\u0391-\u03a9][0-9_]*|[a-z\u03b1-\u03c9]+[0-9_]*")


def _plausible(part: str, known) -> bool:
    return part in known or re.fullmatch(r"[A-Za-z][0-9]*", part) is not None


def _split_known(name: str, known, whole: bool = True) -> list[str] | None:
    """``name`` as a concatenation of names of ``known`` (longest first; two or more when ``whole``)."""
    if not name:
        return []
    for cut in range(len(name) - (1 if whole else 0), 0, -1):
        if name[:cut] in known:
            rest = _split_known(name[cut:], known, False)
            if rest is not None:
                return [name[:cut], *rest]
    return None


def split_name(name: str, known) -> list[str] | None:
    """How an undeclared multi-letter name probably splits into a product: ``Ax`` -> ``A x``.

    A split is suggested at a change of case (``Ax``, ``Wx``, ``W1x``: a capital is a matrix, a run of
    small letters a vector or a scalar) when every part is one letter (with digits) or a known name, or,
    for a name in one case (``xy``), when every part is a name declared or used elsewhere. Names such as
    ``mu``, ``b1``, ``x_2``, ``Xtrain`` or ``logits`` give no split.
    """
    if len(name) < 2 or "_" in name:
        return None
    segments = _SEGMENT.findall(name)
    if "".join(segments) == name and len(segments) >= 2 and all(_plausible(s, known) for s in segments):
        return segments
    parts = _split_known(name, known) if name.isalpha() else None  # `x12` is not `x1 2`
    return parts if parts and len(parts) >= 2 else None


def emit(notes, stacklevel: int = 3) -> None:
    """Issue each note as a Python warning (category :class:`~matcalc.AssumptionWarning`)."""
    for note in notes:
        warnings.warn(note, stacklevel=stacklevel)


# --- what was assumed for a parsed node -------------------------------------------------------------------
_RECALLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember(node, assumed: Assumptions) -> None:
    """Keep the assumptions of the last parse that gave ``node``, for ``derive(node, ...)``."""
    try:
        _RECALLED[node] = assumed
    except TypeError:  # pragma: no cover - every node takes weak references
        pass


def recall(node, symbols=()) -> Assumptions:
    """The assumptions of ``node``: those of its last parse, else the shapes of its ``symbols`` (from
    :func:`matcalc.nodes.symbols_of`), marked "given"."""
    found = _RECALLED.get(node)
    if found is not None:
        return found
    items = []
    for s in symbols:
        shape = s.shape
        kind = "scalar" if shape == () else "symmetric" if s.symmetric else "vector" if shape[1] == 1 \
            else "matrix"
        items.append(Assumption(s.name, kind, shape, "given", "a parsed expression"))
    return Assumptions(tuple(items))
