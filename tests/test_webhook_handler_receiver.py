"""WebhookReceiver and its delivery stores: verify, claim, run once, complete or release."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

import interlock.webhook_handler as wh

DeliveryState = wh.DeliveryState
InMemoryDeliveryStore = wh.InMemoryDeliveryStore
ReceiveOutcome = wh.ReceiveOutcome
SQLiteDeliveryStore = wh.SQLiteDeliveryStore
WebhookReceiver = wh.WebhookReceiver

SRC = Path(wh.__file__).resolve().parents[1]
# The Standard Webhooks specification's example secret (public test data).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - public test data
STRIPE_SECRET = "whsec_test"  # noqa: S105 - a made-up test secret
BAD_SECRET = "whsec_not base64!"  # noqa: S105 - deliberately malformed
T0 = 1_700_000_000
BODY = b'{"type":"invoice.paid","data":{"id":"in_1"}}'


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def signed(
    body: bytes = BODY, *, webhook_id: str = "msg_1", timestamp: int = T0, secret: str = SECRET
) -> dict[str, str]:
    """Headers of a genuine Standard Webhooks delivery."""
    return dict(
        wh.sign(
            "standard-webhooks",
            body=body,
            secret=secret,
            timestamp=timestamp,
            webhook_id=webhook_id,
        )
    )


class Recorder:
    """A handler that records its deliveries and can be told to fail."""

    def __init__(self, failures: int = 0, response: object = None) -> None:
        self.deliveries: list[object] = []
        self.failures = failures
        self.response = response

    def __call__(self, delivery: object) -> object:
        self.deliveries.append(delivery)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("downstream unavailable")
        return self.response


def receiver_with(
    handler: object, *, store: object = None, clock: FakeClock | None = None, **options: object
) -> object:
    """A standard-webhooks receiver on a fake clock."""
    return WebhookReceiver(
        "standard-webhooks",
        secret=SECRET,
        handler=handler,
        store=store,
        clock=clock or FakeClock(),
        **options,
    )


STORE_KINDS = ("memory", "sqlite-file", "sqlite-connection")


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """Each DeliveryStore implementation, fresh."""
    if request.param == "memory":
        yield InMemoryDeliveryStore()
    elif request.param == "sqlite-file":
        with SQLiteDeliveryStore(tmp_path / "deliveries.db") as sqlite_store:
            yield sqlite_store
    else:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        yield SQLiteDeliveryStore(conn)
        conn.close()


# --------------------------------------------------------------------------------------
# The receiver: outcomes and status codes
# --------------------------------------------------------------------------------------


def test_genuine_delivery_is_processed_with_200(store: object) -> None:
    """A verified delivery runs the handler once and answers 200 PROCESSED."""
    handler = Recorder(response={"ok": True})
    receiver = receiver_with(handler, store=store)
    result = receiver.receive(BODY, signed())
    assert (result.status, result.outcome) == (200, ReceiveOutcome.PROCESSED)
    assert result.webhook_id == "msg_1"
    assert result.key == "standard-webhooks:id:msg_1"
    assert result.response == {"ok": True}
    assert result.attempt == 1
    assert result.headers == {}
    [delivery] = handler.deliveries
    assert delivery.body == BODY
    assert delivery.verified.webhook_id == "msg_1"
    assert (delivery.key, delivery.attempt) == ("standard-webhooks:id:msg_1", 1)
    assert store.state(result.key, now=T0) is DeliveryState.DONE


def test_duplicate_after_completion_answers_200_without_running_the_handler(
    store: object,
) -> None:
    """A redelivery of a processed id answers 200 DUPLICATE and skips the handler."""
    handler = Recorder()
    clock = FakeClock()
    receiver = receiver_with(handler, store=store, clock=clock)
    receiver.receive(BODY, signed())
    clock.advance(3600)  # the provider's retry comes later, freshly signed
    result = receiver.receive(BODY, signed(timestamp=T0 + 3600))
    assert (result.status, result.outcome) == (200, ReceiveOutcome.DUPLICATE)
    assert result.key == "standard-webhooks:id:msg_1"
    assert len(handler.deliveries) == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(signed(secret="whsec_" + "QUJD" * 8), id="wrong-secret"),
        pytest.param({**signed(), "webhook-id": "msg_2"}, id="id-swapped"),
        pytest.param(signed(timestamp=T0 - 3600), id="replayed-old"),
        pytest.param({"content-type": "application/json"}, id="unsigned"),
    ],
)
def test_forged_delivery_never_reaches_the_handler(headers: dict[str, str]) -> None:
    """A delivery that fails verification answers 400 REJECTED; handler and store untouched."""
    handler = Recorder()
    store = InMemoryDeliveryStore()
    result = receiver_with(handler, store=store).receive(BODY, headers)
    assert (result.status, result.outcome) == (400, ReceiveOutcome.REJECTED)
    assert isinstance(result.error, wh.WebhookVerificationError)
    assert type(result.error).__name__ in result.detail  # the log says which check failed
    assert result.outcome.phrase == "webhook rejected"  # the response body does not
    assert (result.key, result.webhook_id) == (None, None)
    assert handler.deliveries == []
    assert len(store) == 0


def test_headers_from_a_one_shot_iterator_reach_the_handler() -> None:
    """Headers given as a generator of pairs are verified and still passed to the handler."""
    handler = Recorder()
    pairs = signed()
    result = receiver_with(handler).receive(BODY, ((k, v) for k, v in pairs.items()))
    assert result.outcome is ReceiveOutcome.PROCESSED
    assert handler.deliveries[0].headers == list(pairs.items())


def test_tampered_body_is_rejected() -> None:
    """Changing one byte of a signed body makes the delivery REJECTED."""
    handler = Recorder()
    result = receiver_with(handler).receive(BODY.replace(b"in_1", b"in_2"), signed())
    assert result.outcome is ReceiveOutcome.REJECTED
    assert handler.deliveries == []


def test_failed_handler_is_retried_on_the_next_delivery(store: object) -> None:
    """A handler that raises answers 500 and releases the key; the retry runs it again."""
    handler = Recorder(failures=1)
    clock = FakeClock()
    receiver = receiver_with(handler, store=store, clock=clock)
    first = receiver.receive(BODY, signed())
    assert (first.status, first.outcome) == (500, ReceiveOutcome.HANDLER_FAILED)
    assert isinstance(first.error, RuntimeError)
    assert "RuntimeError" in first.detail
    assert store.state(first.key, now=clock()) is DeliveryState.ABSENT
    clock.advance(5)
    second = receiver.receive(BODY, signed(timestamp=T0 + 5))
    assert (second.status, second.outcome, second.attempt) == (200, ReceiveOutcome.PROCESSED, 2)
    assert [d.attempt for d in handler.deliveries] == [1, 2]


def test_claim_held_by_another_worker_answers_503_with_retry_after(store: object) -> None:
    """While another worker holds the key, a delivery answers 503 IN_PROGRESS + Retry-After."""
    handler = Recorder()
    clock = FakeClock()
    receiver = receiver_with(handler, store=store, clock=clock, lease_seconds=60)
    store.claim("standard-webhooks:id:msg_1", now=clock(), lease_seconds=60)
    clock.advance(19.5)
    result = receiver.receive(BODY, signed(timestamp=T0 + 19))
    assert (result.status, result.outcome) == (503, ReceiveOutcome.IN_PROGRESS)
    assert result.retry_after == 41  # ceil(60 - 19.5)
    assert result.headers == {"Retry-After": "41"}
    assert handler.deliveries == []


def test_expired_claim_of_a_crashed_worker_is_retaken(store: object) -> None:
    """A claim whose lease ran out (its worker died) is retaken by the next delivery."""
    handler = Recorder()
    clock = FakeClock()
    receiver = receiver_with(handler, store=store, clock=clock, lease_seconds=60)
    crashed = store.claim("standard-webhooks:id:msg_1", now=clock(), lease_seconds=60)
    clock.advance(60)
    result = receiver.receive(BODY, signed(timestamp=T0 + 60))
    assert (result.outcome, result.attempt) == (ReceiveOutcome.PROCESSED, 2)
    assert len(handler.deliveries) == 1
    # The crashed worker's late release cannot reopen the finished delivery.
    assert store.release("standard-webhooks:id:msg_1", token=crashed.token) is False
    assert store.state("standard-webhooks:id:msg_1", now=clock()) is DeliveryState.DONE


def test_handler_that_outlives_its_lease_is_reported_in_the_detail() -> None:
    """A handler that finishes after its lease is processed; the detail says it overran."""
    clock = FakeClock()

    def slow(delivery: object) -> None:
        clock.advance(90)

    result = receiver_with(slow, clock=clock, lease_seconds=60).receive(BODY, signed())
    assert result.outcome is ReceiveOutcome.PROCESSED
    assert "after its lease ran out (30.000 s late)" in result.detail


def test_scheme_without_an_id_dedupes_on_the_body_hash() -> None:
    """Without a webhook id the key is SHA-256 of the body, so a re-signed retry is a duplicate."""
    handler = Recorder()
    clock = FakeClock()
    receiver = WebhookReceiver("stripe", secret=STRIPE_SECRET, handler=handler, clock=clock)

    def stripe_headers(body: bytes, timestamp: int) -> dict[str, str]:
        return dict(wh.sign("stripe", body=body, secret=STRIPE_SECRET, timestamp=timestamp))

    first = receiver.receive(BODY, stripe_headers(BODY, T0))
    clock.advance(120)
    retry = receiver.receive(BODY, stripe_headers(BODY, T0 + 120))
    other = receiver.receive(BODY + b" ", stripe_headers(BODY + b" ", T0 + 120))
    assert first.key == retry.key == "stripe:sha256:" + hashlib.sha256(BODY).hexdigest()
    assert (first.outcome, retry.outcome) == (ReceiveOutcome.PROCESSED, ReceiveOutcome.DUPLICATE)
    assert first.webhook_id is None
    assert other.outcome is ReceiveOutcome.PROCESSED
    assert len(handler.deliveries) == 2


def test_delivery_key_function_sets_the_deduplication_key() -> None:
    """delivery_key= keys deliveries on an id of the caller's choosing (here: in the body)."""
    handler = Recorder()
    receiver = receiver_with(
        handler, delivery_key=lambda body, verified: "evt:" + json.loads(body)["data"]["id"]
    )
    first = receiver.receive(BODY, signed(webhook_id="msg_1"))
    second = receiver.receive(BODY, signed(webhook_id="msg_2"))  # same event, new message
    assert (first.key, second.key) == ("evt:in_1", "evt:in_1")
    assert second.outcome is ReceiveOutcome.DUPLICATE
    assert len(handler.deliveries) == 1


def test_delivery_key_function_must_return_a_non_empty_str() -> None:
    """A delivery_key that returns no usable key raises TypeError and claims nothing."""
    store = InMemoryDeliveryStore()
    receiver = receiver_with(Recorder(), store=store, delivery_key=lambda body, verified: "")
    with pytest.raises(TypeError, match="non-empty str"):
        receiver.receive(BODY, signed())
    assert len(store) == 0


def test_invalid_secret_is_refused_at_construction() -> None:
    """An unusable secret raises InvalidSecretError when the receiver is built."""
    with pytest.raises(wh.InvalidSecretError):
        WebhookReceiver("standard-webhooks", secret=BAD_SECRET, handler=Recorder())


def test_invalid_secret_at_receive_time_is_the_servers_error_and_propagates() -> None:
    """InvalidSecretError during receive() propagates (a 500) instead of blaming the sender."""
    receiver = receiver_with(Recorder())
    receiver._secret = BAD_SECRET  # e.g. a secret list mutated after construction
    with pytest.raises(wh.InvalidSecretError):
        receiver.receive(BODY, signed())


def test_str_body_is_refused_with_type_error() -> None:
    """A str body (decoded, maybe re-serialised) is a programming error: TypeError."""
    with pytest.raises(TypeError):
        receiver_with(Recorder()).receive(BODY.decode(), signed())


def test_rotation_list_of_secrets_is_passed_to_verify() -> None:
    """A list of secrets verifies deliveries signed with any of them."""
    old = "whsec_" + "QUJD" * 8
    handler = Recorder()
    receiver = WebhookReceiver(
        "standard-webhooks", secret=[SECRET, old], handler=handler, clock=FakeClock()
    )
    result = receiver.receive(BODY, signed(secret=old))
    assert result.outcome is ReceiveOutcome.PROCESSED
    assert handler.deliveries[0].verified.secret_index == 1


def test_tolerance_is_passed_to_verify() -> None:
    """tolerance= widens or narrows the replay window verify applies."""
    clock = FakeClock(T0 + 1000)
    strict = receiver_with(Recorder(), clock=clock)
    lenient = receiver_with(Recorder(), clock=clock, tolerance=math.inf)
    assert strict.receive(BODY, signed()).outcome is ReceiveOutcome.REJECTED
    assert lenient.receive(BODY, signed()).outcome is ReceiveOutcome.PROCESSED


def test_purge_forgets_keys_after_the_retention_period() -> None:
    """purge() drops keys done longer than retention_seconds ago; newer ones stay."""
    handler = Recorder()
    clock = FakeClock()
    store = InMemoryDeliveryStore()
    receiver = receiver_with(
        handler, store=store, clock=clock, retention_seconds=86400, tolerance=math.inf
    )
    receiver.receive(BODY, signed(webhook_id="old"))
    clock.advance(86400)
    receiver.receive(BODY, signed(webhook_id="new"))
    assert receiver.purge() == 0  # "old" is exactly 1 day old: kept
    clock.advance(1)
    assert receiver.purge() == 1
    assert receiver.receive(BODY, signed(webhook_id="new")).outcome is ReceiveOutcome.DUPLICATE
    assert receiver.receive(BODY, signed(webhook_id="old")).outcome is ReceiveOutcome.PROCESSED


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt or task cancellation."""


def test_base_exception_in_the_handler_releases_the_claim_and_propagates() -> None:
    """An interrupt in the handler frees the key for the retry and is re-raised."""
    store = InMemoryDeliveryStore()

    def interrupted(delivery: object) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):
        receiver_with(interrupted, store=store).receive(BODY, signed())
    assert store.state("standard-webhooks:id:msg_1", now=T0) is DeliveryState.ABSENT


# --------------------------------------------------------------------------------------
# Async handlers
# --------------------------------------------------------------------------------------


def test_receive_async_awaits_a_coroutine_handler() -> None:
    """receive_async awaits an async handler and completes the key after it returns."""
    seen: list[str] = []

    async def handler(delivery: object) -> str:
        await asyncio.sleep(0)
        seen.append(delivery.key)
        return "done"

    receiver = receiver_with(handler)
    first = asyncio.run(receiver.receive_async(BODY, signed()))
    again = asyncio.run(receiver.receive_async(BODY, signed()))
    assert (first.outcome, first.response) == (ReceiveOutcome.PROCESSED, "done")
    assert again.outcome is ReceiveOutcome.DUPLICATE
    assert seen == ["standard-webhooks:id:msg_1"]


def test_receive_async_accepts_a_plain_handler_and_reports_rejections() -> None:
    """receive_async runs a sync handler too, and rejects forged deliveries the same way."""
    handler = Recorder()
    receiver = receiver_with(handler)
    forged = asyncio.run(receiver.receive_async(BODY, {}))
    genuine = asyncio.run(receiver.receive_async(BODY, signed()))
    assert (forged.status, genuine.status) == (400, 200)
    assert len(handler.deliveries) == 1


def test_receive_async_failed_handler_is_retried() -> None:
    """An async handler that raises answers 500 and the next delivery runs it again."""
    calls: list[int] = []

    async def flaky(delivery: object) -> None:
        calls.append(delivery.attempt)
        if len(calls) == 1:
            raise ValueError("first try fails")

    receiver = receiver_with(flaky)
    first = asyncio.run(receiver.receive_async(BODY, signed()))
    second = asyncio.run(receiver.receive_async(BODY, signed()))
    assert (first.status, second.status) == (500, 200)
    assert calls == [1, 2]


def test_cancelled_async_handler_releases_the_claim() -> None:
    """Cancelling receive_async mid-handler frees the key and re-raises CancelledError."""
    store = InMemoryDeliveryStore()

    async def main() -> None:
        started = asyncio.Event()

        async def hangs(delivery: object) -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(
            receiver_with(hangs, store=store).receive_async(BODY, signed())
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert store.state("standard-webhooks:id:msg_1", now=T0) is DeliveryState.ABSENT


def test_async_handler_in_sync_receive_raises_and_releases() -> None:
    """receive() with an async handler raises TypeError, closes the coroutine, frees the key."""
    store = InMemoryDeliveryStore()

    async def handler(delivery: object) -> None:
        return None

    with pytest.raises(TypeError, match="receive_async"):
        receiver_with(handler, store=store).receive(BODY, signed())
    assert store.state("standard-webhooks:id:msg_1", now=T0) is DeliveryState.ABSENT


def test_awaitable_without_close_in_sync_receive_raises() -> None:
    """An awaitable that is not a coroutine (no close()) is refused the same way."""

    class Pending:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield None

    with pytest.raises(TypeError, match="receive_async"):
        receiver_with(lambda delivery: Pending()).receive(BODY, signed())


# --------------------------------------------------------------------------------------
# Concurrency, with threads and with processes
# --------------------------------------------------------------------------------------


def test_threads_delivering_one_id_at_once_run_the_handler_once(store: object) -> None:
    """Eight threads released together with one id: one runs the handler, seven get 503."""
    n = 8
    barrier = threading.Barrier(n)
    returned: list[object] = []
    done = threading.Condition()
    calls: list[str] = []

    def handler(delivery: object) -> None:
        calls.append(delivery.key)
        with done:  # hold the claim until every other delivery has been answered
            assert done.wait_for(lambda: len(returned) >= n - 1, timeout=30)

    receiver = receiver_with(handler, store=store)
    headers = signed()

    def deliver() -> None:
        barrier.wait(timeout=30)
        result = receiver.receive(BODY, headers)
        with done:
            returned.append(result)
            done.notify_all()

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(calls) == 1
    assert Counter(r.outcome for r in returned) == {
        ReceiveOutcome.PROCESSED: 1,
        ReceiveOutcome.IN_PROGRESS: n - 1,
    }


def test_threads_racing_without_blocking_still_run_the_handler_once(store: object) -> None:
    """Threads racing on one id with a fast handler: one PROCESSED, the rest 503 or DUPLICATE."""
    n = 8
    barrier = threading.Barrier(n)
    calls: list[str] = []
    results: list[object] = []
    receiver = receiver_with(calls.append, store=store)
    headers = signed()

    def deliver() -> None:
        barrier.wait(timeout=30)
        results.append(receiver.receive(BODY, headers))

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(calls) == 1
    outcomes = Counter(r.outcome for r in results)
    assert outcomes[ReceiveOutcome.PROCESSED] == 1
    assert outcomes[ReceiveOutcome.IN_PROGRESS] + outcomes[ReceiveOutcome.DUPLICATE] == n - 1


_WORKER = """
import os, sqlite3, sys
from interlock.webhook_handler import SQLiteDeliveryStore, WebhookReceiver

database, secret, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
body = sys.stdin.readline().strip().encode()
headers = dict(h.split(":", 1) for h in sys.stdin.readline().split())


def handler(delivery):
    print("started", flush=True)
    sys.stdin.readline()  # hold the claim until the parent says "finish"
    with sqlite3.connect(database) as conn:
        conn.execute("INSERT INTO handled (pid) VALUES (?)", (os.getpid(),))
    conn.close()


receiver = WebhookReceiver(
    "standard-webhooks",
    secret=secret,
    handler=handler,
    store=SQLiteDeliveryStore(database),
    clock=lambda: now,
)
print("ready", flush=True)
sys.stdin.readline()  # the barrier: every worker waits here for "go"
print(receiver.receive(body, headers).outcome.name, flush=True)
"""


def test_processes_delivering_one_id_at_once_run_the_handler_once(tmp_path: Path) -> None:
    """Four worker processes sharing one SQLite file, released together: the handler runs once."""
    database = tmp_path / "deliveries.db"
    SQLiteDeliveryStore(database).close()
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE handled (pid INTEGER)")
    conn.close()
    headers = " ".join(f"{name}:{value}" for name, value in signed().items())
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(database), SECRET, str(T0)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    try:
        for worker in workers:
            worker.stdin.write(f"{BODY.decode()}\n{headers}\n")
            worker.stdin.flush()
        assert [worker.stdout.readline().strip() for worker in workers] == ["ready"] * 4
        for worker in workers:  # release them together
            worker.stdin.write("go\n")
            worker.stdin.flush()
        first_lines = [worker.stdout.readline().strip() for worker in workers]
        # One worker is inside the handler, holding the claim; the three others answered.
        assert sorted(first_lines) == ["IN_PROGRESS"] * 3 + ["started"]
        outputs = [worker.communicate("finish\n", timeout=60)[0].split() for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert sorted(outputs) == [[], [], [], ["PROCESSED"]]
    assert all(worker.returncode == 0 for worker in workers)
    with sqlite3.connect(database) as conn:
        handled = conn.execute("SELECT COUNT(*) FROM handled").fetchone()[0]
    conn.close()
    assert handled == 1
    with SQLiteDeliveryStore(database) as shared:
        again = receiver_with(Recorder(), store=shared).receive(BODY, signed())
    assert again.outcome is ReceiveOutcome.DUPLICATE


def _vector_root() -> Path:
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "shared" / "vectors", here.parents[1] / "shared" / "vectors"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


_PER_DELIVERY_FIELDS = {"params", "url", "method", "notification_item", "body_spec", "body_json"}


def _simple_vectors() -> list[object]:
    """Shared webhook vectors that are one body, its headers and a secret."""
    cases = []
    for path in sorted((_vector_root() / "webhooks").glob("*.json")):
        if path.name == "index.json":
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        scheme = document["scheme"].replace("_", "-")
        for vector in document["vectors"]:
            if not {"headers", "secret"} <= vector.keys() or _PER_DELIVERY_FIELDS & vector.keys():
                continue
            if "body_b64" in vector:
                body = base64.b64decode(vector["body_b64"])
            elif "body_utf8" in vector:
                body = vector["body_utf8"].encode()
            else:
                continue
            cases.append(pytest.param(scheme, vector, body, id=vector["name"]))
    return cases


@pytest.mark.parametrize(("scheme", "vector", "body"), _simple_vectors())
def test_shared_vectors_pass_through_the_receiver_as_verify_decides(
    scheme: str, vector: dict[str, object], body: bytes
) -> None:
    """Each shared vector: the receiver processes what verify accepts (once), rejects the rest."""
    now = float(vector.get("timestamp") or 0)
    tolerance = math.inf if wh.SCHEMES[scheme] is not None else None
    try:
        wh.verify(
            scheme,
            body=body,
            headers=vector["headers"],
            secret=vector["secret"],
            now=now,
            tolerance=tolerance,
        )
    except wh.WebhookVerificationError:
        genuine = False
    else:
        genuine = True
    handler = Recorder()
    receiver = WebhookReceiver(
        scheme, secret=vector["secret"], handler=handler, tolerance=tolerance, clock=lambda: now
    )
    first = receiver.receive(body, vector["headers"])
    again = receiver.receive(body, vector["headers"])
    if genuine:
        assert (first.outcome, again.outcome) == (
            ReceiveOutcome.PROCESSED,
            ReceiveOutcome.DUPLICATE,
        )
        assert len(handler.deliveries) == 1
    else:
        assert (first.outcome, again.outcome) == (ReceiveOutcome.REJECTED,) * 2
        assert handler.deliveries == []


def test_shared_vectors_are_found() -> None:
    """The shared vector folder is present, so the vector test above is not vacuous."""
    assert len(_simple_vectors()) >= 15


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"lease_seconds": 0}, ValueError, "lease_seconds"),
        ({"lease_seconds": -1.0}, ValueError, "lease_seconds"),
        ({"lease_seconds": math.nan}, ValueError, "lease_seconds"),
        ({"lease_seconds": math.inf}, ValueError, "lease_seconds"),
        ({"lease_seconds": True}, TypeError, "lease_seconds"),
        ({"lease_seconds": "60"}, TypeError, "lease_seconds"),
        ({"retention_seconds": 0}, ValueError, "retention_seconds"),
        ({"tolerance": -5}, ValueError, "tolerance"),
        ({"tolerance": "300"}, TypeError, "tolerance"),
        ({"scheme": "standard-webhook"}, ValueError, "scheme"),
        ({"scheme": "github", "tolerance": 60}, ValueError, "tolerance"),
        ({"signature_header": "X-Sig"}, TypeError, "signature_header"),
        ({"handler": "not callable"}, TypeError, "handler"),
        ({"clock": 1700000000}, TypeError, "clock"),
        ({"delivery_key": "webhook-id"}, TypeError, "delivery_key"),
        ({"store": object()}, TypeError, "not a DeliveryStore"),
        ({"now": 5}, TypeError, "now"),
        ({"url": "https://example.com"}, TypeError, "url"),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    options: dict[str, object], error: type[Exception], pattern: str
) -> None:
    """Each bad argument raises TypeError or ValueError naming it, at construction."""
    arguments: dict[str, object] = {
        "scheme": "standard-webhooks",
        "secret": SECRET,
        "handler": Recorder(),
        **options,
    }
    with pytest.raises(error, match=pattern):
        WebhookReceiver(arguments.pop("scheme"), **arguments)


def test_default_store_is_in_memory_and_repr_names_it() -> None:
    """Without store= the receiver keeps keys in a fresh InMemoryDeliveryStore."""
    receiver = WebhookReceiver("standard-webhooks", secret=SECRET, handler=Recorder())
    assert isinstance(receiver.store, InMemoryDeliveryStore)
    assert (
        repr(receiver)
        == "WebhookReceiver('standard-webhooks', store=InMemoryDeliveryStore(keys=0))"
    )


def test_outcomes_map_to_the_documented_status_codes() -> None:
    """The status table: 200 processed/duplicate, 503 in progress, 400 rejected, 500 failed."""
    assert {o.name: o.status for o in ReceiveOutcome} == {
        "PROCESSED": 200,
        "DUPLICATE": 200,
        "IN_PROGRESS": 503,
        "REJECTED": 400,
        "HANDLER_FAILED": 500,
    }
    assert all(o.phrase for o in ReceiveOutcome)


def test_result_values_are_immutable_and_compare_by_their_fields() -> None:
    """ClaimResult, WebhookDelivery and ReceiveResult refuse assignment and compare by fields."""
    claim = wh.ClaimResult(True, DeliveryState.ABSENT, "t1", 5.0, 1)
    twin = wh.ClaimResult(
        claimed=True, found=DeliveryState.ABSENT, token=claim.token, expires_at=5.0, attempts=1
    )
    assert claim == twin
    assert hash(claim) == hash(twin)
    assert claim != wh.ClaimResult(True, DeliveryState.ABSENT, "t2", 5.0, 1)
    assert claim != ("t1",)
    assert repr(claim) == (
        "ClaimResult(claimed=True, found=<DeliveryState.ABSENT: 'absent'>, token='t1',"
        " expires_at=5.0, attempts=1)"
    )
    with pytest.raises(AttributeError, match="immutable"):
        claim.claimed = False  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del claim.token  # type: ignore[misc]
    assert not hasattr(claim, "__dict__")
    match claim:
        case wh.ClaimResult(True, found, token):
            assert (found, token) == (DeliveryState.ABSENT, "t1")
        case _:  # pragma: no cover - the case above matches
            pytest.fail("positional match failed")
    result = receiver_with(Recorder()).receive(BODY, signed())
    assert result.outcome is ReceiveOutcome.PROCESSED
    with pytest.raises(AttributeError, match="immutable"):
        result.status = 500  # type: ignore[misc]
    verified = wh.VerifiedWebhook("svix", 1, "msg_1", 0, None)
    delivery = wh.WebhookDelivery(b"{}", {"a": "b"}, verified, "k", 1)
    assert delivery == wh.WebhookDelivery(b"{}", {"a": "b"}, verified, "k", 1)
    assert repr(delivery).startswith("WebhookDelivery(body=b'{}', headers={'a': 'b'}, ")


def test_a_user_store_is_used_through_the_protocol() -> None:
    """A store written by the user works by duck typing; a missing lease end still gets a wait."""

    class AlwaysBusy:
        def claim(self, key: str, *, now: float, lease_seconds: float) -> object:
            return wh.ClaimResult(claimed=False, found=DeliveryState.IN_PROGRESS)

        def complete(self, key: str, *, now: float) -> None:
            raise AssertionError

        def release(self, key: str, *, token: str | None = None) -> bool:
            raise AssertionError

        def state(self, key: str, *, now: float) -> object:
            return DeliveryState.IN_PROGRESS

        def purge(self, *, before: float) -> int:
            return 0

    result = receiver_with(Recorder(), store=AlwaysBusy(), lease_seconds=30).receive(BODY, signed())
    assert (result.outcome, result.retry_after) == (ReceiveOutcome.IN_PROGRESS, 30)


# --------------------------------------------------------------------------------------
# The DeliveryStore protocol: the same suite for every implementation
# --------------------------------------------------------------------------------------


def test_store_claims_an_absent_key_once(store: object) -> None:
    """The first claim of a key wins with a token; a second is refused as IN_PROGRESS."""
    first = store.claim("k", now=100.0, lease_seconds=10)
    second = store.claim("k", now=105.0, lease_seconds=10)
    assert (first.claimed, first.found, first.expires_at, first.attempts) == (
        True,
        DeliveryState.ABSENT,
        110.0,
        1,
    )
    assert first.token
    assert (second.claimed, second.found, second.token, second.expires_at) == (
        False,
        DeliveryState.IN_PROGRESS,
        None,
        110.0,
    )
    assert store.state("k", now=109.9) is DeliveryState.IN_PROGRESS
    assert store.state("k", now=110.0) is DeliveryState.EXPIRED
    assert store.state("other", now=100.0) is DeliveryState.ABSENT


def test_store_retakes_an_expired_claim_with_a_new_token(store: object) -> None:
    """At the lease's end the key is EXPIRED and the next claim takes it over."""
    first = store.claim("k", now=100.0, lease_seconds=10)
    second = store.claim("k", now=110.0, lease_seconds=10)
    assert (second.claimed, second.found, second.attempts) == (True, DeliveryState.EXPIRED, 2)
    assert second.token != first.token
    assert store.release("k", token=first.token) is False  # the stale worker cannot free it
    assert store.state("k", now=111.0) is DeliveryState.IN_PROGRESS
    assert store.release("k", token=second.token) is True
    assert store.state("k", now=111.0) is DeliveryState.ABSENT


def test_store_complete_is_final(store: object) -> None:
    """A DONE key refuses claims, survives release, and complete is idempotent."""
    claim = store.claim("k", now=100.0, lease_seconds=10)
    store.complete("k", now=101.0)
    store.complete("k", now=150.0)  # a second completion keeps the first time
    assert store.release("k", token=claim.token) is False
    assert store.release("k") is False
    refused = store.claim("k", now=1e6, lease_seconds=10)
    assert (refused.claimed, refused.found, refused.attempts) == (False, DeliveryState.DONE, 1)
    assert store.state("k", now=1e6) is DeliveryState.DONE
    assert store.purge(before=101.0) == 0
    assert store.purge(before=101.5) == 1


def test_store_complete_of_an_unclaimed_key_marks_it_done(store: object) -> None:
    """complete() of a key nobody holds (released or purged meanwhile) still records it done."""
    store.complete("k", now=100.0)
    assert store.state("k", now=100.0) is DeliveryState.DONE


def test_store_release_without_token_drops_any_claim(store: object) -> None:
    """release(key) without a token drops whatever claim is live; absent keys give False."""
    store.claim("k", now=100.0, lease_seconds=10)
    assert store.release("k") is True
    assert store.release("k") is False
    assert store.release("never-claimed") is False
    assert store.claim("k", now=100.0, lease_seconds=10).attempts == 2  # attempts are kept


def test_store_purge_drops_old_done_keys_and_long_expired_claims(store: object) -> None:
    """purge(before=t) forgets keys done before t and claims whose lease ended before t."""
    store.claim("live", now=100.0, lease_seconds=50)
    store.claim("expired", now=100.0, lease_seconds=5)
    store.complete("done-early", now=100.0)
    store.complete("done-late", now=140.0)
    assert store.purge(before=120.0) == 2
    states = {k: store.state(k, now=120.0) for k in ("live", "expired", "done-early", "done-late")}
    assert states == {
        "live": DeliveryState.IN_PROGRESS,
        "expired": DeliveryState.ABSENT,
        "done-early": DeliveryState.ABSENT,
        "done-late": DeliveryState.DONE,
    }


def test_store_validates_the_lease(store: object) -> None:
    """claim() refuses a lease that is not a positive finite number of seconds."""
    with pytest.raises(ValueError, match="lease_seconds"):
        store.claim("k", now=100.0, lease_seconds=0)
    with pytest.raises(TypeError, match="lease_seconds"):
        store.claim("k", now=100.0, lease_seconds=None)


# --------------------------------------------------------------------------------------
# SQLite specifics
# --------------------------------------------------------------------------------------


def test_sqlite_store_puts_the_file_in_wal_mode_and_migrates_idempotently(
    tmp_path: Path,
) -> None:
    """A path store runs migrate() (version 1, idempotent) and uses WAL journaling."""
    path = tmp_path / "d.db"
    with SQLiteDeliveryStore(path) as store:
        assert store.migrate() == 1
        assert store.migrate() == 1
        store.claim("k", now=1.0, lease_seconds=1)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = conn.execute("SELECT version FROM interlock_webhook_delivery_schema").fetchall()
    conn.close()
    assert versions == [(1,)]


def test_sqlite_store_without_migrate_uses_a_schema_migrated_elsewhere(tmp_path: Path) -> None:
    """migrate=False skips the schema step; a store on a migrated file shares its keys."""
    path = tmp_path / "d.db"
    with SQLiteDeliveryStore(path) as deploy_step:
        deploy_step.complete("k", now=1.0)
    with SQLiteDeliveryStore(str(path), migrate=False) as store:
        assert store.state("k", now=2.0) is DeliveryState.DONE
        assert repr(store) == f"SQLiteDeliveryStore({str(path)!r})"


def test_sqlite_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    """A database migrated by newer code is refused instead of being misread."""
    path = tmp_path / "d.db"
    SQLiteDeliveryStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO interlock_webhook_delivery_schema VALUES (99)")
    conn.close()
    with pytest.raises(ValueError, match="version 99"):
        SQLiteDeliveryStore(path)


def test_sqlite_store_leaves_a_passed_connection_open() -> None:
    """close() closes only connections the store opened, never the caller's."""
    conn = sqlite3.connect(":memory:")
    store = SQLiteDeliveryStore(conn)
    store.complete("k", now=1.0)
    store.close()
    assert conn.execute("SELECT COUNT(*) FROM interlock_webhook_deliveries").fetchone() == (1,)
    assert repr(store) == "SQLiteDeliveryStore('<connection>')"
    conn.close()


def test_sqlite_store_reopens_after_close(tmp_path: Path) -> None:
    """A call after close() opens a fresh connection; the data is still there."""
    store = SQLiteDeliveryStore(tmp_path / "d.db")
    store.complete("k", now=1.0)
    store.close()
    assert store.state("k", now=2.0) is DeliveryState.DONE
    store.close()


def test_sqlite_store_rolls_back_a_failed_transaction(tmp_path: Path) -> None:
    """A claim that fails inside its transaction leaves no partial write and no open lock."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    store = SQLiteDeliveryStore(conn)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON interlock_webhook_deliveries"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.claim("k", now=1.0, lease_seconds=5)
    assert not conn.in_transaction
    assert store.state("k", now=1.0) is DeliveryState.ABSENT
    conn.close()


@pytest.mark.parametrize(
    ("database", "error"),
    [
        (":memory:", ValueError),
        ("", ValueError),
        ("file::memory:?cache=shared", ValueError),
        (42, TypeError),
        (b"deliveries.db", TypeError),
    ],
)
def test_sqlite_store_refuses_databases_it_cannot_share(database: object, error: type) -> None:
    """An in-memory path or a non-path, non-connection argument is refused at construction."""
    with pytest.raises(error, match="database"):
        SQLiteDeliveryStore(database)


def test_sqlite_store_refuses_a_bytes_pathlike() -> None:
    """A PathLike that yields bytes is refused with TypeError."""

    class BytesPath:
        def __fspath__(self) -> bytes:
            return b"deliveries.db"

    with pytest.raises(TypeError, match="str path"):
        SQLiteDeliveryStore(BytesPath())


def test_sqlite_store_validates_timeout() -> None:
    """timeout must be a non-negative number of seconds."""
    with pytest.raises(ValueError, match="timeout"):
        SQLiteDeliveryStore(sqlite3.connect(":memory:"), timeout=-1)


def test_sqlite_store_accepts_a_file_uri(tmp_path: Path) -> None:
    """A file: URI path is opened as a URI."""
    uri = (tmp_path / "d.db").as_uri()
    with SQLiteDeliveryStore(uri) as store:
        store.complete("k", now=1.0)
    assert (tmp_path / "d.db").exists()


# --------------------------------------------------------------------------------------
# The stores against a model, under hypothesis
# --------------------------------------------------------------------------------------


class StoreMachine(RuleBasedStateMachine):
    """Drives a store with claims, completions, releases, purges and time; checks a model."""

    claims = Bundle("claims")

    def __init__(self, make_store: object) -> None:
        super().__init__()
        self.conn = sqlite3.connect(":memory:")
        self.store = make_store(self.conn)
        self.now = 1000.0
        # key -> [state "in_progress"/"released"/"done", expires_at, completed_at, token, attempts]
        self.model: dict[str, list[object]] = {}

    def expected(self, key: str) -> object:
        record = self.model.get(key)
        if record is None or record[0] == "released":
            return DeliveryState.ABSENT
        if record[0] == "done":
            return DeliveryState.DONE
        return DeliveryState.EXPIRED if record[1] <= self.now else DeliveryState.IN_PROGRESS

    @rule(target=claims, key=st.sampled_from("abc"), lease=st.sampled_from([0.5, 2.0, 10.0]))
    def claim(self, key: str, lease: float) -> tuple[str, str | None]:
        found = self.expected(key)
        result = self.store.claim(key, now=self.now, lease_seconds=lease)
        assert result.found is found
        attempts = self.model[key][4] if key in self.model else 0
        if found in (DeliveryState.ABSENT, DeliveryState.EXPIRED):
            assert result.claimed
            assert result.attempts == attempts + 1
            assert result.expires_at == self.now + lease
            self.model[key] = ["in_progress", self.now + lease, None, result.token, attempts + 1]
        else:
            assert not result.claimed
            assert result.token is None
            assert result.attempts == attempts
        return key, result.token

    @rule(key=st.sampled_from("abc"))
    def complete(self, key: str) -> None:
        self.store.complete(key, now=self.now)
        record = self.model.get(key)
        if record is None:
            self.model[key] = ["done", None, self.now, None, 0]
        elif record[0] != "done":
            self.model[key] = ["done", None, self.now, None, record[4]]

    @rule(claim=consumes(claims))
    def release_own_claim(self, claim: tuple[str, str | None]) -> None:
        key, token = claim
        token = token or "a-token-never-issued"  # a refused claim: try a wrong token
        record = self.model.get(key)
        expected = record is not None and record[0] == "in_progress" and record[3] == token
        assert self.store.release(key, token=token) is expected
        if expected:
            self.model[key] = ["released", record[1], None, None, record[4]]

    @rule(key=st.sampled_from("abc"))
    def release_any_claim(self, key: str) -> None:
        record = self.model.get(key)
        expected = record is not None and record[0] == "in_progress"
        assert self.store.release(key) is expected
        if expected:
            self.model[key] = ["released", record[1], None, None, record[4]]

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 20.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule(age=st.sampled_from([0.0, 1.0, 5.0, 50.0]))
    def purge(self, age: float) -> None:
        before = self.now - age
        stale = [
            key
            for key, (state, expires_at, completed_at, _, _) in self.model.items()
            if (state == "done" and completed_at < before)
            or (state != "done" and expires_at < before)
        ]
        assert self.store.purge(before=before) == len(stale)
        for key in stale:
            del self.model[key]

    @invariant()
    def states_match(self) -> None:
        for key in "abc":
            assert self.store.state(key, now=self.now) is self.expected(key)

    def teardown(self) -> None:
        self.conn.close()


MACHINE_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_in_memory_store_matches_the_model() -> None:
    """Under random operations and time steps the in-memory store behaves like the model."""
    run_state_machine_as_test(
        lambda: StoreMachine(lambda conn: InMemoryDeliveryStore()), settings=MACHINE_SETTINGS
    )


def test_sqlite_store_matches_the_model() -> None:
    """Under random operations and time steps the SQLite store behaves like the model."""
    run_state_machine_as_test(lambda: StoreMachine(SQLiteDeliveryStore), settings=MACHINE_SETTINGS)
