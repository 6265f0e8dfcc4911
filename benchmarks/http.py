"""HTTP benchmark: plughook's adapters against their raw frameworks and FastAPI.

``python -m benchmarks.http [--duration 10] [--connections 32] [--targets ...]``
starts every target server pinned to CPU 0 (``taskset``), then measures them
in turns with the load generator pinned to CPU 1: ``wrk`` with a Lua script
when installed, else ``benchmarks.loadgen``. Each target is measured
``--rounds`` times, alternating targets so that drift in a shared machine hits
all of them alike; the median round is reported. Results are printed and
written to ``benchmarks/results/<date>-<host>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.machine import describe_machine
from benchmarks.payload import BODY, HEADERS, PATH
from benchmarks.servers import TARGETS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STARTUP_TIMEOUT = 30.0

LUA_TEMPLATE = """
local file = io.open("{body_path}", "rb")
wrk.method = "POST"
wrk.body = file:read("*all")
file:close()
{headers}
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    errors.status + errors.connect + errors.read + errors.write + errors.timeout))
end
"""
RESULT_LINE = re.compile(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(cpu: int, command: list[str]) -> list[str]:
    """Prefix ``command`` with ``taskset -c cpu`` where taskset exists and the CPU does."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        return ["taskset", "-c", str(cpu), *command]
    return command


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"benchmark server on port {port} exited with status {process.returncode}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    msg = f"benchmark server on port {port} did not answer /healthz within {STARTUP_TIMEOUT} s"
    raise RuntimeError(msg)


def start_server(target: str, stack: ExitStack) -> int:
    port = free_port()
    command = pinned(0, [sys.executable, "-m", "benchmarks.servers", target, "--port", str(port)])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    stack.callback(_stop, process)
    wait_ready(port, process)
    return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_lua(folder: Path) -> Path:
    body_path = folder / "body.json"
    body_path.write_bytes(BODY)
    headers = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in HEADERS.items())
    script = folder / "post.lua"
    script.write_text(LUA_TEMPLATE.format(body_path=body_path, headers=headers))
    return script


def measure_wrk(url: str, seconds: float, connections: int, script: Path) -> dict[str, float]:
    command = pinned(
        1, ["wrk", "-t1", f"-c{connections}", f"-d{max(seconds, 1):.0f}s", "-s", str(script), url]
    )
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = RESULT_LINE.search(output)
    if match is None:
        msg = f"wrk printed no result line:\n{output}"
        raise RuntimeError(msg)
    requests, duration_us, p50, p90, p99, errors = (int(value) for value in match.groups())
    return {
        "requests": requests,
        "seconds": duration_us / 1e6,
        "p50_us": p50,
        "p90_us": p90,
        "p99_us": p99,
        "non_2xx": errors,
    }


def measure_loadgen(url: str, seconds: float, connections: int) -> dict[str, float]:
    command = pinned(
        1,
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            url,
            "--duration",
            str(seconds),
            "--connections",
            str(connections),
        ],
    )
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    rounds: dict[str, list[dict[str, float]]] = {target: [] for target in args.targets}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        script = write_lua(Path(folder))
        ports = {target: start_server(target, stack) for target in args.targets}

        def measure(target: str, seconds: float) -> dict[str, float]:
            url = f"http://127.0.0.1:{ports[target]}{PATH}"
            if use_wrk:
                return measure_wrk(url, seconds, args.connections, script)
            return measure_loadgen(url, seconds, args.connections)

        for target in args.targets:
            measure(target, args.warmup)
        for round_number in range(args.rounds):
            for target in args.targets:
                figures = measure(target, args.duration)
                figures["rps"] = figures["requests"] / figures["seconds"]
                rounds[target].append(figures)
                print(
                    f"round {round_number + 1}: {target:18} {figures['rps']:9.0f} req/s "
                    f"p99 {figures['p99_us'] / 1000:6.2f} ms",
                    file=sys.stderr,
                )
    return {
        "machine": describe_machine(),
        "load_generator": "wrk" if use_wrk else "benchmarks.loadgen",
        "duration": args.duration,
        "connections": args.connections,
        "rounds": args.rounds,
        "payload_bytes": len(BODY),
        "targets": {target: summarize(values) for target, values in rounds.items()},
    }


def summarize(values: list[dict[str, float]]) -> dict[str, Any]:
    """Return the round with the median throughput, plus every round's figures."""
    ordered = sorted(values, key=lambda figures: figures["rps"])
    median = ordered[len(ordered) // 2]
    return {
        **median,
        "rps_rounds": [figures["rps"] for figures in values],
        "rps_median": statistics.median(figures["rps"] for figures in values),
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{'target':20} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for target, figures in result["targets"].items():
        print(
            f"{target:20} {figures['rps']:9.0f} {figures['p50_us'] / 1000:8.2f} "
            f"{figures['p90_us'] / 1000:8.2f} {figures['p99_us'] / 1000:8.2f} "
            f"{figures['non_2xx']:7.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark plughook adapters over HTTP.")
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds of load per target and round (default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load per target before measuring (default 2)",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent connections (default 32)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measurements per target, alternating targets (default 3)",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=TARGETS,
        default=list(TARGETS),
        help="targets to measure (default all)",
    )
    parser.add_argument(
        "--no-wrk",
        action="store_true",
        help="use the bundled aiohttp load generator even if wrk is installed",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="result file (default benchmarks/results/<date>-<host>.json)",
    )
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    output = args.output or RESULTS_DIR / (
        f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {output}")


if __name__ == "__main__":
    main()
