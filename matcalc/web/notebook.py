"""The page inside a Jupyter notebook: the same front end, served from a background thread of the kernel on
loopback and shown in an IFrame.

    from matcalc.web.notebook import widget
    widget("x' A x", wrt="x", layout="denominator", A="symmetric(n)")

It is the whole page (expression, variables, steps, check, code), not a re-implementation; the state given
here is passed through the URL exactly as a shared link is. The browser showing the notebook must run on
the machine of the kernel (the server listens on 127.0.0.1 only).
"""

from __future__ import annotations

import threading
from urllib.parse import urlencode

_lock = threading.Lock()
_running: dict = {}


def start(port: int = 0, timeout: float = 120.0) -> str:
    """Start the server in a daemon thread once per kernel; returns its address."""
    with _lock:
        if "url" in _running:
            return _running["url"]
        import uvicorn

        from . import _bind, _url
        from .app import create_app

        sock = _bind("127.0.0.1", port)
        url = _url("127.0.0.1", sock.getsockname()[1])
        ready = threading.Event()
        app = create_app(allowed_hosts=["127.0.0.1", "localhost"], on_ready=ready.set)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                                  name="matcalc-web")
        thread.start()
        if not ready.wait(timeout):
            server.should_exit = True
            raise RuntimeError("the matcalc web server did not start")
        _running.update(url=url, server=server, thread=thread)
        return url


def stop() -> None:
    """Stop the background server (it also stops with the kernel)."""
    with _lock:
        server, thread = _running.pop("server", None), _running.pop("thread", None)
        _running.pop("url", None)
    if server is not None:
        server.should_exit = True
        thread.join(15)


def link(expr: str = "x' A x", wrt: str | None = None, layout: str = "numerator", order: int = 1,
         **declarations: str) -> str:
    """The page's address showing ``expr``: the same query a shared link has."""
    query = {"expr": expr}
    if wrt:
        query["wrt"] = wrt
    if layout != "numerator":
        query["layout"] = layout
    if order != 1:
        query["order"] = str(order)
    if declarations:
        query["let"] = ";".join(f"{name}:{kind}" for name, kind in declarations.items())
    return f"{start()}?{urlencode(query)}"


def widget(expr: str = "x' A x", wrt: str | None = None, layout: str = "numerator", order: int = 1,
           height: int = 720, **declarations: str):
    """The page as an IFrame for a notebook cell."""
    from IPython.display import IFrame

    return IFrame(link(expr, wrt, layout, order, **declarations), width="100%", height=height)
