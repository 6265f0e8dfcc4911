"""Load generator used when ``wrk`` is not installed: aiohttp clients in one process.

``python -m benchmarks.loadgen URL --duration 5 --connections 32`` prints one
JSON object with the request count, elapsed seconds, latency percentiles in
microseconds and the number of non-2xx answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from benchmarks.payload import BODY, HEADERS


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    deadline: float,
    latencies: list[float],
    failures: list[int],
) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()
            if response.status >= 300:
                failures.append(response.status)
        latencies.append(time.perf_counter() - started)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the value at ``fraction`` (0..1) of a sorted list, nearest rank."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(url: str, duration: float, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    failures: list[int] = []
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(
            *(worker(session, url, deadline, latencies, failures) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p90_us": percentile(latencies, 0.90) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
        "non_2xx": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Send signed GitHub pushes to URL.")
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.duration, args.connections))))


if __name__ == "__main__":
    main()
