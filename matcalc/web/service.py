"""What the web API does, as plain functions of JSON-like dicts: no HTTP here, so the API's behaviour can
be tested without a server and run inside worker processes (:mod:`matcalc.web.pool`).

Every request is validated before matcalc sees it (types, known fields, size limits); the expression is
only ever *parsed* by matcalc's own grammar, never evaluated as Python. Replies are dicts ready for
``json.dumps``; a problem with the input is reported as ``{"ok": False, "error": {...}}`` carrying the
error's class, message, 0-based position and the CLI's caret picture.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import matcalc
from matcalc.printing import declarations_of

# --- limits (documented in docs/web.md) ---------------------------------------------------------------------
MAX_EXPR = 2000          # characters in an expression or a claim
MAX_DECLARATIONS = 64    # entries in "declarations"
MAX_DECL_TEXT = 100      # characters in one kind ("matrix(m, n)")
MAX_NAME = 40            # characters in a variable name
MAX_REPLY = 1_000_000     # characters of JSON in one reply (a short input can have a huge derivative)
CHECK_LIMIT_DEFAULT = 10.0
CHECK_LIMIT_MAX = 30.0
TARGETS = ("numpy", "jax", "torch")
LAYOUTS = ("numerator", "denominator")

_COMMON = {"expr", "declarations", "wrt", "layout", "order"}
FIELDS = {
    "derive": _COMMON | {"steps"},
    "code": _COMMON | {"targets", "value_and_grad"},
    "check": _COMMON | {"claim", "time_limit"},
}
# names parse() takes as its own keyword argument cannot be passed as declarations
_RESERVED = {"text"}
_NAME = re.compile(r"^[^\W\d]\w*$")


class RequestError(matcalc.MatcalcError):
    """A request the API cannot take: a missing or mistyped field, or one over a size limit."""


@dataclass
class Request:
    """A validated request: the fields every endpoint shares, and the ones particular to one."""

    expr: str
    declarations: dict[str, str] = field(default_factory=dict)
    wrt: str | None = None
    layout: str = "numerator"
    order: int = 1
    steps: bool = True
    targets: tuple[str, ...] = TARGETS
    value_and_grad: bool = False
    claim: str | None = None
    time_limit: float = CHECK_LIMIT_DEFAULT

    def derivation_key(self) -> tuple:
        """What determines the derivation itself (not how it is shown, coded or checked)."""
        return (self.expr, tuple(sorted(self.declarations.items())), self.wrt, self.layout, self.order)

    def key(self, endpoint: str) -> tuple:
        """A hashable identity of the request, for the server's cache of answers."""
        return (endpoint, self.expr, tuple(sorted(self.declarations.items())), self.wrt, self.layout, self.order,
                self.steps, self.targets, self.value_and_grad, self.claim, self.time_limit)


def _text(body: dict, name: str, required: bool = False, limit: int = MAX_EXPR) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise RequestError(f'"{name}" is required')
        return None
    if not isinstance(value, str):
        raise RequestError(f'"{name}" must be a string, not {type(value).__name__}')
    if len(value) > limit:
        raise RequestError(f'"{name}" is {len(value)} characters long; the limit is {limit}')
    return value


def _declarations(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError('"declarations" must be an object such as {"A": "matrix(n, n)"}')
    if len(value) > MAX_DECLARATIONS:
        raise RequestError(f'"declarations" has {len(value)} entries; the limit is {MAX_DECLARATIONS}')
    out = {}
    for name, kind in value.items():
        if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.match(name):
            raise RequestError(f"{str(name)[:MAX_NAME]!r} is not a variable name")
        if name in _RESERVED:
            raise RequestError(f"{name!r} cannot be declared through the API; use a where clause in the expression")
        if not isinstance(kind, str) or len(kind) > MAX_DECL_TEXT:
            raise RequestError(f'the declaration of {name} must be a string such as "vector(n)"')
        out[name] = kind
    return out


def _choice(body: dict, name: str, allowed: tuple, default):
    value = body.get(name, default)
    if value not in allowed or isinstance(value, bool):
        shown = ", ".join(repr(a) for a in allowed)
        raise RequestError(f'"{name}" must be one of {shown}, not {value!r}')
    return value


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise RequestError(f'"{name}" must be true or false')
    return value


def _targets(value: Any) -> tuple[str, ...]:
    if value is None:
        return TARGETS
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or any(t not in TARGETS for t in value):
        raise RequestError(f'"targets" must be a list drawn from {", ".join(TARGETS)}')
    return tuple(dict.fromkeys(value))


def _time_limit(value: Any) -> float:
    if value is None:
        return CHECK_LIMIT_DEFAULT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= CHECK_LIMIT_MAX:
        raise RequestError(f'"time_limit" must be a number of seconds in (0, {CHECK_LIMIT_MAX:g}]')
    return float(value)


def parse_request(body: Any, endpoint: str) -> Request:
    """Validate a decoded JSON body for ``endpoint`` ("derive", "code" or "check"); raises RequestError."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    unknown = sorted(set(body) - FIELDS[endpoint])
    if unknown:
        raise RequestError(f"unknown field(s) for /api/{endpoint}: {', '.join(map(str, unknown))}")
    wrt = _text(body, "wrt", limit=MAX_NAME)
    return Request(
        expr=_text(body, "expr", required=True), declarations=_declarations(body.get("declarations")),
        wrt=wrt or None, layout=_choice(body, "layout", LAYOUTS, "numerator"),
        order=_choice(body, "order", (1, 2), 1), steps=_flag(body, "steps", True),
        targets=_targets(body.get("targets")), value_and_grad=_flag(body, "value_and_grad", False),
        claim=_text(body, "claim"), time_limit=_time_limit(body.get("time_limit")))


# --- replies ----------------------------------------------------------------------------------------------
def error_payload(exc: Exception, kind: str | None = None) -> dict[str, Any]:
    """The JSON form of an error: class, message, position, the input and the CLI's caret picture."""
    if isinstance(exc, matcalc.MatcalcError):
        return {"ok": False, "error": {"type": kind or type(exc).__name__, "message": exc.message,
                                       "position": exc.position, "source": exc.source,
                                       "caret": exc.caret(), "text": str(exc)}}
    message = str(exc)
    return {"ok": False, "error": {"type": kind or "InternalError", "message": message, "position": None,
                                   "source": None, "caret": "", "text": message}}


def _split_kind(decl: str) -> tuple[str, list[str]]:
    """``"matrix(m, n)" -> ("matrix", ["m", "n"])``: the kind and dimension names of a printed declaration."""
    kind, _, rest = decl.partition("(")
    dims = [d.strip() for d in rest.rstrip(")").split(",") if d.strip()]
    return kind, dims


def variables_of(node) -> list[dict[str, Any]]:
    """The variables matcalc inferred (or was told), in order of first appearance."""
    out = []
    for name, decl in declarations_of(node).items():
        kind, dims = _split_kind(decl)
        out.append({"name": name, "kind": kind, "dims": dims, "declaration": decl})
    return out


def default_wrt(variables: list[dict[str, Any]]) -> str:
    """The variable to differentiate by when none is given: the first vector, else the first matrix, else the
    first variable (``x' A x`` -> x, ``max(0, w·x + b)`` -> w, ``||X - U V||_F^2`` -> X)."""
    for kind in ("vector", "matrix", "symmetric"):
        for v in variables:
            if v["kind"] == kind:
                return v["name"]
    if not variables:
        raise matcalc.UnknownNameError("the expression has no variable to differentiate with respect to")
    return variables[0]["name"]


_MEMO: OrderedDict[tuple, tuple] = OrderedDict()
MEMO_SIZE = 128


def _derivation(req: Request):
    """Parse and derive: (parsed function, its variables, the name of wrt, the Derivative). The last few are
    remembered, since the page asks for the code of the derivation it has just asked for."""
    key = req.derivation_key()
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    # warnings are answered (the reply's "warnings"), never printed: a worker writing them to a standard
    # error nobody reads would block once the pipe is full
    node = matcalc.parse(req.expr, warn=False, **req.declarations)
    variables = variables_of(node)
    wrt = req.wrt or default_wrt(variables)
    d = matcalc.derive(node, wrt, layout=req.layout, order=req.order, warn=False)
    _MEMO[key] = _MEMO[key[:2] + (wrt,) + key[3:]] = (node, variables, wrt, d)  # with wrt as chosen, too
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return _MEMO[key]


def _display_latex(d) -> str:
    """The whole equation, ∂f/∂x = result, as one LaTeX string (the notebook form without its dollars)."""
    return d._repr_latex_().strip("$")


def _equation_latex(d) -> str:
    """The derivative of ``f`` (the page shows ``f = ...`` above it), short enough for one line."""
    if hasattr(d, "differential"):
        return f"df = {matcalc.to_latex(d.differential)}"
    var = matcalc.to_latex(d.variable)
    if d.order == 2:
        return f"\\frac{{\\partial^2 f}}{{\\partial {var}^2}} = {d.latex()}"
    return f"\\frac{{\\partial f}}{{\\partial {var}}} = {d.latex()}"


def _tensor_forms(d) -> dict[str, Any] | None:
    if not hasattr(d, "differential"):
        return None
    kron = d.kronecker
    return {"linear_map": d.linear_map, "linear_map_latex": d.latex(),
            "kronecker": None if kron is None else matcalc.to_unicode(kron),
            "kronecker_latex": None if kron is None else matcalc.to_latex(kron), "index": d.index}


def derive(req: Request) -> dict[str, Any]:
    """The reply of POST /api/derive."""
    start = time.perf_counter()
    node, variables, wrt, d = _derivation(req)
    tensor = _tensor_forms(d)
    shape = [str(s) for s in d.shape]
    out: dict[str, Any] = {
        "ok": True, "expr": req.expr, "wrt": wrt, "layout": req.layout, "order": req.order,
        "variables": variables,
        "function": {"text": matcalc.to_text(node), "unicode": matcalc.to_unicode(node),
                     "latex": matcalc.to_latex(node)},
        "result": {"text": d.text(named=False), "unicode": d.unicode(), "latex": d.latex(),
                   "display_latex": _display_latex(d),
                   "equation_latex": _equation_latex(d),
                   "shape": shape, "kind": f"tensor({', '.join(shape)})" if tensor else _describe(d.shape)},
        "tensor": tensor, "notes": list(d.notes),
        "where": str(d.assumptions), "assumptions": d.assumptions.as_list(),
        "warnings": [n.message for n in getattr(matcalc.assumptions(node), "notes", ())],
    }
    if req.steps:
        out["steps"] = [{"kind": s.kind, "text": s.text, "latex": s.latex, "rule": s.rule} for s in d.steps]
    out["elapsed_ms"] = round((time.perf_counter() - start) * 1e3, 3)
    return out


def _describe(shape) -> str:
    from matcalc.shapes import describe

    return describe(shape)


def code(req: Request) -> dict[str, Any]:
    """The reply of POST /api/code: the source of a standalone function per target (or why there is none)."""
    _node, _variables, wrt, d = _derivation(req)
    sources: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for target in req.targets:
        try:
            sources[target] = getattr(d, f"to_{target}")(value_and_grad=req.value_and_grad)
        except matcalc.MatcalcError as exc:
            errors[target] = error_payload(exc)["error"]
    return {"ok": True, "wrt": wrt, "layout": req.layout, "order": req.order, "code": sources, "errors": errors}


def check(req: Request) -> dict[str, Any]:
    """The reply of POST /api/check: the derivative (or ``claim``) checked against SymPy within the limit."""
    if req.claim is not None and req.order != 1:
        raise RequestError("a claim is checked against the first derivative: leave out order, or the claim")
    node, _variables, wrt, d = _derivation(req)
    if req.claim is not None:
        report = matcalc.check_claim(node, wrt, req.claim, layout=req.layout, time_budget=req.time_limit)
    else:
        report = d.check(time_budget=req.time_limit)
    base = getattr(report, "check", report) if req.claim is not None else report
    sizes = getattr(base, "sizes", None) or {}
    return {"ok": True, "wrt": wrt, "claim": req.claim, "verdict": bool(report.ok),
            "method": getattr(base, "method", None) or "claim", "max_error": getattr(base, "max_error", None),
            "message": str(report), "sizes": {str(k): v for k, v in sizes.items()},
            "elapsed": getattr(base, "elapsed", None), "time_limit": req.time_limit}


HANDLERS = {"derive": derive, "code": code, "check": check}


def handle(endpoint: str, body: Any) -> dict[str, Any]:
    """Validate ``body`` and answer it; input problems become error replies, never exceptions."""
    try:
        reply = HANDLERS[endpoint](parse_request(body, endpoint))
        size = len(json.dumps(reply, ensure_ascii=False))
        if size > MAX_REPLY:
            raise RequestError(f"the answer is {size:,} characters long, over the limit of {MAX_REPLY:,}; "
                               "try without steps, or a smaller expression")
        return reply
    except matcalc.MatcalcError as exc:
        return error_payload(exc)
    except RecursionError:
        return error_payload(matcalc.NestingError("the expression is nested too deeply"))
