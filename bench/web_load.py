"""Load test of ``matcalc serve`` on loopback: concurrent clients deriving the page's examples.

    PYTHONPATH=. python bench/web_load.py                      # starts its own server on a free port
    PYTHONPATH=. python bench/web_load.py --url http://127.0.0.1:8765

Bounded in count (``--clients`` x ``--requests``) and time (``--deadline`` seconds per phase), and refuses
any address that is not loopback. Phases: (1) the examples as the page sends them (answers cached after
the first), (2) every request a new expression (each one derived by a worker), both first with every client
deriving ``--rate`` times a second (a crowd of users) and then back to back (saturation), (3) one client deriving new
expressions one at a time, alone and then while a check that runs into its time limit is in progress: the
difference is how much a slow check delays a derivation. The client is a minimal HTTP/1.1 keep-alive
client on asyncio streams, so that the measuring costs little CPU on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from matcalc.web.examples import EXAMPLES  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SERVER_PID: int | None = None  # set when this script started the server: then its CPU time is measured


def cpu_seconds(root: int | None) -> float | None:
    """CPU time (user + system) used so far by process ``root`` and its descendants, from /proc (Linux).

    On a machine shared with other work, derivations per CPU-second of the server is the figure that does
    not depend on how much of the machine the server happened to get."""
    if root is None or not Path("/proc").is_dir():
        return None
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        grew = bool(more)
        tree |= more
    import os

    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


class Client:
    """One keep-alive connection; ``post`` returns (status, seconds)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: dict) -> tuple[int, float, dict]:
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        start = time.perf_counter()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(head + data)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), time.perf_counter() - start, json.loads(payload)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def bodies(unique: bool, count: int) -> list[dict]:
    base = [{k: v for k, v in e.items() if k not in ("title", "source")} for e in EXAMPLES]
    out = []
    for i in range(count):
        b = dict(base[i % len(base)])
        if unique:  # a new text each time: a cache miss, so a real derivation
            b["expr"] = f"({b['expr'].split(' where ')[0]}) * {i + 2}" + (
                " where " + b["expr"].split(" where ")[1] if " where " in b["expr"] else "")
        out.append(b)
    return out


def summary(name: str, latencies: list[float], statuses: list[int], wall: float) -> dict:
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    return {"phase": name, "requests": len(lat), "ok": sum(s == 200 for s in statuses), "seconds": round(wall, 2),
            "per_second": round(len(lat) / wall, 1), "median_ms": round(statistics.median(lat) * 1e3, 1),
            "p90_ms": round(q[89] * 1e3, 1), "p99_ms": round(q[98] * 1e3, 1), "max_ms": round(lat[-1] * 1e3, 1)}


async def crowd(host, port, name, clients, per_client, unique, deadline, interval=0.0, offset=0) -> dict:
    """``clients`` connections, each sending ``per_client`` derivations: one every ``interval`` seconds (a
    user at the page), or back to back when ``interval`` is 0 (the server's saturation throughput)."""
    work = bodies(unique, clients * per_client + offset)[offset:]
    latencies, statuses = [], []
    stop = time.monotonic() + deadline

    async def one(k: int):
        c = Client(host, port)
        await asyncio.sleep(interval * k / clients)  # spread the clients' first requests over one interval
        try:
            for j in range(per_client):
                if time.monotonic() > stop:
                    return
                t0 = time.monotonic()
                status, took, _ = await c.post("/api/derive", work[k * per_client + j])
                if interval:
                    await asyncio.sleep(max(0.0, interval - (time.monotonic() - t0)))
                statuses.append(status)
                latencies.append(took)
        finally:
            await c.close()

    start, cpu = time.perf_counter(), cpu_seconds(SERVER_PID)
    await asyncio.gather(*[one(k) for k in range(clients)])
    out = summary(name, latencies, statuses, time.perf_counter() - start)
    if cpu is not None:
        used = cpu_seconds(SERVER_PID) - cpu
        out["server_cpu_s"] = round(used, 2)
        out["per_cpu_second"] = round(len(latencies) / used, 1) if used else None
    return out


async def delay_by_check(host, port, samples: int) -> list[dict]:
    """A lone client's derivation latency, without and then with a check running into its 10 s limit."""
    async def lone(tag: str, offset: int) -> dict:
        c = Client(host, port)
        lat, st = [], []
        start = time.perf_counter()
        for i in range(samples):
            status, took, _ = await c.post("/api/derive", {"expr": f"x' A x * {offset + i}", "steps": False})
            lat.append(took)
            st.append(status)
            await asyncio.sleep(0.02)
        await c.close()
        return summary(tag, lat, st, time.perf_counter() - start)

    alone = await lone("one client, no check", 10_000)
    checker = Client(host, port)
    check = asyncio.create_task(checker.post("/api/check", {"expr": "tr(X^40)", "time_limit": 10}))
    await asyncio.sleep(1.0)  # the check is running now
    during = await lone("one client, a slow check running", 20_000)
    status, took, reply = await check
    await checker.close()
    during["check"] = f"{reply.get('method')} after {took:.1f} s"
    return [alone, during]


async def main_async(url: str, clients: int, per_client: int, deadline: float, rate: float) -> list[dict]:
    parsed = urlparse(url)
    if parsed.hostname not in LOOPBACK:
        raise SystemExit(f"refusing to load-test {parsed.hostname}: loopback only")
    host, port = parsed.hostname, parsed.port
    warm = Client(host, port)
    for b in bodies(False, len(EXAMPLES)):
        await warm.post("/api/derive", b)
    await warm.close()
    n = clients * per_client
    results = [
        await crowd(host, port, f"{clients} clients at {rate:g}/s each, the examples (cached)", clients, per_client,
                    False, deadline, interval=1 / rate),
        await crowd(host, port, f"{clients} clients at {rate:g}/s each, new expressions (uncached)", clients,
                    per_client, True, deadline, interval=1 / rate),
        await crowd(host, port, f"{clients} clients back to back, the examples (cached)", clients, per_client,
                    False, deadline),
        await crowd(host, port, f"{clients} clients back to back, new expressions (uncached)", clients, per_client,
                    True, deadline, offset=n),
    ]
    results += await delay_by_check(host, port, 60)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--requests", type=int, default=10, help="requests per client (default 10)")
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds at most per phase")
    ap.add_argument("--rate", type=float, default=1.25, help="derivations a second per paced client (default 1.25)")
    args = ap.parse_args()
    server = None
    if args.url is None:
        from web_server import Server

        server = Server()
        args.url = server.url
        global SERVER_PID
        SERVER_PID = server.proc.pid
    try:
        for row in asyncio.run(main_async(args.url, args.clients, args.requests, args.deadline, args.rate)):
            print(json.dumps(row, ensure_ascii=False))
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
