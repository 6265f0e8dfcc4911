"""Child process of the upload benchmark: stream a multipart upload through the app.

``python -m benchmarks.upload_child MIB`` sends a MIB-mebibyte file part,
generated in 1 MiB chunks, through ``WebhookApp.handle`` to an endpoint that
saves it, and prints the RSS growth (peak RSS minus RSS before the upload).
Linux only: it reads /proc/self/status.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from core import Plugin, WebhookApp, WebhookRequest
from core.store import MemoryStorage

CHUNK = b"\x5a" * (1024 * 1024)
BOUNDARY = "plughookbenchmarkboundary"


def status_kib(field: str) -> int:
    """Return a memory field of /proc/self/status (``VmRSS``, ``VmHWM``) in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


async def body(megabytes: int) -> AsyncIterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    for _ in range(megabytes):
        yield CHUNK
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def main(megabytes: int) -> dict[str, Any]:
    plugin = Plugin("upload-bench", version="1")
    folder = Path(tempfile.mkdtemp(prefix="plughook-upload-"))

    @plugin.mount_webhook("/upload", methods=["POST"], max_body_size=megabytes * 2**20 + 4096)
    async def upload(request: WebhookRequest) -> dict[str, int]:
        form = await request.form()
        file = form["file"]
        assert not isinstance(file, str)
        return {"size": await file.save(folder / "big.bin")}

    app = WebhookApp([plugin], store=MemoryStorage())
    async with app.running():
        before = status_kib("VmRSS")
        request = WebhookRequest(
            "POST",
            "upload-bench",
            "/upload",
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            body=body(megabytes),
        )
        response = await app.handle(request)
        # VmHWM, the peak RSS of this program: getrusage's ru_maxrss would
        # include the parent's RSS from before the exec on Linux.
        peak = status_kib("VmHWM")
    saved = (folder / "big.bin").stat().st_size
    (folder / "big.bin").unlink()
    return {
        "megabytes": megabytes,
        "status": response.status,
        "saved_bytes": saved,
        "rss_before_mib": before / 1024,
        "rss_peak_mib": peak / 1024,
        "rss_growth_mib": (peak - before) / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, int(sys.argv[1]))))
