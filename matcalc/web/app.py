"""The Starlette application behind ``matcalc serve``: the page, its static files and the JSON API.

Routes: ``GET /`` the page; ``GET /static/...`` its script, style and KaTeX; ``GET /api/examples``;
``GET /api/health``; ``POST /api/derive``, ``/api/code``, ``/api/check`` (documented in docs/web.md).
Requests are validated in the server (size first, then JSON, then fields) and answered by worker processes
(:mod:`.pool`) under a time limit; answers are cached, since a derivation is a pure function of its request.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import examples, service
from .pool import JobTimeout, PoolBusy, WorkerPool

STATIC = Path(__file__).parent / "static"
MAX_BODY = 32 * 1024  # bytes in a request body
# everything the page loads comes from this server: the browser enforces it
# (framing by a loopback origin lets a local Jupyter show the page: matcalc.web.notebook)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'self' http://localhost:* http://127.0.0.1:*")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


class Settings:
    """Limits and sizes of one server (``matcalc serve`` options)."""

    def __init__(self, derive_workers: int = 4, check_workers: int = 1, time_limit: float = 5.0,
                 check_grace: float = 5.0, cache_size: int = 2048, max_waiting: int = 1000):
        self.derive_workers = derive_workers
        self.check_workers = check_workers
        self.time_limit = time_limit  # seconds for one derivation or code generation
        self.check_grace = check_grace  # a check's worker is killed this long after the check's own limit
        self.cache_size = cache_size
        self.max_waiting = max_waiting


class _Cache:
    """A small LRU map from a request's identity to its reply."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[tuple, dict] = OrderedDict()

    def get(self, key: tuple) -> dict | None:
        reply = self.data.get(key)
        if reply is not None:
            self.data.move_to_end(key)
        return reply

    def put(self, key: tuple, reply: dict) -> None:
        self.data[key] = reply
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=HEADERS)


def _error(status: int, kind: str, message: str) -> Response:
    return _json({"ok": False, "error": {"type": kind, "message": message, "position": None, "source": None,
                                         "caret": "", "text": message}}, status)


async def _read_body(request: HTTPRequest) -> bytes | Response:
    """The body, or a 413 reply once it passes MAX_BODY (without reading the rest)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return _error(413, "RequestError", f"the request body is limited to {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return _error(413, "RequestError", f"the request body is limited to {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _status(reply: dict) -> int:
    if reply.get("ok"):
        return 200
    kind = reply["error"]["type"]
    return 500 if kind == "InternalError" else 400


class API:
    """The three POST endpoints: validate, look in the cache, else ask a worker under the time limit."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.derive_pool = WorkerPool(settings.derive_workers, max_waiting=settings.max_waiting)
        self.check_pool = WorkerPool(settings.check_workers, niceness=10, max_waiting=16)
        self.cache = _Cache(settings.cache_size)

    async def start(self) -> None:
        await self.derive_pool.start()
        await self.check_pool.start()

    def close(self) -> None:
        self.derive_pool.close()
        self.check_pool.close()

    async def answer(self, endpoint: str, request: HTTPRequest) -> Response:
        raw = await _read_body(request)
        if isinstance(raw, Response):
            return raw
        try:
            body = json.loads(raw.decode("utf-8"))
            req = service.parse_request(body, endpoint)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, "RequestError", f"the request body is not JSON: {exc}")
        except RecursionError:
            return _error(400, "RequestError", "the request body is nested too deeply")
        except service.RequestError as exc:
            return _json(service.error_payload(exc), 400)
        key = req.key(endpoint)
        cached = self.cache.get(key)
        if cached is not None:
            return _json(cached, _status(cached))
        reply = await self._compute(endpoint, body, req)
        if isinstance(reply, Response):
            return reply
        if endpoint != "check" or reply.get("method") not in ("timeout", "error", None):
            self.cache.put(key, reply)
        return _json(reply, _status(reply))

    async def _compute(self, endpoint: str, body: dict, req: service.Request) -> dict | Response:
        if endpoint == "check":
            pool, limit = self.check_pool, req.time_limit + self.settings.check_grace
        else:
            pool, limit = self.derive_pool, self.settings.time_limit
        try:
            # the same expression goes to the same worker when it is free: it remembers the derivation
            key = req.derivation_key()
            return await pool.call(endpoint, body, limit, prefer=hash(key[:2] + key[3:]))
        except JobTimeout as exc:
            what = "check" if endpoint == "check" else "derivation"
            return _error(503, "TimeLimitError", f"the {what} did not finish within {limit:g} s ({exc})")
        except PoolBusy as exc:
            return _error(503, "BusyError", f"the server is busy, try again ({exc})")


class HostGuard:
    """Refuse requests whose Host header names another machine: a web page that got a DNS name pointed at
    127.0.0.1 (DNS rebinding) cannot then use the server. IPv6 literals (``[::1]:8765``) are understood."""

    def __init__(self, app, allowed_hosts: list[str]):
        self.app = app
        self.allowed = set(allowed_hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host", "")
            name = host[: host.find("]") + 1] if host.startswith("[") else host.rsplit(":", 1)[0]
            if name.lower() not in self.allowed:
                await _error(400, "RequestError", "invalid Host header")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, allowed_hosts: list[str] | None = None,
               on_ready=None) -> Starlette:
    """The application; ``allowed_hosts`` guards against DNS rebinding (None accepts any Host header);
    ``on_ready()`` is called once the worker processes are up."""
    api = API(settings or Settings())

    @asynccontextmanager
    async def lifespan(app):
        await api.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            api.close()

    async def page(request: HTTPRequest) -> Response:
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    async def example_list(request: HTTPRequest) -> Response:
        return _json({"ok": True, "examples": examples.EXAMPLES})

    async def health(request: HTTPRequest) -> Response:
        return _json({"ok": True, "cached": len(api.cache.data)})

    def endpoint(name: str):
        async def handler(request: HTTPRequest) -> Response:
            return await api.answer(name, request)
        return handler

    routes = [Route("/", page), Route("/api/examples", example_list), Route("/api/health", health),
              *[Route(f"/api/{name}", endpoint(name), methods=["POST"]) for name in service.HANDLERS],
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    middleware = [Middleware(HostGuard, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.api = api
    return app
