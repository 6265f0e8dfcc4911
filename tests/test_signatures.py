"""Tests for core.signatures: the pure scheme functions and the verifiers."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from core import signatures
from core.errors import ServiceUnavailable, Unauthorized
from core.request import WebhookRequest
from core.signatures import (
    InvalidSecret,
    MalformedSignature,
    MissingSignature,
    SignatureError,
    SignatureMismatch,
    SignatureVerifier,
    TimestampOutOfTolerance,
    sign_gitea,
    sign_github,
    sign_grafana,
    sign_hmac,
    sign_standard_webhooks,
    sign_stripe,
    verify_bearer_token,
    verify_gitea,
    verify_github,
    verify_gitlab,
    verify_grafana,
    verify_hmac,
    verify_standard_webhooks,
    verify_stripe,
)

# GitHub's documented example for validating webhook deliveries.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# The Standard Webhooks test vector.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_HEADERS = {
    "webhook-id": SW_ID,
    "webhook-timestamp": str(SW_TIMESTAMP),
    "webhook-signature": SW_SIGNATURE,
}
# Another valid Standard Webhooks secret (base64 of 24 bytes).
SW_OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"

NOW = float(SW_TIMESTAMP)
SECRET = "s3cret-value-for-tests"
OTHER_SECRET = "another-secret-value"

GITHUB_FORM_PAYLOAD = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1})

BODIES = {
    "emoji": '{"text": "deploy ✅ 🚀"}'.encode(),
    "json_escape": b'{"text": "\\u001b[31mred\\u001b[0m"}',
    "raw_escape_byte": b'{"text": "\x1b[31mred"}',
    "newlines": b'{\n  "a": 1,\n  "b": "x\r\ny"\n}\n',
    "accent": '{"name": "café"}'.encode(),
    "latin1_accent": '{"name": "café"}'.encode("latin-1"),
    "github_form": b"payload=" + urllib.parse.quote_plus(GITHUB_FORM_PAYLOAD).encode(),
    "empty": b"",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixed_clock() -> float:
    return NOW


def make_plugin(secret: object = SECRET, field: str = "WEBHOOK_SECRET") -> SimpleNamespace:
    return SimpleNamespace(name="p", config=SimpleNamespace(**{field: secret}))


def make_request(
    headers: Mapping[str, str] | None = None, body: bytes = b"{}", *, delivery_id: str = ""
) -> WebhookRequest:
    request = WebhookRequest("POST", "p", "/hook", headers=headers, body=body)
    request.delivery_id = delivery_id
    return request


def stripe_headers(
    body: bytes, secret: str = SECRET, timestamp: int = SW_TIMESTAMP
) -> dict[str, str]:
    return {"Stripe-Signature": sign_stripe(body, secret, timestamp=timestamp)}


def sw_headers(
    body: bytes, secret: str = SW_SECRET, timestamp: int = SW_TIMESTAMP
) -> dict[str, str]:
    signature = sign_standard_webhooks(body, secret, msg_id=SW_ID, timestamp=timestamp)
    return {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


# ---------------------------------------------------------------------------
# Exceptions


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MissingSignature, "missing signature"),
        (MalformedSignature, "malformed signature"),
        (SignatureMismatch, "signature mismatch"),
        (TimestampOutOfTolerance, "timestamp outside tolerance"),
    ],
)
def test_signature_error_reason_is_fixed(error: type[SignatureError], reason: str) -> None:
    exc = error()
    assert str(exc) == reason
    assert exc.reason == reason
    assert isinstance(exc, ValueError)


# ---------------------------------------------------------------------------
# GitHub


def test_github_accepts_documented_example() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    verify_github(GITHUB_BODY, headers, GITHUB_SECRET)


def test_sign_github_matches_documented_example() -> None:
    assert sign_github(GITHUB_BODY, GITHUB_SECRET) == GITHUB_SIGNATURE


def test_github_rejects_tampered_body() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch$"):
        verify_github(b"Hello, World?", headers, GITHUB_SECRET)


def test_github_rejects_wrong_secret() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    with pytest.raises(SignatureMismatch):
        verify_github(GITHUB_BODY, headers, "not the secret")


def test_github_header_name_is_case_insensitive() -> None:
    verify_github(GITHUB_BODY, {"x-hub-signature-256": GITHUB_SIGNATURE}, GITHUB_SECRET)


def test_github_accepts_uppercase_hex() -> None:
    upper = "sha256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    verify_github(GITHUB_BODY, {"X-Hub-Signature-256": upper}, GITHUB_SECRET)


@pytest.mark.parametrize("headers", [{}, {"X-Hub-Signature-256": ""}, {"X-Hub-Signature-256": " "}])
def test_github_rejects_missing_signature(headers: dict[str, str]) -> None:
    with pytest.raises(MissingSignature, match=r"^missing signature$"):
        verify_github(GITHUB_BODY, headers, GITHUB_SECRET)


@pytest.mark.parametrize(
    "value",
    [
        GITHUB_SIGNATURE.removeprefix("sha256="),
        "sha1=" + GITHUB_SIGNATURE.removeprefix("sha256="),
        "SHA256=" + GITHUB_SIGNATURE.removeprefix("sha256="),
        GITHUB_SIGNATURE[:-2],
        GITHUB_SIGNATURE + "00",
        GITHUB_SIGNATURE[:-1] + "g",
        GITHUB_SIGNATURE[:20] + " " + GITHUB_SIGNATURE[21:],
        GITHUB_SIGNATURE[:-1] + "é",
        "sha256=",
    ],
)
def test_github_rejects_malformed_signature(value: str) -> None:
    with pytest.raises(MalformedSignature, match=r"^malformed signature$"):
        verify_github(GITHUB_BODY, {"X-Hub-Signature-256": value}, GITHUB_SECRET)


def test_github_ignores_sha1_by_default() -> None:
    headers = {"X-Hub-Signature": sign_github(GITHUB_BODY, GITHUB_SECRET, algorithm="sha1")}
    with pytest.raises(MissingSignature):
        verify_github(GITHUB_BODY, headers, GITHUB_SECRET)


def test_github_accepts_sha1_when_allowed() -> None:
    headers = {"X-Hub-Signature": sign_github(GITHUB_BODY, GITHUB_SECRET, algorithm="sha1")}
    verify_github(GITHUB_BODY, headers, GITHUB_SECRET, allow_sha1=True)


def test_github_sha1_signature_starts_with_sha1_prefix() -> None:
    signature = sign_github(GITHUB_BODY, GITHUB_SECRET, algorithm="sha1")
    expected = hmac.new(GITHUB_SECRET.encode(), GITHUB_BODY, hashlib.sha1).hexdigest()
    assert signature == f"sha1={expected}"


def test_github_checks_only_sha256_when_both_present() -> None:
    headers = {
        "X-Hub-Signature-256": sign_github(GITHUB_BODY, "wrong secret"),
        "X-Hub-Signature": sign_github(GITHUB_BODY, GITHUB_SECRET, algorithm="sha1"),
    }
    with pytest.raises(SignatureMismatch):
        verify_github(GITHUB_BODY, headers, GITHUB_SECRET, allow_sha1=True)


def test_github_accepts_any_rotated_secret() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    verify_github(GITHUB_BODY, headers, ["old secret", GITHUB_SECRET])


def test_github_rejects_when_no_rotated_secret_matches() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    with pytest.raises(SignatureMismatch):
        verify_github(GITHUB_BODY, headers, ["old secret", "newer secret"])


def test_github_string_secret_not_split() -> None:
    headers = {"X-Hub-Signature-256": sign_github(GITHUB_BODY, "a")}
    with pytest.raises(SignatureMismatch):
        verify_github(GITHUB_BODY, headers, "abc")


def test_github_accepts_bytes_secret() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    verify_github(GITHUB_BODY, headers, GITHUB_SECRET.encode())


@pytest.mark.parametrize("secrets", ["", [], ["", ""]])
def test_github_rejects_empty_secrets(secrets: str | list[str]) -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    with pytest.raises(InvalidSecret):
        verify_github(GITHUB_BODY, headers, secrets)


def test_github_form_body_verifies_as_sent() -> None:
    body = BODIES["github_form"]
    headers = {"X-Hub-Signature-256": sign_github(body, GITHUB_SECRET)}
    verify_github(body, headers, GITHUB_SECRET)


def test_github_rejects_decoded_form_payload() -> None:
    body = BODIES["github_form"]
    headers = {"X-Hub-Signature-256": sign_github(body, GITHUB_SECRET)}
    with pytest.raises(SignatureMismatch):
        verify_github(GITHUB_FORM_PAYLOAD.encode(), headers, GITHUB_SECRET)


# ---------------------------------------------------------------------------
# Standard Webhooks


def test_standard_webhooks_accepts_official_vector() -> None:
    verify_standard_webhooks(SW_BODY, SW_HEADERS, SW_SECRET, now=NOW)


def test_sign_standard_webhooks_matches_official_vector() -> None:
    signature = sign_standard_webhooks(SW_BODY, SW_SECRET, msg_id=SW_ID, timestamp=SW_TIMESTAMP)
    assert signature == SW_SIGNATURE


def test_standard_webhooks_accepts_secret_without_prefix() -> None:
    secret = SW_SECRET.removeprefix("whsec_")
    verify_standard_webhooks(SW_BODY, SW_HEADERS, secret, now=NOW)


def test_standard_webhooks_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in SW_HEADERS.items()}
    verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_tampered_body() -> None:
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch$"):
        verify_standard_webhooks(b'{"test": 2432232315}', SW_HEADERS, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_changed_message_id() -> None:
    headers = {**SW_HEADERS, "webhook-id": "msg_other"}
    with pytest.raises(SignatureMismatch):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_changed_timestamp() -> None:
    headers = {**SW_HEADERS, "webhook-timestamp": str(SW_TIMESTAMP + 1)}
    with pytest.raises(SignatureMismatch):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_missing_signature() -> None:
    headers = {**SW_HEADERS}
    del headers["webhook-signature"]
    with pytest.raises(MissingSignature, match=r"^missing signature$"):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp"])
def test_standard_webhooks_rejects_missing_signed_header(name: str) -> None:
    headers = {**SW_HEADERS}
    del headers[name]
    with pytest.raises(MalformedSignature, match=r"^malformed signature$"):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", "1614265330.5"),
        ("webhook-timestamp", "-1614265330"),
        ("webhook-timestamp", "1_614_265_330"),
        ("webhook-timestamp", "soon"),
        ("webhook-signature", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ("webhook-signature", "v1,not base64!"),
        ("webhook-signature", "v1," + SW_SIGNATURE[3:-4]),
        ("webhook-signature", "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ],
)
def test_standard_webhooks_rejects_malformed_header(name: str, value: str) -> None:
    headers = {**SW_HEADERS, name: value}
    with pytest.raises(MalformedSignature):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_accepts_any_v1_among_several() -> None:
    other = sign_standard_webhooks(SW_BODY, SW_OTHER_SECRET, msg_id=SW_ID, timestamp=SW_TIMESTAMP)
    value = f"v1a,c2lnbmF0dXJl {other} v2,xyz {SW_SIGNATURE}"
    headers = {**SW_HEADERS, "webhook-signature": value}
    verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_when_no_v1_matches() -> None:
    other = sign_standard_webhooks(SW_BODY, SW_OTHER_SECRET, msg_id=SW_ID, timestamp=SW_TIMESTAMP)
    headers = {**SW_HEADERS, "webhook-signature": f"{other} v1a,c2lnbmF0dXJl"}
    with pytest.raises(SignatureMismatch):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_accepts_any_rotated_secret() -> None:
    verify_standard_webhooks(SW_BODY, SW_HEADERS, [SW_OTHER_SECRET, SW_SECRET], now=NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_standard_webhooks_accepts_timestamp_within_tolerance(offset: int) -> None:
    verify_standard_webhooks(SW_BODY, SW_HEADERS, SW_SECRET, now=NOW + offset)


@pytest.mark.parametrize("offset", [-301, 301, 10**9])
def test_standard_webhooks_rejects_timestamp_outside_tolerance(offset: int) -> None:
    with pytest.raises(TimestampOutOfTolerance, match=r"^timestamp outside tolerance$"):
        verify_standard_webhooks(SW_BODY, SW_HEADERS, SW_SECRET, now=NOW + offset)


def test_standard_webhooks_rejects_huge_timestamp_without_crashing() -> None:
    headers = {**SW_HEADERS, "webhook-timestamp": "9" * 40}
    with pytest.raises(TimestampOutOfTolerance):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_timestamp_too_large_for_float() -> None:
    headers = {**SW_HEADERS, "webhook-timestamp": "9" * 4000}
    with pytest.raises(TimestampOutOfTolerance):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_rejects_timestamp_past_int_conversion_limit() -> None:
    headers = {**SW_HEADERS, "webhook-timestamp": "9" * 5000}
    with pytest.raises(MalformedSignature):
        verify_standard_webhooks(SW_BODY, headers, SW_SECRET, now=NOW)


def test_standard_webhooks_honours_custom_tolerance() -> None:
    with pytest.raises(TimestampOutOfTolerance):
        verify_standard_webhooks(SW_BODY, SW_HEADERS, SW_SECRET, now=NOW + 61, tolerance=60)


@pytest.mark.parametrize("secret", ["whsec_a", "whsec_!!!!", "whsec_"])
def test_standard_webhooks_rejects_unusable_secret(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        verify_standard_webhooks(SW_BODY, SW_HEADERS, secret, now=NOW)


def test_standard_webhooks_invalid_secret_message_omits_secret() -> None:
    with pytest.raises(InvalidSecret) as caught:
        verify_standard_webhooks(SW_BODY, SW_HEADERS, "whsec_abcde", now=NOW)
    assert "abcde" not in str(caught.value)


def test_standard_webhooks_accepts_what_library_signs_now() -> None:
    timestamp = int(time.time())
    headers = sw_headers(SW_BODY, timestamp=timestamp)
    verify_standard_webhooks(SW_BODY, headers, SW_SECRET)


def test_standard_webhooks_library_accepts_what_we_sign_now() -> None:
    headers = sw_headers(BODIES["emoji"], timestamp=int(time.time()))
    Webhook(SW_SECRET).verify(BODIES["emoji"], headers, json_parse=False)


# ---------------------------------------------------------------------------
# Stripe-style


def test_sign_stripe_uses_utf8_secret() -> None:
    secret = "whsec_dGVzdA=="
    expected = hmac.new(secret.encode(), b"1614265330." + SW_BODY, hashlib.sha256).hexdigest()
    assert sign_stripe(SW_BODY, secret, timestamp=SW_TIMESTAMP) == f"t=1614265330,v1={expected}"


def test_stripe_accepts_signed_body() -> None:
    verify_stripe(SW_BODY, stripe_headers(SW_BODY), SECRET, now=NOW)


def test_stripe_rejects_tampered_body() -> None:
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch$"):
        verify_stripe(SW_BODY + b" ", stripe_headers(SW_BODY), SECRET, now=NOW)


def test_stripe_rejects_changed_timestamp() -> None:
    value = stripe_headers(SW_BODY)["Stripe-Signature"].replace("t=1614265330", "t=1614265331")
    with pytest.raises(SignatureMismatch):
        verify_stripe(SW_BODY, {"Stripe-Signature": value}, SECRET, now=NOW)


def test_stripe_accepts_any_v1_and_ignores_v0() -> None:
    ours = sign_stripe(SW_BODY, SECRET, timestamp=SW_TIMESTAMP).split(",")[1]
    other = sign_stripe(SW_BODY, OTHER_SECRET, timestamp=SW_TIMESTAMP).split(",")[1]
    value = f"t={SW_TIMESTAMP},{other},v0=not-hex,{ours}"
    verify_stripe(SW_BODY, {"Stripe-Signature": value}, SECRET, now=NOW)


def test_stripe_accepts_any_rotated_secret() -> None:
    verify_stripe(SW_BODY, stripe_headers(SW_BODY), [OTHER_SECRET, SECRET], now=NOW)


def test_stripe_rejects_missing_signature() -> None:
    with pytest.raises(MissingSignature, match=r"^missing signature$"):
        verify_stripe(SW_BODY, {}, SECRET, now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "v1=" + "0" * 64,
        f"t={SW_TIMESTAMP}",
        f"t={SW_TIMESTAMP},v0=" + "0" * 64,
        "t=soon,v1=" + "0" * 64,
        f"t={SW_TIMESTAMP},t={SW_TIMESTAMP},v1=" + "0" * 64,
        f"t={SW_TIMESTAMP},v1=" + "0" * 63,
        f"t={SW_TIMESTAMP},v1=" + "z" * 64,
        f"t={SW_TIMESTAMP},garbage,v1=" + "0" * 64,
    ],
)
def test_stripe_rejects_malformed_header(value: str) -> None:
    with pytest.raises(MalformedSignature, match=r"^malformed signature$"):
        verify_stripe(SW_BODY, {"Stripe-Signature": value}, SECRET, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_stripe_rejects_timestamp_outside_tolerance(offset: int) -> None:
    with pytest.raises(TimestampOutOfTolerance, match=r"^timestamp outside tolerance$"):
        verify_stripe(SW_BODY, stripe_headers(SW_BODY), SECRET, now=NOW + offset)


@pytest.mark.parametrize("offset", [-300, 300])
def test_stripe_accepts_timestamp_at_tolerance_edge(offset: int) -> None:
    verify_stripe(SW_BODY, stripe_headers(SW_BODY), SECRET, now=NOW + offset)


# ---------------------------------------------------------------------------
# Grafana


def test_grafana_accepts_body_signature() -> None:
    headers = {"X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET)}
    verify_grafana(SW_BODY, headers, SECRET)


def test_sign_grafana_signs_timestamp_colon_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1614265330:" + SW_BODY, hashlib.sha256).hexdigest()
    assert sign_grafana(SW_BODY, SECRET, timestamp=SW_TIMESTAMP) == expected


def test_grafana_accepts_timestamped_signature() -> None:
    headers = {
        "X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET, timestamp=SW_TIMESTAMP),
        "X-Grafana-Alerting-Signature-Timestamp": str(SW_TIMESTAMP),
    }
    verify_grafana(
        SW_BODY,
        headers,
        SECRET,
        timestamp_header="X-Grafana-Alerting-Signature-Timestamp",
        now=NOW,
    )


def test_grafana_accepts_custom_header() -> None:
    headers = {"X-Alert-Sig": sign_grafana(SW_BODY, SECRET)}
    verify_grafana(SW_BODY, headers, SECRET, header="X-Alert-Sig")


def test_grafana_rejects_tampered_body() -> None:
    headers = {"X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET)}
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch$"):
        verify_grafana(SW_BODY[:-1], headers, SECRET)


def test_grafana_rejects_missing_signature() -> None:
    with pytest.raises(MissingSignature, match=r"^missing signature$"):
        verify_grafana(SW_BODY, {}, SECRET)


def test_grafana_rejects_prefixed_signature() -> None:
    headers = {"X-Grafana-Alerting-Signature": "sha256=" + sign_grafana(SW_BODY, SECRET)}
    with pytest.raises(MalformedSignature, match=r"^malformed signature$"):
        verify_grafana(SW_BODY, headers, SECRET)


def test_grafana_rejects_missing_timestamp() -> None:
    headers = {
        "X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET, timestamp=SW_TIMESTAMP)
    }
    with pytest.raises(MalformedSignature):
        verify_grafana(SW_BODY, headers, SECRET, timestamp_header="X-Ts", now=NOW)


def test_grafana_rejects_changed_timestamp() -> None:
    headers = {
        "X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET, timestamp=SW_TIMESTAMP),
        "X-Ts": str(SW_TIMESTAMP + 1),
    }
    with pytest.raises(SignatureMismatch):
        verify_grafana(SW_BODY, headers, SECRET, timestamp_header="X-Ts", now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_grafana_rejects_timestamp_outside_tolerance(offset: int) -> None:
    headers = {
        "X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET, timestamp=SW_TIMESTAMP),
        "X-Ts": str(SW_TIMESTAMP),
    }
    with pytest.raises(TimestampOutOfTolerance, match=r"^timestamp outside tolerance$"):
        verify_grafana(SW_BODY, headers, SECRET, timestamp_header="X-Ts", now=NOW + offset)


def test_grafana_accepts_any_rotated_secret() -> None:
    headers = {"X-Grafana-Alerting-Signature": sign_grafana(SW_BODY, SECRET)}
    verify_grafana(SW_BODY, headers, [OTHER_SECRET, SECRET])


# ---------------------------------------------------------------------------
# Gitea / Forgejo


@pytest.mark.parametrize("name", ["X-Gitea-Signature", "X-Forgejo-Signature"])
def test_gitea_accepts_signature_header(name: str) -> None:
    verify_gitea(SW_BODY, {name: sign_gitea(SW_BODY, SECRET)}, SECRET)


def test_sign_gitea_is_plain_hex_hmac_sha256() -> None:
    expected = hmac.new(SECRET.encode(), SW_BODY, hashlib.sha256).hexdigest()
    assert sign_gitea(SW_BODY, SECRET) == expected


def test_gitea_rejects_tampered_body() -> None:
    headers = {"X-Gitea-Signature": sign_gitea(SW_BODY, SECRET)}
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch$"):
        verify_gitea(b"{}", headers, SECRET)


def test_gitea_rejects_missing_signature() -> None:
    with pytest.raises(MissingSignature, match=r"^missing signature$"):
        verify_gitea(SW_BODY, {"X-Hub-Signature-256": sign_github(SW_BODY, SECRET)}, SECRET)


def test_gitea_rejects_prefixed_signature() -> None:
    headers = {"X-Gitea-Signature": sign_github(SW_BODY, SECRET)}
    with pytest.raises(MalformedSignature, match=r"^malformed signature$"):
        verify_gitea(SW_BODY, headers, SECRET)


def test_gitea_accepts_any_rotated_secret() -> None:
    headers = {"X-Gitea-Signature": sign_gitea(SW_BODY, SECRET)}
    verify_gitea(SW_BODY, headers, [OTHER_SECRET, SECRET])


# ---------------------------------------------------------------------------
# GitLab and bearer tokens


def test_gitlab_accepts_matching_token() -> None:
    verify_gitlab({"X-Gitlab-Token": SECRET}, SECRET)


def test_gitlab_rejects_wrong_token() -> None:
    with pytest.raises(SignatureMismatch, match=r"^invalid token$"):
        verify_gitlab({"X-Gitlab-Token": SECRET + "x"}, SECRET)


def test_gitlab_rejects_missing_token() -> None:
    with pytest.raises(MissingSignature, match=r"^missing token$"):
        verify_gitlab({}, SECRET)


def test_gitlab_rejects_non_ascii_token_as_mismatch() -> None:
    with pytest.raises(SignatureMismatch):
        verify_gitlab({"X-Gitlab-Token": "jeton-é-\udcff"}, SECRET)


def test_gitlab_accepts_non_ascii_secret() -> None:
    verify_gitlab({"X-Gitlab-Token": "jeton-é"}, "jeton-é")


def test_gitlab_accepts_any_rotated_token() -> None:
    verify_gitlab({"X-Gitlab-Token": SECRET}, [OTHER_SECRET, SECRET])


@pytest.mark.parametrize("value", [f"Bearer {SECRET}", f"bearer {SECRET}", f"BEARER  {SECRET}"])
def test_bearer_token_accepts_authorization_header(value: str) -> None:
    verify_bearer_token({"Authorization": value}, SECRET)


@pytest.mark.parametrize("value", [SECRET, f"Basic {SECRET}", "Bearer", "Bearer  "])
def test_bearer_token_rejects_malformed_authorization(value: str) -> None:
    with pytest.raises(MalformedSignature, match=r"^malformed token$"):
        verify_bearer_token({"Authorization": value}, SECRET)


def test_bearer_token_rejects_wrong_token() -> None:
    with pytest.raises(SignatureMismatch, match=r"^invalid token$"):
        verify_bearer_token({"Authorization": f"Bearer {OTHER_SECRET}"}, SECRET)


def test_bearer_token_rejects_missing_header() -> None:
    with pytest.raises(MissingSignature, match=r"^missing token$"):
        verify_bearer_token({}, SECRET)


def test_bearer_token_reads_whole_value_of_named_header() -> None:
    verify_bearer_token({"X-Api-Key": SECRET}, SECRET, header="X-Api-Key")


# ---------------------------------------------------------------------------
# Generic HMAC


@pytest.mark.parametrize("algorithm", ["sha256", "sha1", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_accepts_each_algorithm_and_encoding(algorithm: Any, encoding: Any) -> None:
    signature = sign_hmac(SW_BODY, SECRET, algorithm=algorithm, encoding=encoding, prefix="v=")
    options: dict[str, Any] = {"algorithm": algorithm, "encoding": encoding, "prefix": "v="}
    verify_hmac(SW_BODY, {"X-Sig": signature}, SECRET, header="X-Sig", **options)


def test_sign_hmac_base64_matches_standard_library() -> None:
    import base64

    digest = hmac.new(SECRET.encode(), SW_BODY, hashlib.sha512).digest()
    expected = base64.b64encode(digest).decode()
    assert sign_hmac(SW_BODY, SECRET, algorithm="sha512", encoding="base64") == expected


def test_hmac_rejects_tampered_body() -> None:
    headers = {"X-Sig": sign_hmac(SW_BODY, SECRET)}
    with pytest.raises(SignatureMismatch, match=r"^signature mismatch$"):
        verify_hmac(SW_BODY + b"\n", headers, SECRET, header="X-Sig")


def test_hmac_rejects_missing_header() -> None:
    with pytest.raises(MissingSignature, match=r"^missing signature$"):
        verify_hmac(SW_BODY, {}, SECRET, header="X-Sig")


def test_hmac_rejects_missing_prefix() -> None:
    headers = {"X-Sig": sign_hmac(SW_BODY, SECRET)}
    with pytest.raises(MalformedSignature, match=r"^malformed signature$"):
        verify_hmac(SW_BODY, headers, SECRET, header="X-Sig", prefix="sha256=")


def test_hmac_rejects_digest_of_other_algorithm() -> None:
    headers = {"X-Sig": sign_hmac(SW_BODY, SECRET, algorithm="sha1")}
    with pytest.raises(MalformedSignature):
        verify_hmac(SW_BODY, headers, SECRET, header="X-Sig")


def test_hmac_rejects_invalid_base64() -> None:
    headers = {"X-Sig": "*" * 44}
    with pytest.raises(MalformedSignature):
        verify_hmac(SW_BODY, headers, SECRET, header="X-Sig", encoding="base64")


def test_hmac_rejects_unsupported_algorithm() -> None:
    with pytest.raises(ValueError, match="unsupported HMAC algorithm 'md5'"):
        verify_hmac(SW_BODY, {"X-Sig": "00"}, SECRET, header="X-Sig", algorithm="md5")  # type: ignore[arg-type]


def test_sign_hmac_rejects_unsupported_encoding() -> None:
    with pytest.raises(ValueError, match="unsupported digest encoding 'base32'"):
        sign_hmac(SW_BODY, SECRET, encoding="base32")  # type: ignore[arg-type]


def test_verify_hmac_rejects_unsupported_encoding() -> None:
    headers = {"X-Sig": "00"}
    with pytest.raises(ValueError, match="unsupported digest encoding 'base32'"):
        verify_hmac(SW_BODY, headers, SECRET, header="X-Sig", encoding="base32")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Bodies and properties shared by every HMAC scheme


Signer = Callable[[bytes, str], dict[str, str]]
Checker = Callable[[bytes, dict[str, str], str], None]

SCHEMES: dict[str, tuple[Signer, Checker]] = {
    "github": (
        lambda body, secret: {"X-Hub-Signature-256": sign_github(body, secret)},
        lambda body, headers, secret: verify_github(body, headers, secret),
    ),
    "github_sha1": (
        lambda body, secret: {"X-Hub-Signature": sign_github(body, secret, algorithm="sha1")},
        lambda body, headers, secret: verify_github(body, headers, secret, allow_sha1=True),
    ),
    "standard_webhooks": (
        lambda body, secret: sw_headers(body),
        lambda body, headers, secret: verify_standard_webhooks(body, headers, SW_SECRET, now=NOW),
    ),
    "stripe": (
        lambda body, secret: stripe_headers(body, secret),
        lambda body, headers, secret: verify_stripe(body, headers, secret, now=NOW),
    ),
    "grafana": (
        lambda body, secret: {
            "X-Grafana-Alerting-Signature": sign_grafana(body, secret, timestamp=SW_TIMESTAMP),
            "X-Ts": str(SW_TIMESTAMP),
        },
        lambda body, headers, secret: verify_grafana(
            body, headers, secret, timestamp_header="X-Ts", now=NOW
        ),
    ),
    "gitea": (
        lambda body, secret: {"X-Gitea-Signature": sign_gitea(body, secret)},
        lambda body, headers, secret: verify_gitea(body, headers, secret),
    ),
    "hmac_sha512_base64": (
        lambda body, secret: {
            "X-Sig": sign_hmac(body, secret, algorithm="sha512", encoding="base64", prefix="p=")
        },
        lambda body, headers, secret: verify_hmac(
            body,
            headers,
            secret,
            header="X-Sig",
            algorithm="sha512",
            encoding="base64",
            prefix="p=",
        ),
    ),
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("body_name", BODIES)
def test_scheme_verifies_unusual_body(scheme: str, body_name: str) -> None:
    sign, check = SCHEMES[scheme]
    body = BODIES[body_name]
    check(body, sign(body, SECRET), SECRET)


@pytest.mark.parametrize("scheme", SCHEMES)
@given(body=st.binary(max_size=2048))
def test_scheme_verifies_any_signed_body(scheme: str, body: bytes) -> None:
    sign, check = SCHEMES[scheme]
    check(body, sign(body, SECRET), SECRET)


@pytest.mark.parametrize("scheme", SCHEMES)
@given(body=st.binary(min_size=1, max_size=2048), data=st.data())
def test_scheme_rejects_any_single_byte_change(
    scheme: str, body: bytes, data: st.DataObject
) -> None:
    sign, check = SCHEMES[scheme]
    headers = sign(body, SECRET)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    flip = data.draw(st.integers(min_value=1, max_value=255), label="xor")
    changed = bytearray(body)
    changed[index] ^= flip
    with pytest.raises(SignatureMismatch):
        check(bytes(changed), headers, SECRET)


# ---------------------------------------------------------------------------
# parse_secrets


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("one", ["one"]),
        ("old, new", ["old", "new"]),
        (" old ,, new ,", ["old", "new"]),
        (["a,b", " c "], ["a,b", "c"]),
        (("x", ""), ["x"]),
        ("", []),
        (" , ", []),
        ([], []),
        (None, []),
    ],
)
def test_parse_secrets_reads_config_value(value: object, expected: list[str]) -> None:
    assert signatures.parse_secrets(value) == expected


@pytest.mark.parametrize("value", [42, b"bytes", ["ok", 3]])
def test_parse_secrets_rejects_other_types(value: object) -> None:
    with pytest.raises(InvalidSecret, match="must be a string or a list of strings"):
        signatures.parse_secrets(value)


# ---------------------------------------------------------------------------
# Verifiers


def github_request(body: bytes = GITHUB_BODY, secret: str = GITHUB_SECRET) -> WebhookRequest:
    return make_request({"X-Hub-Signature-256": sign_github(body, secret)}, body)


VERIFIER_CASES: dict[str, tuple[Callable[[], SignatureVerifier], Signer]] = {
    "github": (signatures.github, SCHEMES["github"][0]),
    "standard_webhooks": (
        lambda: signatures.standard_webhooks(clock=fixed_clock),
        lambda body, secret: sw_headers(body, secret),
    ),
    "stripe": (lambda: signatures.stripe(clock=fixed_clock), SCHEMES["stripe"][0]),
    "grafana": (
        lambda: signatures.grafana(timestamp_header="X-Ts", clock=fixed_clock),
        SCHEMES["grafana"][0],
    ),
    "gitea": (signatures.gitea, SCHEMES["gitea"][0]),
    "gitlab": (signatures.gitlab, lambda body, secret: {"X-Gitlab-Token": secret}),
    "hmac": (
        lambda: signatures.hmac_signature(header="X-Sig", prefix="sha256="),
        lambda body, secret: {"X-Sig": sign_hmac(body, secret, prefix="sha256=")},
    ),
    "bearer": (signatures.bearer_token, lambda body, secret: {"Authorization": f"Bearer {secret}"}),
}

# Verifiers of a shared token rather than a signature. Their 503 message calls the secret a token.
TOKEN_CASES = {"gitlab", "bearer"}
# Standard Webhooks secrets are base64 keys, the others are used as text.
VERIFIER_SECRETS = {"standard_webhooks": SW_SECRET}
VERIFIER_OTHER_SECRETS = {"standard_webhooks": SW_OTHER_SECRET}


def verifier_secret(case: str) -> str:
    return VERIFIER_SECRETS.get(case, SECRET)


def other_secret(case: str) -> str:
    return VERIFIER_OTHER_SECRETS.get(case, OTHER_SECRET)


def rotated_secret(case: str) -> str:
    if case == "standard_webhooks":
        return "whsec_cm90YXRlZC1vdXQtc2VjcmV0LXZhbHVl"
    return "rotated-out-secret-value"


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
async def test_verifier_accepts_signed_request(case: str) -> None:
    factory, sign = VERIFIER_CASES[case]
    secret = verifier_secret(case)
    request = make_request(sign(SW_BODY, secret), SW_BODY)
    await factory()(request, make_plugin(secret))


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
async def test_verifier_accepts_comma_separated_rotation(case: str) -> None:
    factory, sign = VERIFIER_CASES[case]
    secret = verifier_secret(case)
    request = make_request(sign(SW_BODY, secret), SW_BODY)
    await factory()(request, make_plugin(f"{other_secret(case)}, {secret}"))


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
async def test_verifier_accepts_list_rotation(case: str) -> None:
    factory, sign = VERIFIER_CASES[case]
    secret = verifier_secret(case)
    request = make_request(sign(SW_BODY, secret), SW_BODY)
    await factory()(request, make_plugin([other_secret(case), secret]))


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
@pytest.mark.parametrize("secret", ["", " , ", [], None])
async def test_verifier_returns_503_without_secret(case: str, secret: object) -> None:
    factory, sign = VERIFIER_CASES[case]
    request = make_request(sign(SW_BODY, verifier_secret(case)), SW_BODY)
    with pytest.raises(ServiceUnavailable) as caught:
        await factory()(request, make_plugin(secret))
    kind = "token" if case in TOKEN_CASES else "webhook secret"
    assert caught.value.status == 503
    assert caught.value.message == f"{kind} is not configured: set plugins.p.WEBHOOK_SECRET"


@pytest.mark.anyio
async def test_verifier_503_quotes_plugin_name_as_toml() -> None:
    plugin = SimpleNamespace(name="运维", config=SimpleNamespace(WEBHOOK_SECRET=""))
    headers = {"X-Hub-Signature-256": sign_github(SW_BODY, SECRET)}
    with pytest.raises(ServiceUnavailable) as caught:
        await signatures.github()(make_request(headers, SW_BODY), plugin)
    assert caught.value.message.endswith('set plugins."运维".WEBHOOK_SECRET')


@pytest.mark.anyio
async def test_verifier_logs_plugin_and_field_without_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="plughook.signatures")
    with pytest.raises(ServiceUnavailable):
        await signatures.github("GITHUB_SECRET")(github_request(), make_plugin("", "GITHUB_SECRET"))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "plugin p" in record.getMessage()
    assert "GITHUB_SECRET" in record.getMessage()


@pytest.mark.anyio
async def test_verifier_returns_503_when_config_field_absent() -> None:
    plugin = SimpleNamespace(name="p", config=SimpleNamespace())
    with pytest.raises(ServiceUnavailable, match="webhook secret is not configured"):
        await signatures.github()(github_request(), plugin)


@pytest.mark.anyio
async def test_verifier_returns_503_for_secret_of_wrong_type() -> None:
    with pytest.raises(ServiceUnavailable, match="webhook secret is not valid"):
        await signatures.github()(github_request(), make_plugin(12345))


@pytest.mark.anyio
async def test_standard_webhooks_verifier_rejects_bad_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = make_request(SW_HEADERS, SW_BODY)
    verifier = signatures.standard_webhooks(clock=fixed_clock)
    with pytest.raises(ServiceUnavailable, match="webhook secret is not valid"):
        await verifier(request, make_plugin("whsec_a"))
    assert "WEBHOOK_SECRET" in caplog.records[0].getMessage()


@pytest.mark.anyio
async def test_verifier_allow_unsigned_passes_without_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="plughook.signatures")
    await signatures.github(allow_unsigned=True)(make_request(), make_plugin(""))
    assert "accepting unsigned delivery" in caplog.records[0].getMessage()


@pytest.mark.anyio
async def test_verifier_allow_unsigned_still_checks_configured_secret() -> None:
    verifier = signatures.github(allow_unsigned=True)
    with pytest.raises(Unauthorized, match=r"^missing signature: expected X-Hub-Signature-256"):
        await verifier(make_request(), make_plugin(GITHUB_SECRET))


TOKEN_CASES = {"gitlab", "bearer"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("verifier", "message"),
    [
        (
            signatures.hmac_signature(header="X-CI-Signature", prefix="sha256="),
            "missing signature: expected X-CI-Signature: sha256=<hex HMAC-SHA256 of the body>",
        ),
        (
            signatures.hmac_signature(header="X-Mac", algorithm="sha512", encoding="base64"),
            "missing signature: expected X-Mac: <base64 HMAC-SHA512 of the body>",
        ),
        (signatures.bearer_token(), "missing token: expected Authorization: Bearer <token>"),
        (
            signatures.bearer_token(header="X-CI-Token"),
            "missing token: expected X-CI-Token: <token>",
        ),
        (
            signatures.github(allow_sha1=True),
            "missing signature: expected X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the "
            "body> or X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>",
        ),
    ],
)
async def test_rejection_names_the_expected_header(
    verifier: signatures.SignatureVerifier, message: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        await verifier(make_request({}, b"{}"), make_plugin("s3cret"))
    assert caught.value.message == message


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
async def test_verifier_returns_401_for_missing_signature(case: str) -> None:
    factory, _ = VERIFIER_CASES[case]
    request = make_request({}, SW_BODY)
    with pytest.raises(Unauthorized) as caught:
        await factory()(request, make_plugin(verifier_secret(case)))
    # Shared-token schemes name the token; signature schemes the signature.
    expected = "missing token" if case in TOKEN_CASES else "missing signature"
    reason, _, hint = caught.value.message.partition(": expected ")
    assert caught.value.status == 401
    assert reason == expected
    assert hint


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
async def test_verifier_returns_401_for_wrong_secret(case: str) -> None:
    factory, sign = VERIFIER_CASES[case]
    request = make_request(sign(SW_BODY, other_secret(case)), SW_BODY)
    with pytest.raises(Unauthorized) as caught:
        await factory()(request, make_plugin(verifier_secret(case)))
    expected = "invalid token" if case in TOKEN_CASES else "signature mismatch"
    assert caught.value.message == expected


@pytest.mark.anyio
async def test_github_verifier_returns_401_for_malformed_signature() -> None:
    request = make_request({"X-Hub-Signature-256": "sha256=xyz"}, GITHUB_BODY)
    hint = r"X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>$"
    with pytest.raises(Unauthorized, match=rf"^malformed signature: expected {hint}"):
        await signatures.github()(request, make_plugin(GITHUB_SECRET))


@pytest.mark.anyio
async def test_github_verifier_returns_401_for_tampered_body() -> None:
    request = make_request({"X-Hub-Signature-256": GITHUB_SIGNATURE}, b"Hello, World?")
    with pytest.raises(Unauthorized, match=r"^signature mismatch$"):
        await signatures.github()(request, make_plugin(GITHUB_SECRET))


@pytest.mark.anyio
async def test_github_verifier_accepts_sha1_only_when_allowed() -> None:
    headers = {"X-Hub-Signature": sign_github(GITHUB_BODY, GITHUB_SECRET, algorithm="sha1")}
    plugin = make_plugin(GITHUB_SECRET)
    with pytest.raises(Unauthorized, match=r"^missing signature: expected X-Hub-Signature-256"):
        await signatures.github()(make_request(headers, GITHUB_BODY), plugin)
    await signatures.github(allow_sha1=True)(make_request(headers, GITHUB_BODY), plugin)


@pytest.mark.anyio
async def test_standard_webhooks_verifier_accepts_official_vector() -> None:
    verifier = signatures.standard_webhooks(clock=fixed_clock)
    await verifier(make_request(SW_HEADERS, SW_BODY), make_plugin(SW_SECRET))


@pytest.mark.anyio
@pytest.mark.parametrize("offset", [-301, 301])
async def test_standard_webhooks_verifier_returns_401_for_stale_timestamp(offset: int) -> None:
    verifier = signatures.standard_webhooks(clock=lambda: NOW + offset)
    with pytest.raises(Unauthorized, match=r"^timestamp outside tolerance$"):
        await verifier(make_request(SW_HEADERS, SW_BODY), make_plugin(SW_SECRET))


@pytest.mark.anyio
async def test_stripe_verifier_returns_401_for_stale_timestamp() -> None:
    verifier = signatures.stripe(clock=lambda: NOW + 301)
    request = make_request(stripe_headers(SW_BODY), SW_BODY)
    with pytest.raises(Unauthorized, match=r"^timestamp outside tolerance$"):
        await verifier(request, make_plugin(SECRET))


@pytest.mark.anyio
async def test_grafana_verifier_returns_401_for_future_timestamp() -> None:
    verifier = signatures.grafana(timestamp_header="X-Ts", clock=lambda: NOW - 301)
    request = make_request(SCHEMES["grafana"][0](SW_BODY, SECRET), SW_BODY)
    with pytest.raises(Unauthorized, match=r"^timestamp outside tolerance$"):
        await verifier(request, make_plugin(SECRET))


@pytest.mark.anyio
async def test_verifier_reads_secret_at_request_time() -> None:
    verifier = signatures.github()
    plugin = make_plugin("")
    with pytest.raises(ServiceUnavailable):
        await verifier(github_request(), plugin)
    plugin.config.WEBHOOK_SECRET = GITHUB_SECRET
    await verifier(github_request(), plugin)


@pytest.mark.anyio
async def test_verifier_reads_named_config_field() -> None:
    verifier = signatures.github("GITHUB_SECRET")
    await verifier(github_request(), make_plugin(GITHUB_SECRET, "GITHUB_SECRET"))


@pytest.mark.anyio
async def test_github_verifier_leaves_form_body_readable() -> None:
    body = BODIES["github_form"]
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Hub-Signature-256": sign_github(body, GITHUB_SECRET),
    }
    request = make_request(headers, body)
    await signatures.github()(request, make_plugin(GITHUB_SECRET))
    form = await request.form()
    assert json.loads(str(form["payload"])) == json.loads(GITHUB_FORM_PAYLOAD)


@pytest.mark.anyio
async def test_github_verifier_reads_streamed_body() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"Hello, "
        yield b"World!"

    request = WebhookRequest(
        "POST", "p", "/hook", headers={"X-Hub-Signature-256": GITHUB_SIGNATURE}, body=chunks()
    )
    await signatures.github()(request, make_plugin(GITHUB_SECRET))
    assert await request.body() == GITHUB_BODY


@pytest.mark.anyio
@pytest.mark.parametrize("case", ["gitlab", "bearer"])
async def test_token_verifier_does_not_read_body(case: str) -> None:
    read = False

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"{}"

    factory, sign = VERIFIER_CASES[case]
    request = WebhookRequest("POST", "p", "/hook", headers=sign(b"", SECRET), body=chunks())
    await factory()(request, make_plugin(SECRET))
    assert read is False


@pytest.mark.parametrize(
    ("factory", "header"),
    [
        (signatures.github, "X-GitHub-Delivery"),
        (signatures.standard_webhooks, "webhook-id"),
        (signatures.stripe, None),
        (signatures.grafana, None),
        (signatures.gitea, None),
        (signatures.gitlab, None),
        (signatures.bearer_token, None),
        (lambda: signatures.hmac_signature(header="X-Sig"), None),
    ],
)
def test_verifier_delivery_id_header(
    factory: Callable[[], SignatureVerifier], header: str | None
) -> None:
    assert factory().delivery_id_header == header


def test_hmac_signature_rejects_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="'algorithm' must be in"):
        signatures.hmac_signature(header="X-Sig", algorithm="md5")  # type: ignore[arg-type]


def test_hmac_signature_rejects_unknown_encoding() -> None:
    with pytest.raises(ValueError, match="'encoding' must be in"):
        signatures.hmac_signature(header="X-Sig", encoding="base32")  # type: ignore[arg-type]


def test_standard_webhooks_rejects_non_positive_tolerance() -> None:
    with pytest.raises(ValueError, match="'tolerance' must be > 0"):
        signatures.standard_webhooks(tolerance=0)


def test_verifier_repr_names_field_and_options() -> None:
    verifier = signatures.github("GITHUB_SECRET", allow_sha1=True)
    assert repr(verifier) == (
        "GitHubVerifier(secret_field='GITHUB_SECRET', allow_unsigned=False, allow_sha1=True)"
    )


# ---------------------------------------------------------------------------
# Nothing secret in logs, messages or reprs


@pytest.mark.anyio
@pytest.mark.parametrize("case", VERIFIER_CASES)
async def test_verifier_failures_leak_no_secret_or_signature(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    factory, sign = VERIFIER_CASES[case]
    verifier = factory()
    secret = verifier_secret(case)
    plugin = make_plugin(f"{secret},{rotated_secret(case)}")
    expected_headers = sign(SW_BODY, secret)
    sent_headers = sign(SW_BODY + b"!", other_secret(case))
    request = make_request(sent_headers, SW_BODY, delivery_id="delivery-7")

    with pytest.raises(Unauthorized) as caught:
        await verifier(request, plugin)

    forbidden = [secret, rotated_secret(case), other_secret(case)]
    forbidden += [*expected_headers.values(), *sent_headers.values()]
    forbidden += [part for value in forbidden for part in value.replace(",", " ").split()]
    forbidden = [value for value in forbidden if len(value) >= 12]
    texts = [str(caught.value), caught.value.message, repr(verifier)]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        for value in forbidden:
            assert value not in text


@pytest.mark.anyio
async def test_verifier_rejection_log_names_plugin_path_and_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="plughook.signatures")
    request = make_request({"X-Hub-Signature-256": GITHUB_SIGNATURE}, b"tampered")
    request.delivery_id = "delivery-42"
    with pytest.raises(Unauthorized):
        await signatures.github()(request, make_plugin(GITHUB_SECRET))
    [record] = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "plugin p" in message
    assert "/hook" in message
    assert "delivery-42" in message
    assert "signature mismatch" in message


@pytest.mark.anyio
async def test_verifier_log_reads_delivery_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="plughook.signatures")
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE, "X-GitHub-Delivery": "guid-1"}
    with pytest.raises(Unauthorized):
        await signatures.github()(make_request(headers, b"tampered"), make_plugin(GITHUB_SECRET))
    assert "guid-1" in caplog.records[0].getMessage()


@pytest.mark.anyio
async def test_verifier_log_skips_unprintable_delivery_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="plughook.signatures")
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE, "X-GitHub-Delivery": "a\nforged line"}
    with pytest.raises(Unauthorized):
        await signatures.github()(make_request(headers, b"tampered"), make_plugin(GITHUB_SECRET))
    assert "forged" not in caplog.records[0].getMessage()


@pytest.mark.anyio
async def test_verifier_unauthorized_has_no_chained_cause() -> None:
    request = make_request({"X-Hub-Signature-256": GITHUB_SIGNATURE}, b"tampered")
    with pytest.raises(Unauthorized) as caught:
        await signatures.github()(request, make_plugin(GITHUB_SECRET))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True
