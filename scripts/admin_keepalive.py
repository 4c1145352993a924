#!/usr/bin/env python3
"""Admin API under many keep-alive connections (BENCHMARKS.md "Admin under many
connections").

    scripts/admin_keepalive.py HOST:PORT [--idle 256] [--clients 200] [--runs 5]

1. Opens `--idle` keep-alive connections at once, sends one GET /health on each,
   reads the answer (timed: `idle within 1 s`, `last`) and leaves them open and idle.
2. With those held, times a GET /health on a fresh connection (`fresh_ms`).
3. Opens `--clients` more keep-alive connections at once, each sending GET /health, and
   times each answer from the moment all were started (`p50_ms`, `p99_ms`, `max_ms`),
   counting those answered within 1 s.

Prints one line per run and a median line. Uses only the standard library.
"""

import argparse
import asyncio
import statistics
import sys
import time

REQUEST = b"GET /health HTTP/1.1\r\nHost: weir\r\nConnection: keep-alive\r\n\r\n"


async def read_response(reader):
    """Reads one HTTP/1.1 response; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def one_request(host, port, keep):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(REQUEST)
    await writer.drain()
    status = await read_response(reader)
    if keep is not None:
        keep.append(writer)
    else:
        writer.close()
    return status


async def run(host, port, idle, clients, timeout):
    held = []
    # Idle keep-alive connections, opened at once, each with one answered request.
    start = time.perf_counter()
    idle_times = []

    async def opened():
        s = await asyncio.wait_for(one_request(host, port, held), timeout)
        idle_times.append((time.perf_counter() - start) * 1000)
        return s

    results = await asyncio.gather(*(opened() for _ in range(idle)), return_exceptions=True)
    idle_ok = sum(1 for r in results if r == 200 or r == 503)
    idle_within = sum(1 for t in idle_times if t <= 1000)
    idle_max = max(idle_times) if idle_times else float("nan")
    start = time.perf_counter()
    status = await asyncio.wait_for(one_request(host, port, None), timeout)
    fresh_ms = (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    times = []

    async def timed():
        s = await asyncio.wait_for(one_request(host, port, held), timeout)
        times.append((time.perf_counter() - start) * 1000)
        return s

    burst = await asyncio.gather(*(timed() for _ in range(clients)), return_exceptions=True)
    answered = sum(1 for r in burst if isinstance(r, int))
    for w in held:
        w.close()
    times.sort()
    within = sum(1 for t in times if t <= 1000)

    def pct(q):
        if not times:
            return float("nan")
        return times[min(len(times) - 1, max(0, int(round(q * len(times))) - 1))]

    return {
        "idle_open": idle_ok,
        "idle_within_1s": idle_within,
        "idle_max_ms": idle_max,
        "fresh_status": status,
        "fresh_ms": fresh_ms,
        "answered": answered,
        "within_1s": within,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": times[-1] if times else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--idle", type=int, default=256)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    rows = []
    for i in range(args.runs):
        r = asyncio.run(run(host, int(port), args.idle, args.clients, args.timeout))
        rows.append(r)
        print(
            f"run {i + 1}: idle opened {r['idle_open']}/{args.idle} "
            f"({r['idle_within_1s']} within 1 s, last {r['idle_max_ms']:.0f} ms), fresh /health "
            f"{r['fresh_ms']:.1f} ms ({r['fresh_status']}), burst answered "
            f"{r['answered']}/{args.clients}, within 1 s {r['within_1s']}, "
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms"
        )
        time.sleep(1)
    med = lambda k: statistics.median(r[k] for r in rows)
    print(
        f"median: idle opened within 1 s {med('idle_within_1s'):.0f}/{args.idle} "
        f"(last {med('idle_max_ms'):.0f} ms), fresh /health {med('fresh_ms'):.1f} ms, within 1 s "
        f"{med('within_1s'):.0f}/{args.clients}, p50 {med('p50_ms'):.1f} ms, "
        f"p99 {med('p99_ms'):.1f} ms, max {med('max_ms'):.1f} ms"
    )
    ok = all(r["answered"] == args.clients and r["idle_open"] == args.idle for r in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
