"""``matcalc serve``: a local web page for matcalc, and the JSON API behind it.

Installed with the ``web`` extra (``pip install "matcalc-symbolic[web]"``: Starlette and Uvicorn). Importing this
package needs neither (``matcalc --help`` stays fast); :func:`serve` imports them. See docs/web.md for
the page, the API and the limits.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["serve", "add_arguments", "run"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``matcalc serve``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0 picks a free one)")
    parser.add_argument("--open", action="store_true", help="open the page in a web browser")
    parser.add_argument("--workers", type=int, default=4,
                        help="processes for derivations (default 4: a few slow ones leave the others room)")
    parser.add_argument("--check-workers", type=int, default=1, help="processes for SymPy checks (default 1)")
    parser.add_argument("--time-limit", type=float, default=5.0,
                        help="seconds a derivation may take before it is stopped (default 5)")


def run(args: argparse.Namespace) -> int:
    """``matcalc serve`` itself: exit code 1 when the web extra is missing or the port is taken."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print('error: matcalc serve needs the web extra: pip install "matcalc-symbolic[web]"', file=sys.stderr)
        return 1
    try:
        serve(args.host, args.port, open_browser=args.open, workers=args.workers,
              check_workers=args.check_workers, time_limit=args.time_limit)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _bind(host: str, port: int):
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so (else +40 ms per reply)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False, workers: int = 4,
          check_workers: int = 1, time_limit: float = 5.0) -> None:
    """Serve the page and the API until interrupted; prints the address (the real port when ``port=0``)."""
    import threading
    import webbrowser

    import uvicorn

    from .app import Settings, create_app

    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    # a browser reaching a loopback server through another name is a DNS-rebinding attempt: refuse it
    allowed = ["127.0.0.1", "localhost", "[::1]"] if host in LOOPBACK else None
    settings = Settings(derive_workers=max(1, workers), check_workers=max(1, check_workers), time_limit=time_limit)
    def ready() -> None:
        print(f"matcalc is serving at {url}  (Ctrl+C to stop)", flush=True)
        if open_browser:
            threading.Timer(0.5, webbrowser.open, args=(url,)).start()

    app = create_app(settings, allowed_hosts=allowed, on_ready=ready)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if host not in LOOPBACK:
        print(f"warning: listening on {host}: other machines can reach this server", file=sys.stderr)
    server.run(sockets=[sock])
