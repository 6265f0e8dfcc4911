"""Render the benchmark results page and plot from the newest result files.

``python -m benchmarks.report`` reads the newest ``results/*-core.json`` and
HTTP result (``results/<date>-<host>.json``), writes ``benchmarks/README.md``
and ``benchmarks/results/http.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
ORDER = [
    "raw-aiohttp",
    "plughook-aiohttp",
    "raw-litestar",
    "plughook-litestar",
    "fastapi-reference",
]
COLORS = {
    "raw-aiohttp": "#9ecae1",
    "plughook-aiohttp": "#3182bd",
    "raw-litestar": "#a1d99b",
    "plughook-litestar": "#31a354",
    "fastapi-reference": "#fdae6b",
}

NOTES_FILE = "NOTES.md"


def newest(folder: Path, pattern: str, exclude: tuple[str, ...] = ()) -> Path | None:
    """Return the newest file in ``folder`` matching ``pattern`` whose name has no ``exclude``."""
    files = [p for p in folder.glob(pattern) if not any(part in p.name for part in exclude)]
    return max(files, key=lambda p: (p.stat().st_mtime, p.name), default=None)


def shown_path(path: Path) -> str:
    """Return ``path`` relative to the benchmarks folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(BENCHMARKS))
    except ValueError:
        return str(path)


def ratio(result: dict[str, Any], numerator: str, denominator: str) -> str:
    targets = result["targets"]
    if numerator not in targets or denominator not in targets:
        return "n/a"
    return f"{targets[numerator]['rps'] / targets[denominator]['rps']:.2f}"


def p99_ratio(result: dict[str, Any], numerator: str, denominator: str) -> str:
    targets = result["targets"]
    if numerator not in targets or denominator not in targets:
        return "n/a"
    return f"{targets[numerator]['p99_us'] / targets[denominator]['p99_us']:.2f}"


def http_section(result: dict[str, Any], source: Path, plot: str) -> list[str]:
    machine = result["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    lines = [
        "## HTTP (`python -m benchmarks.http`)",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['platform']}.",
        f"Packages: {packages}.",
        f"Load: {result['load_generator']}, {result['connections']} connections, "
        f"{result['duration']:.0f} s per round, {result['rounds']} rounds alternating targets, "
        f"median round shown; server pinned to CPU 0, load generator to CPU 1. "
        f"Payload: a {result['payload_bytes']}-byte GitHub push with a valid "
        "`X-Hub-Signature-256`; every handler verifies it, parses the JSON and returns a small "
        f"JSON body. Source: `{shown_path(source)}`.",
        "",
        "| target | requests/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for target in ORDER:
        figures = result["targets"].get(target)
        if figures is None:
            continue
        lines.append(
            f"| {target} | {figures['rps']:.0f} | {figures['p50_us'] / 1000:.2f} | "
            f"{figures['p90_us'] / 1000:.2f} | {figures['p99_us'] / 1000:.2f} | "
            f"{figures['non_2xx']:.0f} |"
        )
    lines += [
        "",
        "| ratio | measured | target |",
        "|---|---:|---:|",
        f"| plughook-aiohttp / raw-aiohttp, requests/s | "
        f"{ratio(result, 'plughook-aiohttp', 'raw-aiohttp')} | ≥ 0.90 |",
        f"| plughook-litestar / raw-litestar, requests/s | "
        f"{ratio(result, 'plughook-litestar', 'raw-litestar')} | ≥ 0.90 |",
        f"| plughook-aiohttp / fastapi-reference, requests/s | "
        f"{ratio(result, 'plughook-aiohttp', 'fastapi-reference')} | ≥ 2.0 |",
        f"| plughook-aiohttp / raw-aiohttp, p99 | "
        f"{p99_ratio(result, 'plughook-aiohttp', 'raw-aiohttp')} | ≤ 1.2 |",
        f"| plughook-litestar / raw-litestar, p99 | "
        f"{p99_ratio(result, 'plughook-litestar', 'raw-litestar')} | ≤ 1.2 |",
        "",
        f"![requests per second and p99 latency per target]({plot})",
        "",
    ]
    return lines


def core_section(result: dict[str, Any], source: Path) -> list[str]:
    machine = result["machine"]
    dispatch = result["dispatch"]
    lookup = result["lookup"]
    lines = [
        "## In-process core (`python -m benchmarks.core`)",
        "",
        f"Machine: {machine.get('cpu', machine.get('processor', ''))}, "
        f"{machine.get('cores', '?')} cores, Python {machine['python']}. "
        f"Median of 5 rounds in one process. Source: `{shown_path(source)}`.",
        "",
        "| case | figure | target |",
        "|---|---:|---:|",
        f"| trivial dispatch, `respond_within=None` | "
        f"{dispatch['inline']['us_per_request']:.1f} µs | < 10 µs |",
        f"| trivial dispatch, default `respond_within=9.0`, handler in its own task | "
        f"{dispatch['deadline']['us_per_request']:.1f} µs | |",
    ]
    if "timer" in dispatch:
        lines.append(
            f"| trivial dispatch, default `respond_within=9.0`, as the adapters call it | "
            f"{dispatch['timer']['us_per_request']:.1f} µs | |"
        )
    lines += [
        f"| route lookup, 10 endpoints | {lookup['10']['us_per_lookup'] * 1000:.0f} ns | |",
        f"| route lookup, 10,000 endpoints | {lookup['10000']['us_per_lookup'] * 1000:.0f} ns | "
        f"within 10% of 10 |",
        f"| lookup ratio 10,000 / 10 | {lookup['ratio_10000_vs_10']:.2f} | ≤ 1.10 |",
    ]
    for label, figures in result.get("verification", {}).items():
        lines.append(
            f"| GitHub signature verification, {label} body | "
            f"{figures['us_per_verification']:.1f} µs | |"
        )
    github = dispatch.get("github")
    if github:
        lines.append(
            f"| GitHub endpoint in-process (verify, parse, answer) | "
            f"{github['us_per_request']:.1f} µs | |"
        )
    upload = result.get("upload")
    if upload:
        lines.append(
            f"| RSS growth streaming a {upload['megabytes']} MiB upload | "
            f"{upload['rss_growth_mib']:.1f} MiB | < 32 MiB |"
        )
    outbox = result.get("outbox")
    if outbox:
        lines.append(
            f"| outbox, console channel ({outbox['messages']} messages, {outbox['chats']} chats, "
            f"SQLite) | {outbox['console_per_s']:.0f} messages/s | |"
        )
        if outbox.get("console_redis_per_s"):
            lines.append(
                f"| outbox, console channel, Redis Streams | "
                f"{outbox['console_redis_per_s']:.0f} messages/s | |"
            )
        lines.append(
            f"| outbox, OneBot v11 channel to a loopback server | "
            f"{outbox['onebot_per_s']:.0f} messages/s | |"
        )
    lines.append("")
    return lines


def instances_section(result: dict[str, Any], source: Path) -> list[str]:
    machine = result["machine"]
    labels = {
        "sqlite-1": "one instance, SQLite",
        "redis-1": "one instance, Redis",
        "redis-2": "two instances, one Redis",
    }
    lines = [
        "## Several instances (`python -m benchmarks.instances`)",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}. "
        f"Real `plughook serve` processes with the monitor-alert plugin, a private "
        f"redis-server on a Unix socket, and the load generator, all on the same "
        f"{machine['cores']} cores; {result['connections']} connections round-robin over "
        f"the instances for {result['duration']:.0f} s. Every delivery is verified, logged "
        f"and queued as a chat message. Source: `{shown_path(source)}`.",
        "",
        "| case | deliveries/s |",
        "|---|---:|",
    ]
    for case, label in labels.items():
        figures = result["cases"].get(case)
        if figures is not None:
            lines.append(f"| {label} | {figures['deliveries_per_s']:.0f} |")
    lines.append("")
    return lines


def plot_http(result: dict[str, Any], output: Path) -> None:
    targets = [t for t in ORDER if t in result["targets"]]
    rps = [result["targets"][t]["rps"] for t in targets]
    p99 = [result["targets"][t]["p99_us"] / 1000 for t in targets]
    colors = [COLORS[t] for t in targets]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    left.bar(targets, rps, color=colors)
    left.set_title("Throughput (higher is better)")
    left.set_ylabel("requests per second")
    right.bar(targets, p99, color=colors)
    right.set_title("p99 latency (lower is better)")
    right.set_ylabel("milliseconds")
    for axis, values, fmt in ((left, rps, "{:.0f}"), (right, p99, "{:.1f}")):
        axis.tick_params(axis="x", labelrotation=25)
        for index, value in enumerate(values):
            axis.annotate(fmt.format(value), (index, value), ha="center", va="bottom", fontsize=9)
    figure.suptitle(
        f"signed GitHub push, {result['connections']} connections, {result['machine']['cpu']}"
    )
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)


def render(results: Path, output: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Figures measured on the machine named in each section; rerun on yours, the "
        "machines here are shared and noisy.",
        "",
    ]
    http_file = newest(results, "*.json", exclude=("-core", "-instances"))
    if http_file is not None:
        http_result = json.loads(http_file.read_text())
        plot = output.parent / "results" / "http.png"
        plot_http(http_result, plot)
        lines += http_section(http_result, http_file, str(plot.relative_to(output.parent)))
    core_file = newest(results, "*-core.json")
    if core_file is not None:
        lines += core_section(json.loads(core_file.read_text()), core_file)
    instances_file = newest(results, "*-instances.json")
    if instances_file is not None:
        lines += instances_section(json.loads(instances_file.read_text()), instances_file)
    notes = output.parent / NOTES_FILE
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    output.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description="Render benchmarks/README.md and the plot.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of result files")
    parser.add_argument(
        "--output", type=Path, default=BENCHMARKS / "README.md", help="results page to write"
    )
    args = parser.parse_args()
    render(args.results, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
