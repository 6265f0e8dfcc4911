"""Benchmark targets, each started as ``python -m benchmarks.servers TARGET --port N``.

Every target does the same work per request: verify the GitHub signature on
the raw body, parse the JSON, and return a small JSON body. Every target
also answers ``GET /healthz`` so the runner knows when it is ready.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import tempfile
from typing import Any

import fastapi
import litestar
from litestar.response import Response as LitestarResponse

from benchmarks.payload import PATH, SECRET

TARGETS = (
    "raw-aiohttp",
    "plughook-aiohttp",
    "raw-litestar",
    "plughook-litestar",
    "fastapi-reference",
)
_SECRET = SECRET.encode()


def signature_valid(body: bytes, header: str | None) -> bool:
    """Check ``sha256=<hex>`` over ``body`` the way a hand-written handler does."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(_SECRET, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[7:])


def raw_aiohttp() -> Any:
    from aiohttp import web

    async def github(request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_valid(body, request.headers.get("X-Hub-Signature-256")):
            return web.json_response({"error": "signature mismatch"}, status=401)
        payload = json.loads(body)
        return web.json_response({"status": "ok", "ref": payload["ref"]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post(PATH, github)
    app.router.add_get("/healthz", health)
    return app


def bench_plugin() -> Any:
    from core import Plugin, WebhookRequest, signatures
    from core.config import setting

    plugin = Plugin("bench", version="1.0")

    @plugin.mount_config()
    class BenchConfig:
        WEBHOOK_SECRET: str = setting("", secret=True)

    @plugin.mount_webhook("/github", methods=["POST"], verify=signatures.github("WEBHOOK_SECRET"))
    async def github(request: WebhookRequest) -> dict[str, str]:
        payload = await request.json()
        return {"status": "ok", "ref": payload["ref"]}

    return plugin


def webhook_app(data_dir: str) -> Any:
    from core import Settings, WebhookApp

    settings = Settings(log_level="WARNING")
    return WebhookApp(
        [bench_plugin()],
        {"bench": {"WEBHOOK_SECRET": SECRET}},
        settings=settings,
        data_dir=data_dir,
    )


# Litestar and FastAPI read handler annotations at start-up, so the types they
# name are imported at module level.
@litestar.post(PATH, status_code=200)
async def litestar_github(
    request: litestar.Request[Any, Any, Any],
) -> LitestarResponse[dict[str, str]]:
    body = await request.body()
    if not signature_valid(body, request.headers.get("X-Hub-Signature-256")):
        return LitestarResponse({"error": "signature mismatch"}, status_code=401)
    payload = json.loads(body)
    return LitestarResponse({"status": "ok", "ref": payload["ref"]})


@litestar.get("/healthz")
async def litestar_health() -> dict[str, str]:
    return {"status": "ok"}


def raw_litestar() -> Any:
    return litestar.Litestar([litestar_github, litestar_health], debug=False, logging_config=None)


def fastapi_reference() -> Any:
    from fastapi.responses import JSONResponse

    app = fastapi.FastAPI()

    # The plugin-author guide's style: a route reading the raw body itself.
    @app.post(PATH)
    async def github(request: fastapi.Request) -> Any:
        body = await request.body()
        if not signature_valid(body, request.headers.get("X-Hub-Signature-256")):
            return JSONResponse({"error": "signature mismatch"}, status_code=401)
        payload = json.loads(body)
        return {"status": "ok", "ref": payload["ref"]}

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def run_aiohttp(app: Any, port: int) -> None:
    import uvloop
    from aiohttp import web

    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def run_plughook_aiohttp(data_dir: str, port: int) -> None:
    """Serve the bench plugin with the code of ``plughook serve --adapter aiohttp``.

    It runs ``adapters.server.serve`` on a uvloop event loop, as the command
    does, and shuts down gracefully on SIGTERM or SIGINT.
    """
    import uvloop

    from adapters.server import bind_socket, serve

    app = webhook_app(data_dir)
    sock = bind_socket("127.0.0.1", port)

    async def serve_until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with serve(app, "aiohttp", sock):
            await stop.wait()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_until_signal())


def run_uvicorn(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one HTTP benchmark target.")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    args = parser.parse_args()
    asyncio.set_event_loop_policy(None)
    with tempfile.TemporaryDirectory(prefix="plughook-bench-") as data_dir:
        if args.target == "raw-aiohttp":
            run_aiohttp(raw_aiohttp(), args.port)
        elif args.target == "plughook-aiohttp":
            run_plughook_aiohttp(data_dir, args.port)
        elif args.target == "raw-litestar":
            run_uvicorn(raw_litestar(), args.port)
        elif args.target == "plughook-litestar":
            from adapters.litestar import create_app as create_litestar

            run_uvicorn(create_litestar(webhook_app(data_dir)), args.port)
        else:
            run_uvicorn(fastapi_reference(), args.port)


if __name__ == "__main__":
    main()
