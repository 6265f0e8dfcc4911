"""Duplicate detection, the delivery log, replay and retention."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import anyio
import pytest
from multidict import CIMultiDict, istr

from core import Plugin, Settings, WebhookRequest, signatures
from core import deliveries as deliveries_module
from core.config import setting
from core.errors import Unauthorized
from core.records import DeliveryRecord
from core.settings import DeliverySettings
from core.testing import WebhookTestClient

pytestmark = pytest.mark.anyio

dedupe = Plugin("dedupe", version="1")
calls: list[str] = []
gate = anyio.Event()


@dedupe.mount_webhook("/once", methods=["POST"], delivery_id_header="X-Delivery")
async def once(request: WebhookRequest) -> Any:
    calls.append(request.delivery_id)
    if request.query.get("fail"):
        return {"error": "try again"}, 500
    return {"ok": True}


@dedupe.mount_webhook(
    "/crash", methods=["POST"], delivery_id_header="X-Delivery", respond_within=None
)
async def crash(request: WebhookRequest) -> Any:
    calls.append("crash:" + request.delivery_id)
    if request.query.get("raise"):
        msg = "handler failed"
        raise RuntimeError(msg)
    if request.query.get("invalid"):
        return {"value": object()}
    return {"ok": True}


@dedupe.mount_webhook("/other", methods=["POST"], delivery_id_header="X-Delivery")
async def other(request: WebhookRequest) -> Any:
    calls.append("other:" + request.delivery_id)
    return {"ok": True}


@dedupe.mount_webhook("/gated", methods=["POST"], delivery_id_header="X-Delivery")
async def gated(request: WebhookRequest) -> Any:
    calls.append("gated:" + request.delivery_id)
    await gate.wait()
    return {"ok": True}


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    calls.clear()


URL = "/api/plugin/dedupe/webhook"


async def test_second_delivery_is_duplicate(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        first = await client.post(f"{URL}/once", headers={"X-Delivery": "d1"})
        second = await client.post(f"{URL}/once", headers={"X-Delivery": "d1"})
    assert first.json() == {"ok": True}
    assert second.json() == {"status": "duplicate"}
    assert calls == ["d1"]


async def test_requests_without_id_are_not_deduplicated(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        first = await client.post(f"{URL}/once")
        second = await client.post(f"{URL}/once")
    assert first.json() == {"ok": True}
    assert second.json() == {"ok": True}
    assert len(calls) == 2


@pytest.mark.parametrize("failure", ["raise", "invalid"])
async def test_crashed_delivery_is_processed_again(tmp_path: Path, failure: str) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        first = await client.post(f"{URL}/crash?{failure}=1", headers={"X-Delivery": "d9"})
        second = await client.post(f"{URL}/crash", headers={"X-Delivery": "d9"})
    assert first.status_code == 500
    assert second.status_code == 200
    assert calls == ["crash:d9", "crash:d9"]


async def test_failed_delivery_is_processed_again(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        first = await client.post(f"{URL}/once?fail=1", headers={"X-Delivery": "d2"})
        second = await client.post(f"{URL}/once", headers={"X-Delivery": "d2"})
    assert first.status_code == 500
    assert second.json() == {"ok": True}
    assert calls == ["d2", "d2"]


async def test_same_id_at_other_path_is_new(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        await client.post(f"{URL}/once", headers={"X-Delivery": "d3"})
        response = await client.post(f"{URL}/other", headers={"X-Delivery": "d3"})
    assert response.json() == {"ok": True}
    assert calls == ["d3", "other:d3"]


async def test_duplicate_survives_restart(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        await client.post(f"{URL}/once", headers={"X-Delivery": "d4"})
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        response = await client.post(f"{URL}/once", headers={"X-Delivery": "d4"})
    assert response.json() == {"status": "duplicate"}


async def test_duplicate_expires_after_window(tmp_path: Path) -> None:
    now = [1000.0]
    settings = Settings(deliveries=DeliverySettings(dedupe_window_hours=1.0))
    async with WebhookTestClient([dedupe], data_dir=tmp_path, settings=settings) as client:
        client.app.clock = lambda: now[0]
        await client.post(f"{URL}/once", headers={"X-Delivery": "d5"})
        now[0] += 3601
        response = await client.post(f"{URL}/once", headers={"X-Delivery": "d5"})
    assert response.json() == {"ok": True}


async def test_concurrent_duplicates_call_handler_once(tmp_path: Path) -> None:
    answers: list[int] = []
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:

        async def send() -> None:
            response = await client.post(f"{URL}/gated", headers={"X-Delivery": "same"})
            answers.append(response.status_code)

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(send)
            await anyio.sleep(0.2)
            gate.set()
    assert calls == ["gated:same"]
    assert sorted(answers) == [200, 409, 409, 409, 409]


async def test_duplicate_delivery_is_marked_in_log(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        await client.post(f"{URL}/once", headers={"X-Delivery": "twice"}, content=b"{}")
        await client.post(f"{URL}/once", headers={"X-Delivery": "twice"}, content=b"{}")
        await client.drain()
        records = await client.app.storage.deliveries_list("dedupe", None, 10)
    assert sorted(r.duplicate for r in records) == [False, True]
    assert [r.status for r in records] == [200, 200]
    assert calls == ["twice"]


async def test_record_headers_plain_and_redacted(tmp_path: Path) -> None:
    headers = CIMultiDict([(istr("X-Hub-Signature-256"), "sha256=abc"), (istr("X-Delivery"), "h1")])
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        request = WebhookRequest("POST", "dedupe", "/other", headers=headers, body=b"{}")
        await client.app.handle(request)
        await client.drain()
        [record] = await client.app.storage.deliveries_list("dedupe", None, 10)
    assert ("X-Hub-Signature-256", "[redacted]") in record.headers
    assert ("X-Delivery", "h1") in record.headers
    assert {type(name) for name, _ in record.headers} == {str}


async def test_header_name_cache_starts_over_when_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries_module, "HEADER_NAME_CACHE", 3)
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        for index in range(5):
            await client.post(
                f"{URL}/other",
                headers={f"X-Made-Up-{index}": "1", "Authorization": "Bearer secret-token"},
            )
        await client.drain()
        records = await client.app.storage.deliveries_list("dedupe", None, 10)
        cached = len(client.app.deliveries._header_names)
    assert cached <= 3
    assert all(("Authorization", "[redacted]") in r.headers for r in records)


async def test_replay_runs_recorded_request(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        await client.post(f"{URL}/once", headers={"X-Delivery": "d6"}, content=b"{}")
        await client.drain()
        [record] = await client.app.storage.deliveries_list("dedupe", None, 10)
        original, response = await client.app.replay(record.id)
        records = await client.app.storage.deliveries_list("dedupe", None, 10)
    assert original.delivery_id == "d6"
    assert response.status == 200
    assert calls == ["d6", "d6"]
    assert [r.replay_of for r in records].count(record.id) == 1


signed = Plugin("signed", version="1")
SIGNED_SECRET = "replay-test-secret"
SIGNED_URL = "/api/plugin/signed/webhook"


@signed.mount_config()
class SignedConfig:
    WEBHOOK_SECRET: str = setting("", secret=True)


@signed.mount_webhook(
    "/push", methods=["POST"], verify=signatures.github("WEBHOOK_SECRET"), max_body_size=64
)
async def signed_push(request: WebhookRequest) -> Any:
    calls.append(f"signed:{request.verified}")
    return {"ok": True}


@signed.mount_webhook(
    "/open", methods=["POST"], verify=signatures.github("WEBHOOK_SECRET", allow_unsigned=True)
)
async def signed_open(request: WebhookRequest) -> Any:
    calls.append(f"open:{request.verified}")
    return {"ok": True}


def signed_headers(body: bytes, secret: str = SIGNED_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


async def post_rejected(client: WebhookTestClient, body: bytes) -> DeliveryRecord:
    """Post ``body`` signed with the wrong secret and return its delivery record."""
    await client.post(f"{SIGNED_URL}/push", content=body, headers=signed_headers(body, "wrong"))
    await client.drain()
    [record] = await client.app.storage.deliveries_list("signed", None, 10)
    return record


async def replays_of(client: WebhookTestClient, record_id: str) -> list[DeliveryRecord]:
    await client.drain()
    records = await client.app.storage.deliveries_list("signed", None, 10)
    return [r for r in records if r.replay_of == record_id]


def signed_client(tmp_path: Path) -> WebhookTestClient:
    return WebhookTestClient(
        [signed], {"signed": {"WEBHOOK_SECRET": SIGNED_SECRET}}, data_dir=tmp_path
    )


async def test_verified_request_recorded_verified(tmp_path: Path) -> None:
    async with signed_client(tmp_path) as client:
        await client.post(f"{SIGNED_URL}/push", content=b"{}", headers=signed_headers(b"{}"))
        await client.drain()
        [record] = await client.app.storage.deliveries_list("signed", None, 10)
    assert record.verified is True
    assert calls == ["signed:True"]


async def test_record_without_verifier_has_no_verdict(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        await client.post(f"{URL}/other", headers={"X-Delivery": "v1"})
        await client.drain()
        [record] = await client.app.storage.deliveries_list("dedupe", None, 10)
    assert record.verified is None


async def test_unchecked_request_has_no_verdict(tmp_path: Path) -> None:
    async with WebhookTestClient([signed], data_dir=tmp_path) as client:
        response = await client.post(f"{SIGNED_URL}/open", content=b"{}")
        await client.drain()
        [record] = await client.app.storage.deliveries_list("signed", None, 10)
    assert response.status_code == 200
    assert calls == ["open:None"]
    assert record.verified is None


async def test_rejected_request_recorded_unverified(tmp_path: Path) -> None:
    async with signed_client(tmp_path) as client:
        record = await post_rejected(client, b'{"forged": true}')
    assert record.status == 401
    assert record.verified is False
    assert calls == []


async def test_request_rejected_before_verification_unverified(tmp_path: Path) -> None:
    body = b"x" * 100
    async with signed_client(tmp_path) as client:
        response = await client.post(
            f"{SIGNED_URL}/push", content=body, headers=signed_headers(body)
        )
        await client.drain()
        [record] = await client.app.storage.deliveries_list("signed", None, 10)
    assert response.status_code == 413
    assert record.verified is False


async def test_oversize_rejection_records_the_delivery_id(tmp_path: Path) -> None:
    big, small = b"x" * 100, b"{}"
    delivery = {signatures.GITHUB_DELIVERY_HEADER: "big-1"}
    async with signed_client(tmp_path) as client:
        rejected = await client.post(
            f"{SIGNED_URL}/push", content=big, headers={**signed_headers(big), **delivery}
        )
        # The rejected delivery claimed nothing, so a redelivery runs the handler.
        accepted = await client.post(
            f"{SIGNED_URL}/push", content=small, headers={**signed_headers(small), **delivery}
        )
        await client.drain()
        records = await client.app.storage.deliveries_list("signed", None, 10)
    assert (rejected.status_code, accepted.json()) == (413, {"ok": True})
    assert calls == ["signed:True"]
    assert [(r.status, r.delivery_id) for r in reversed(records)] == [
        (413, "big-1"),
        (200, "big-1"),
    ]


async def test_replay_of_unverified_record_rejected(tmp_path: Path) -> None:
    body = b'{"forged": true}'
    async with signed_client(tmp_path) as client:
        record = await post_rejected(client, body)
        with pytest.raises(ValueError, match="did not pass its endpoint's verification"):
            await client.app.replay(record.id)
        records = await client.app.storage.deliveries_list("signed", None, 10)
    assert calls == []
    assert len(records) == 1


async def test_unverified_replay_runs_when_allowed(tmp_path: Path) -> None:
    body = b'{"trusted": true}'
    async with signed_client(tmp_path) as client:
        record = await post_rejected(client, body)
        _, response = await client.app.replay(record.id, allow_unverified=True)
        replays = await replays_of(client, record.id)
    assert response.status == 200
    assert calls == ["signed:False"]
    assert [r.verified for r in replays] == [False]


async def test_replay_of_unverified_replay_names_original(tmp_path: Path) -> None:
    body = b'{"trusted": true}'
    async with signed_client(tmp_path) as client:
        original = await post_rejected(client, body)
        await client.app.replay(original.id, allow_unverified=True)
        [replay] = await replays_of(client, original.id)
        with pytest.raises(ValueError, match=f"replays '{original.id}', which did not pass"):
            await client.app.replay(replay.id)


async def test_replay_of_verified_record_keeps_verdict(tmp_path: Path) -> None:
    async with signed_client(tmp_path) as client:
        await client.post(f"{SIGNED_URL}/push", content=b"{}", headers=signed_headers(b"{}"))
        await client.drain()
        [record] = await client.app.storage.deliveries_list("signed", None, 10)
        _, response = await client.app.replay(record.id)
        replays = await replays_of(client, record.id)
    assert response.status == 200
    assert [r.verified for r in replays] == [True]


async def test_replay_of_unknown_record_raises(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        with pytest.raises(LookupError, match="no delivery record"):
            await client.app.replay("missing")


async def test_truncated_body_cannot_be_replayed(tmp_path: Path) -> None:
    settings = Settings(deliveries=DeliverySettings(max_body_bytes=4))

    @dedupe.mount_webhook("/read-body", methods=["POST"])
    async def read_body(request: WebhookRequest) -> Any:
        return {"size": len(await request.body())}

    try:
        async with WebhookTestClient([dedupe], data_dir=tmp_path, settings=settings) as client:
            await client.post(f"{URL}/read-body", content=b"0123456789")
            await client.drain()
            [record] = await client.app.storage.deliveries_list("dedupe", None, 10)
            with pytest.raises(ValueError, match="contains only the first 4 bytes"):
                await client.app.replay(record.id)
        assert record.body == b"0123"
        assert record.body_truncated is True
    finally:
        del dedupe.endpoints["/read-body"]


async def test_retention_keeps_newest_records(tmp_path: Path) -> None:
    settings = Settings(deliveries=DeliverySettings(max_records=3))
    async with WebhookTestClient([dedupe], data_dir=tmp_path, settings=settings) as client:
        for index in range(6):
            await client.post(f"{URL}/other", headers={"X-Delivery": f"r{index}"})
        await client.drain()
        removed = await client.app.deliveries.prune()
        left = await client.app.storage.deliveries_list(None, None, 100)
    assert removed == 3
    assert sorted(r.delivery_id for r in left) == ["r3", "r4", "r5"]


async def test_retention_drops_old_records(tmp_path: Path) -> None:
    now = [0.0]
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        client.app.clock = lambda: now[0]
        await client.post(f"{URL}/other", headers={"X-Delivery": "old"})
        now[0] = 8 * 86400
        await client.post(f"{URL}/other", headers={"X-Delivery": "new"})
        await client.drain()
        removed = await client.app.deliveries.prune()
        left = await client.app.storage.deliveries_list(None, None, 100)
    assert removed == 1
    assert [r.delivery_id for r in left] == ["new"]


async def test_status_filter_lists_errors(tmp_path: Path) -> None:
    async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
        await client.post(f"{URL}/once?fail=1", headers={"X-Delivery": "e1"})
        await client.post(f"{URL}/once", headers={"X-Delivery": "e2"})
        await client.drain()
        failed = await client.app.storage.deliveries_list("dedupe", 5, 10)
    assert [r.delivery_id for r in failed] == ["e1"]


async def test_streamed_body_is_marked_cut(tmp_path: Path) -> None:
    @dedupe.mount_webhook("/stream", methods=["POST"])
    async def stream(request: WebhookRequest) -> Any:
        return {"size": sum([len(chunk) async for chunk in request.stream()])}

    async def chunks() -> Any:
        yield b"01234"
        yield b"56789"

    try:
        async with WebhookTestClient([dedupe], data_dir=tmp_path) as client:
            # A chunked source, as the adapters pass a body still arriving.
            request = WebhookRequest(
                "POST", "dedupe", "/stream", headers={"Content-Length": "10"}, body=chunks()
            )
            response = await client.app.handle(request)
            await client.drain()
            [record] = await client.app.storage.deliveries_list("dedupe", None, 10)
            with pytest.raises(ValueError, match="contains none of its body"):
                await client.app.replay(record.id)
        assert response.status == 200
        assert record.body == b""
        assert record.body_truncated is True
    finally:
        del dedupe.endpoints["/stream"]


@pytest.mark.parametrize(
    ("mode", "kept"),
    [("all", {"ok", "fail"}), ("failed", {"fail"}), ("none", set())],
)
async def test_record_bodies_setting(tmp_path: Path, mode: str, kept: set[str]) -> None:
    settings = Settings(deliveries=DeliverySettings(record_bodies=mode))
    async with WebhookTestClient([dedupe], data_dir=tmp_path, settings=settings) as client:
        await client.post(f"{URL}/once", content=b"ok", headers={"X-Delivery": "b1"})
        await client.post(f"{URL}/once?fail=1", content=b"fail", headers={"X-Delivery": "b2"})
        await client.drain()
        records = await client.app.storage.deliveries_list("dedupe", None, 10)
    stored = {record.body.decode() for record in records if record.body}
    cut = {record.delivery_id for record in records if record.body_truncated}
    assert stored == kept
    assert cut == {"b1", "b2"} - {f"b{1 if body == 'ok' else 2}" for body in kept}


async def test_record_bodies_rejects_unknown_mode() -> None:
    from core.errors import ConfigError
    from core.settings import load_settings

    with pytest.raises(ConfigError, match=r"deliveries\.record_bodies: expected one of"):
        load_settings({"deliveries": {"record_bodies": "some"}})


custom = Plugin("custom-auth", version="1.0")


@custom.mount_config()
class CustomAuthConfig:
    TOKEN: str = setting("deploy-token", secret=True)
    MAC_KEY: str = setting("mac-key", secret=True)


@custom.mount_webhook("/token", verify=signatures.bearer_token("TOKEN", header="X-Deploy-Key"))
async def token_endpoint(request: WebhookRequest) -> Any:
    return {"ok": True}


@custom.mount_webhook("/mac", verify=signatures.hmac_signature("MAC_KEY", header="X-Body-Mac"))
async def mac_endpoint(request: WebhookRequest) -> Any:
    return {"ok": True}


async def check_plain_mac(request: WebhookRequest, plugin: Any) -> None:
    if request.headers.get("X-Plain-Mac") != "expected":
        raise Unauthorized("wrong X-Plain-Mac")


# mypy has no way to declare an attribute added to a function.
check_plain_mac.credential_headers = ("X-Plain-Mac",)  # type: ignore[attr-defined]


@custom.mount_webhook("/plain", verify=check_plain_mac)
async def plain_endpoint(request: WebhookRequest) -> Any:
    return {"ok": True}


async def recorded_headers(tmp_path: Path, path: str, headers: dict[str, str]) -> dict[str, str]:
    """Send one request to ``custom-auth``; return the headers its record kept."""
    async with WebhookTestClient([custom], data_dir=tmp_path) as client:
        await client.post(f"/api/plugin/custom-auth/webhook{path}", headers=headers, content=b"{}")
        await client.drain()
        [record] = await client.app.storage.deliveries_list("custom-auth", None, 10)
    return dict(record.headers)


async def test_verifier_token_header_is_redacted(tmp_path: Path) -> None:
    kept = await recorded_headers(tmp_path, "/token", {"X-Deploy-Key": "deploy-token"})
    assert kept["X-Deploy-Key"] == "[redacted]"


async def test_verifier_hmac_header_is_redacted(tmp_path: Path) -> None:
    mac = hmac.new(b"mac-key", b"{}", hashlib.sha256).hexdigest()
    kept = await recorded_headers(tmp_path, "/mac", {"X-Body-Mac": mac, "X-Request-Id": "r-1"})
    assert kept["X-Body-Mac"] == "[redacted]"
    assert kept["X-Request-Id"] == "r-1"


async def test_function_verifier_lists_its_headers(tmp_path: Path) -> None:
    kept = await recorded_headers(tmp_path, "/plain", {"X-Plain-Mac": "expected"})
    assert kept["X-Plain-Mac"] == "[redacted]"


@pytest.mark.parametrize(
    "name",
    ["X-CI-Token", "X-Slack-Signature", "sign", "X-Amz-Security-Token", "X-Api-Key", "X-Secret"],
)
async def test_credential_named_header_is_redacted(tmp_path: Path, name: str) -> None:
    kept = await recorded_headers(tmp_path, "/token", {"X-Deploy-Key": "deploy-token", name: "v"})
    assert kept[name] == "[redacted]"


@pytest.mark.parametrize("name", ["X-Request-Id", "X-GitHub-Event", "Content-Type", "X-Sign-Up"])
async def test_other_header_is_kept(tmp_path: Path, name: str) -> None:
    kept = await recorded_headers(tmp_path, "/token", {"X-Deploy-Key": "deploy-token", name: "v"})
    assert kept[name] == "v"


reader = Plugin("reader", version="1")


@reader.mount_webhook("/state", methods=["GET", "POST"])
async def state(request: WebhookRequest) -> Any:
    if request.query.get("fail"):
        return {"error": "no such state"}, 404
    return {"state": "idle"}


flaky_reads: list[str] = []


@reader.mount_webhook("/flaky", methods=["GET"])
async def flaky() -> Any:
    flaky_reads.append("read")
    if len(flaky_reads) == 1:
        return {"error": "not ready"}, 503
    return {"state": "ready"}


async def test_successful_reads_are_not_logged(tmp_path: Path) -> None:
    async with WebhookTestClient([reader], data_dir=tmp_path) as client:
        await client.get("/api/plugin/reader/webhook/state")
        await client.request("HEAD", "/api/plugin/reader/webhook/state")
        await client.get("/api/plugin/reader/webhook/state", params={"fail": "1"})
        await client.post("/api/plugin/reader/webhook/state", content=b"{}")
        await client.drain()
        records = await client.app.storage.deliveries_list("reader", None, 10)
    assert sorted((r.method, r.status) for r in records) == [("GET", 404), ("POST", 200)]


async def test_replay_of_failed_read_is_logged(tmp_path: Path) -> None:
    flaky_reads.clear()
    async with WebhookTestClient([reader], data_dir=tmp_path) as client:
        await client.get("/api/plugin/reader/webhook/flaky")
        await client.drain()
        [failed] = await client.app.storage.deliveries_list("reader", None, 10)
        await client.app.replay(failed.id)
        records = await client.app.storage.deliveries_list("reader", None, 10)
    assert [(r.status, r.replay_of) for r in records] == [(200, failed.id), (503, "")]
