"""Smoke tests: every benchmark entry point runs briefly and writes its results.

No assertion is made on timings; these only keep the scripts from rotting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_module(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_core_benchmark_writes_results(tmp_path: Path) -> None:
    output = tmp_path / "core.json"
    completed = run_module(
        "benchmarks.core",
        "--seconds",
        "0.1",
        "--upload-mib",
        "4",
        "--messages",
        "50",
        "--output",
        str(output),
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(output.read_text())
    assert result["upload"]["saved_bytes"] == 4 * 2**20
    assert set(result["dispatch"]) == {"inline", "deadline", "timer", "github"}
    assert result["outbox"]["messages"] == 50


def test_http_benchmark_with_loadgen(tmp_path: Path) -> None:
    output = tmp_path / "2026-01-01-test.json"
    completed = run_module(
        "benchmarks.http",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--rounds",
        "1",
        "--connections",
        "4",
        "--no-wrk",
        "--output",
        str(output),
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(output.read_text())
    assert set(result["targets"]) == {
        "raw-aiohttp",
        "plughook-aiohttp",
        "raw-litestar",
        "plughook-litestar",
        "fastapi-reference",
    }
    assert all(figures["non_2xx"] == 0 for figures in result["targets"].values())
    assert all(figures["requests"] > 0 for figures in result["targets"].values())


def test_report_renders_page_and_plot(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    http_run = run_module(
        "benchmarks.http",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--rounds",
        "1",
        "--connections",
        "2",
        "--no-wrk",
        "--targets",
        "raw-aiohttp",
        "plughook-aiohttp",
        "--output",
        str(results / "2026-01-01-test.json"),
    )
    assert http_run.returncode == 0, http_run.stderr
    core_run = run_module(
        "benchmarks.core",
        "--seconds",
        "0.05",
        "--upload-mib",
        "2",
        "--messages",
        "20",
        "--output",
        str(results / "2026-01-01-test-core.json"),
    )
    assert core_run.returncode == 0, core_run.stderr
    page = tmp_path / "README.md"
    report = run_module("benchmarks.report", "--results", str(results), "--output", str(page))
    assert report.returncode == 0, report.stderr
    text = page.read_text()
    assert "| plughook-aiohttp |" in text
    assert "trivial dispatch" in text
    assert "outbox, console channel" in text
    assert (tmp_path / "results" / "http.png").stat().st_size > 10_000


def test_instances_benchmark_runs(tmp_path: Path) -> None:
    output = tmp_path / "instances.json"
    completed = run_module(
        "benchmarks.instances", "--duration", "1", "--connections", "4", "--output", str(output)
    )
    assert completed.returncode == 0, completed.stderr
    cases = json.loads(output.read_text())["cases"]
    assert set(cases) == {"sqlite-1", "redis-1", "redis-2"}
    assert all(figures["deliveries"] > 0 for figures in cases.values())
    assert all(figures["failed"] == 0 for figures in cases.values())
