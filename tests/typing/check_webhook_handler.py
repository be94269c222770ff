"""The public API of interlock.webhook_handler under `mypy --strict` (checked, not run)."""

# Secrets here are fixtures.
# ruff: noqa: S106

from __future__ import annotations

import asyncio
import math
import sqlite3
from typing import TYPE_CHECKING

from interlock.webhook_handler import (
    SCHEMES,
    ClaimResult,
    DeliveryState,
    DeliveryStore,
    HmacScheme,
    InMemoryDeliveryStore,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    NoMatchingSignatureError,
    ReceiveOutcome,
    ReceiveResult,
    SQLiteDeliveryStore,
    TimestampOutsideToleranceError,
    TimestampTooNewError,
    TimestampTooOldError,
    VerifiedWebhook,
    WebhookDelivery,
    WebhookReceiver,
    WebhookVerificationError,
    sign,
    verify,
    zoom_url_validation_response,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

body: bytes = b'{"id": "evt_1"}'
headers: dict[str, str] = sign("stripe", body=body, secret="whsec_x", timestamp=1_700_000_000)
result: VerifiedWebhook = verify(
    "stripe",
    body=body,
    headers=headers,
    secret=["whsec_old", "whsec_x"],
    now=1_700_000_010.5,
    tolerance=300,
)
scheme: str = result.scheme
timestamp: int | None = result.timestamp
webhook_id: str | None = result.webhook_id
secret_index: int | None = result.secret_index
event_type: str | None = result.event_type

pairs: list[tuple[str, str]] = list(headers.items())
verify("stripe", body=body, headers=pairs, secret=b"whsec_x", tolerance=math.inf)

config = HmacScheme(
    header="X-Signature",
    algorithm="sha512",
    encoding="base64",
    prefix="v1=",
    template="{timestamp}.{body}",
    timestamp_header="X-Timestamp",
    tolerance=60.0,
)
signed: dict[str, str] = sign(config, body=body, secret="s3cret", url="https://example.com/in")
verify(config, body=body, headers=signed, secret="s3cret")
verify("generic", body=body, headers=signed, secret="s3cret", header="X-Signature")

defaults: Mapping[str, float | None] = SCHEMES
response: dict[str, str] = zoom_url_validation_response("token", "secret")

try:
    verify("github", body=body, headers={}, secret="s")
except MissingHeaderError as exc:
    header: str = exc.header
except MalformedHeaderError as exc:
    reason: str = exc.reason
except TimestampTooOldError as exc:
    skew: float = exc.skew
except TimestampTooNewError as exc:
    now: float = exc.now
except TimestampOutsideToleranceError as exc:
    tolerance: float = exc.tolerance
except NoMatchingSignatureError as exc:
    received: tuple[str, ...] = exc.received
    tried: int = exc.secrets_tried
except InvalidSecretError as exc:
    index: int | None = exc.secret_index
except WebhookVerificationError as exc:
    name: str = exc.scheme
except ValueError:
    pass


# --- Receiving ---------------------------------------------------------------------


def handler(delivery: WebhookDelivery) -> dict[str, str]:
    body: bytes = delivery.body
    verified: VerifiedWebhook = delivery.verified
    attempt: int = delivery.attempt
    return {
        "key": delivery.key,
        "size": str(len(body)),
        "id": str(verified.webhook_id),
        "n": str(attempt),
    }


async def async_handler(delivery: WebhookDelivery) -> None:
    await asyncio.sleep(0)


def key(body: bytes, verified: VerifiedWebhook) -> str:
    return f"{verified.scheme}:{len(body)}"


memory: DeliveryStore = InMemoryDeliveryStore()
shared: DeliveryStore = SQLiteDeliveryStore("deliveries.db", timeout=2.0, migrate=False)
on_connection = SQLiteDeliveryStore(sqlite3.connect(":memory:"))
version: int = on_connection.migrate()
on_connection.close()

claim: ClaimResult = memory.claim("k", now=1.0, lease_seconds=30.0)
claimed: bool = claim.claimed
found: DeliveryState = claim.found
token: str | None = claim.token
expires_at: float | None = claim.expires_at
memory.complete("k", now=2.0)
released: bool = memory.release("k", token=token)
state: DeliveryState = memory.state("k", now=3.0)
purged: int = memory.purge(before=0.0)

receiver = WebhookReceiver(
    "standard-webhooks",
    secret=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    handler=handler,
    store=shared,
    tolerance=300.0,
    lease_seconds=60.0,
    retention_seconds=86400.0,
    delivery_key=key,
)
receipt: ReceiveResult = receiver.receive(b"{}", {"webhook-id": "msg_1"}, url=None, method="POST")
status: int = receipt.status
outcome: ReceiveOutcome = receipt.outcome
code: int = outcome.status
phrase: str = outcome.phrase
detail: str = receipt.detail
answer_headers: dict[str, str] = receipt.headers
retry_after: int | None = receipt.retry_after
error: BaseException | None = receipt.error
default_key: str = WebhookReceiver.key_for(b"{}", VerifiedWebhook("svix", 1, "msg_1", 0, None))
forgotten: int = receiver.purge()


GITHUB_SECRET = "It's a Secret to Everybody"  # noqa: S105 - GitHub's documented example
async_receiver = WebhookReceiver("github", secret=GITHUB_SECRET, handler=async_handler)


async def main() -> ReceiveResult:
    return await async_receiver.receive_async(b"{}", [("X-Hub-Signature-256", "sha256=00")])
