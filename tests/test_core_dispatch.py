"""Dispatch through WebhookApp.handle: routing, results, errors and bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from typing import Any

import pytest

from core import Plugin, WebhookRequest, WebhookResponse
from core.errors import BadRequest, ConfigError, Forbidden, HTTPError, NotFound, Unauthorized
from core.response import to_response
from core.routing import Router, normalize_path, split_webhook_path
from core.testing import WebhookTestClient

pytestmark = pytest.mark.anyio

demo = Plugin("demo", version="1.2.3", description="dispatch tests")
BASE = "/api/plugin/demo/webhook"

RESULTS: dict[str, Any] = {
    "dict": {"a": 1, "文": "字"},
    "list": [1, "two"],
    "str": "hello 世界",
    "bytes": b"\x00\x01raw",
    "none": None,
    "response": WebhookResponse(201, b"<x/>", {"X-Custom": "yes"}, "application/xml"),
    "pair": ({"error": "bad token"}, 401),
    "triple": ("created", 201, {"Location": "/things/1"}),
    "none-pair": (None, 202),
}


@demo.mount_webhook("/result", methods=["POST"])
async def result(request: WebhookRequest) -> Any:
    return RESULTS[request.query["kind"]]


@demo.mount_webhook("/echo")
async def echo(request: WebhookRequest) -> dict[str, Any]:
    return {
        "method": request.method,
        "event": request.headers.get("X-GitHub-Event"),
        "event_lower": request.headers.get("x-github-event"),
        "multi": request.headers.getall("X-Multi", []),
        "tags": request.query.getall("tag", []),
        "client": request.client,
        "text": await request.text(),
    }


@demo.mount_webhook("/json", methods=["POST"])
async def parse_json(request: WebhookRequest) -> Any:
    return {"parsed": await request.json()}


@demo.mount_webhook("/form", methods=["POST"])
async def parse_form(request: WebhookRequest) -> Any:
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


@demo.mount_webhook("/small", methods=["POST"], max_body_size=10)
async def small(request: WebhookRequest) -> Any:
    return {"size": len(await request.body())}


@demo.mount_webhook("/no-args")
async def no_args() -> str:
    return "no request needed"


@demo.mount_webhook("/crash")
async def crash() -> Any:
    raise RuntimeError("secret internals")


@demo.mount_webhook("/invalid-result")
async def invalid_result() -> Any:
    return object()


@demo.mount_webhook("/invalid-status")
async def invalid_status() -> Any:
    return {"x": 1}, 999


ERRORS: dict[str, HTTPError] = {
    "bad": BadRequest("missing field 'service'"),
    "unauthorized": Unauthorized("bad token"),
    "forbidden": Forbidden("not allowed"),
    "notfound": NotFound("no such task"),
    "teapot": HTTPError(418, "short and stout"),
}


@demo.mount_webhook("/raise", methods=["GET"])
async def raise_error(request: WebhookRequest) -> Any:
    raise ERRORS[request.query["kind"]]


@pytest.fixture
async def client() -> Any:
    async with WebhookTestClient([demo]) as test_client:
        yield test_client


async def test_dict_result_is_json_200(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=dict")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"a": 1, "文": "字"}


async def test_list_result_is_json_200(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=list")
    assert response.status_code == 200
    assert response.json() == [1, "two"]


async def test_str_result_is_text_200(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=str")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "hello 世界"


async def test_bytes_result_is_octet_stream(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=bytes")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == b"\x00\x01raw"


async def test_none_result_is_204(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=none")
    assert response.status_code == 204
    assert response.content == b""


async def test_response_result_unchanged(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=response")
    assert response.status_code == 201
    assert response.headers["X-Custom"] == "yes"
    assert response.headers["Content-Type"] == "application/xml"


async def test_pair_result_sets_status(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=pair")
    assert response.status_code == 401
    assert response.json() == {"error": "bad token"}


async def test_triple_result_sets_headers(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=triple")
    assert response.status_code == 201
    assert response.headers["Location"] == "/things/1"
    assert response.text == "created"


async def test_pair_with_none_body_keeps_status(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/result?kind=none-pair")
    assert response.status_code == 202
    assert response.content == b""


@pytest.mark.parametrize("kind", sorted(ERRORS))
async def test_http_error_answers_its_status(client: WebhookTestClient, kind: str) -> None:
    response = await client.get(f"{BASE}/raise?kind={kind}")
    assert response.status_code == ERRORS[kind].status
    assert response.json() == {"error": ERRORS[kind].message}


async def test_headers_are_case_insensitive(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/echo", headers={"x-GITHUB-event": "push"})
    body = response.json()
    assert body["event"] == "push"
    assert body["event_lower"] == "push"


async def test_repeated_headers_are_kept(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/echo", headers=[("X-Multi", "a"), ("X-Multi", "b")])
    assert response.json()["multi"] == ["a", "b"]


async def test_query_is_multi_valued(client: WebhookTestClient) -> None:
    response = await client.get(f"{BASE}/echo?tag=a&tag=b", params={"tag": "c"})
    assert response.json()["tags"] == ["a", "b", "c"]


async def test_client_address_is_passed(client: WebhookTestClient) -> None:
    response = await client.get(f"{BASE}/echo")
    assert response.json()["client"] == "127.0.0.1"


async def test_handler_without_parameters(client: WebhookTestClient) -> None:
    response = await client.get(f"{BASE}/no-args")
    assert response.text == "no request needed"


async def test_unknown_plugin_is_404(client: WebhookTestClient) -> None:
    response = await client.post("/api/plugin/nope/webhook/result")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


async def test_unknown_path_is_404(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/missing")
    assert response.status_code == 404


async def test_trailing_slash_matches(client: WebhookTestClient) -> None:
    response = await client.get(f"{BASE}/no-args/")
    assert response.status_code == 200


async def test_wrong_method_is_405_with_allow(client: WebhookTestClient) -> None:
    response = await client.get(f"{BASE}/result?kind=dict")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


async def test_allow_lists_head_with_get(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/raise?kind=bad")
    assert response.headers["Allow"] == "GET, HEAD"


async def test_head_answers_like_get_without_body(client: WebhookTestClient) -> None:
    response = await client.request("HEAD", f"{BASE}/raise?kind=bad")
    assert response.status_code == 400
    assert response.content == b""


async def test_exception_is_500_with_error_id(
    client: WebhookTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "plughook"):
        response = await client.get(f"{BASE}/crash")
    body = response.json()
    assert response.status_code == 500
    assert body["error"] == "internal error"
    assert "secret internals" not in response.text
    assert any(body["error_id"] in record.getMessage() for record in caplog.records)


async def test_traceback_is_logged_under_error_id(
    client: WebhookTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "plughook"):
        await client.get(f"{BASE}/crash")
    assert any(record.exc_info for record in caplog.records)


async def test_invalid_result_is_500_naming_type(
    client: WebhookTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "plughook"):
        response = await client.get(f"{BASE}/invalid-result")
    assert response.status_code == 500
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "unsupported body type object" in logged
    assert "demo/invalid-result" in logged


async def test_invalid_status_is_500(client: WebhookTestClient) -> None:
    response = await client.get(f"{BASE}/invalid-status")
    assert response.status_code == 500


async def test_invalid_json_names_position(client: WebhookTestClient) -> None:
    response = await client.post(
        f"{BASE}/json", content=b'{"a": 1,\n "b": }', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "line 2 column 7" in response.json()["error"]


async def test_valid_json_is_parsed(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/json", json={"emoji": "🎉"})
    assert response.json() == {"parsed": {"emoji": "🎉"}}


async def test_non_utf8_text_is_400(client: WebhookTestClient) -> None:
    response = await client.post(
        f"{BASE}/json", content=b'{"a": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "utf-8" in response.json()["error"]


async def test_declared_charset_is_used(client: WebhookTestClient) -> None:
    response = await client.post(
        f"{BASE}/echo",
        content="中文".encode("gb18030"),
        headers={"Content-Type": "text/plain; charset=gb18030"},
    )
    assert response.json()["text"] == "中文"


async def test_unknown_charset_is_415(client: WebhookTestClient) -> None:
    response = await client.post(
        f"{BASE}/echo", content=b"x", headers={"Content-Type": "text/plain; charset=klingon"}
    )
    assert response.status_code == 415


async def test_multipart_without_boundary_is_400(client: WebhookTestClient) -> None:
    response = await client.post(
        f"{BASE}/form", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert response.status_code == 400
    assert "boundary" in response.json()["error"]


async def test_urlencoded_form_is_parsed(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/form", data={"payload": '{"a": "é"}', "n": "1"})
    assert response.json() == {"payload": '{"a": "é"}', "n": "1"}


async def test_declared_oversize_body_is_413(client: WebhookTestClient) -> None:
    response = await client.post(f"{BASE}/small", content=b"x" * 11)
    assert response.status_code == 413
    assert "10 bytes" in response.json()["error"]


async def test_streamed_oversize_body_is_413_while_reading(client: WebhookTestClient) -> None:
    chunks_read: list[int] = []

    async def chunks() -> Any:
        for index in range(100):
            chunks_read.append(index)
            yield b"12345"

    request = WebhookRequest("POST", "demo", "/small", body=chunks())
    response = await client.app.handle(request)
    assert response.status == 413
    assert len(chunks_read) == 3


async def test_app_serves_after_bad_input(client: WebhookTestClient) -> None:
    await client.post(f"{BASE}/json", content=b"{", headers={"Content-Type": "application/json"})
    await client.post(f"{BASE}/small", content=b"x" * 100)
    await client.get(f"{BASE}/crash")
    response = await client.post(f"{BASE}/json", json=[1])
    assert response.status_code == 200


async def test_health_and_listing(client: WebhookTestClient) -> None:
    health = await client.get("/healthz")
    listing = await client.get("/api/plugins")
    assert health.json() == {"status": "ok"}
    assert listing.json()["plugins"][0]["name"] == "demo"


def test_plugin_name_is_validated() -> None:
    with pytest.raises(ValueError, match="invalid plugin name"):
        Plugin("Bad Name", version="1")


def test_duplicate_path_raises() -> None:
    plugin = Plugin("dup", version="1")

    @plugin.mount_webhook("/a")
    async def first() -> None:
        return None

    with pytest.raises(ValueError, match="already has an endpoint"):

        @plugin.mount_webhook("a/")
        async def second() -> None:
            return None


def test_handler_must_be_async() -> None:
    plugin = Plugin("sync", version="1")

    async def finish() -> None:
        return None

    # A plain function that returns an awaitable matches the handler type, so
    # only the check at registration can reject it.
    def handler() -> Awaitable[None]:
        return finish()

    with pytest.raises(TypeError, match="async"):
        plugin.mount_webhook("/a")(handler)


def test_handler_with_two_parameters_is_rejected() -> None:
    plugin = Plugin("two", version="1")

    async def handler(request: WebhookRequest, extra: int) -> None:
        return None

    with pytest.raises(TypeError, match="only parameter"):
        plugin.mount_webhook("/a")(handler)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("github", "/github"), ("/a//b/", "/a/b"), ("", "/"), ("/", "/")],
)
def test_paths_are_normalised(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    ("path", "shown"),
    [("/status/{pipeline}", "'{pipeline}'"), ("/items/<name>", "'<name>'"), ("/:id", "':id'")],
)
def test_path_parameter_is_rejected(path: str, shown: str) -> None:
    plugin = Plugin("params", version="1")
    with pytest.raises(ValueError, match=f"contains {shown}, but endpoint paths match literally"):
        plugin.mount_webhook(path)


def test_colon_inside_segment_is_literal() -> None:
    plugin = Plugin("colon", version="1")

    @plugin.mount_webhook("/v1:send")
    async def send() -> None:
        return None

    assert "/v1:send" in plugin.endpoints


def test_dotdot_path_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'\.\.'"):
        normalize_path("/a/../b")


def test_split_webhook_path() -> None:
    assert split_webhook_path("/api/plugin/p/webhook/a/b") == ("p", "/a/b")
    assert split_webhook_path("/api/plugin/p/webhook") == ("p", "/")
    assert split_webhook_path("/api/plugin/p/other/a") is None


def test_router_with_ten_thousand_endpoints() -> None:
    plugins = []
    for index in range(100):
        plugin = Plugin(f"p{index}", version="1")
        for number in range(100):

            async def handler() -> None:
                return None

            plugin.mount_webhook(f"/e{number}")(handler)
        plugins.append(plugin)
    router = Router(plugins)
    assert len(router) == 10_000
    found = router.lookup("p57", "/e99")
    assert found is not None
    assert found.plugin.name == "p57"


def test_unsupported_tuple_is_rejected() -> None:
    with pytest.raises(TypeError, match="tuple of 4 items"):
        to_response((1, 2, 3, 4))


async def test_url_for_uses_public_url() -> None:
    from core import Settings
    from core.settings import ServerSettings

    settings = Settings(server=ServerSettings(public_url="https://bot.example.com/"))
    async with WebhookTestClient([demo], settings=settings) as client:
        url = client.app.url_for("demo", "/result")
    assert url == "https://bot.example.com/api/plugin/demo/webhook/result"


async def test_two_apps_with_one_plugin_are_isolated() -> None:
    from core.config import setting

    shared = Plugin("shared", version="1")

    @shared.mount_config()
    class SharedConfig:
        NAME: str = setting("")

    @shared.mount_webhook("/name")
    async def name() -> Any:
        await shared.store.set(store_key="seen", value=shared.config.NAME)
        return {"name": shared.config.NAME}

    async with (
        WebhookTestClient([shared], {"shared": {"NAME": "first"}}) as first,
        WebhookTestClient([shared], {"shared": {"NAME": "second"}}) as second,
    ):
        one = await first.get("/api/plugin/shared/webhook/name")
        two = await second.get("/api/plugin/shared/webhook/name")
        stored = await first.app.plugin_store("shared").get(store_key="seen")
    assert one.json() == {"name": "first"}
    assert two.json() == {"name": "second"}
    assert stored == "first"


async def test_config_error_is_raised_directly() -> None:
    from core.config import setting

    typed = Plugin("typed", version="1")

    @typed.mount_config()
    class TypedConfig:
        TOKEN: str = setting("", secret=True)
        LIMIT: int = setting(10)

    client = WebhookTestClient(
        [typed], {"typed": {"TOKEN": 12345678, "LIMIT": "ten", "EXTRA": True}}
    )
    with pytest.raises(ConfigError) as info:
        async with client:
            pass  # pragma: no cover - start-up fails
    message = str(info.value)
    assert "plugins.typed.LIMIT: expected int, got str" in message
    assert "plugins.typed.EXTRA: unknown setting" in message
    assert "plugins.typed.TOKEN: expected str, got int" in message
    assert "12345678" not in message


def test_plugin_config_outside_app_raises() -> None:
    with pytest.raises(RuntimeError, match="only available while a plughook app runs"):
        _ = demo.config


async def test_json_error_body_shape() -> None:
    async with WebhookTestClient([demo]) as client:
        response = await client.post(f"{BASE}/result?kind=pair")
    assert json.loads(response.content) == {"error": "bad token"}
