# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The ``python -m interlock demo`` command: an order-to-cash integration, end to end.

A shop takes orders from its storefront and fulfils them through an ERP, a warehouse, a
payment provider and a carrier, then keeps its CRM in step with the ERP. Each step uses
the pattern that stops one way this goes wrong:

1. The storefront's signed webhooks are verified (``webhook_handler``) and deduplicated
   (the ``idempotency`` inbox): a forged one is refused, a redelivered one changes nothing.
2. Each order and its outbox message are written in one transaction (``outbox``); the
   relay publishes them to an ERP that fails now and then, through ``retry`` and a
   ``circuit_breaker`` that opens during the ERP's outage and closes after it.
3. A ``saga`` reserves stock, charges the card and books the shipment; a declined card
   makes it release the stock.
4. The ERP's Debezium change events are read (``cdc_event``) and planned into CRM updates
   (``sync_boundary``); a field both sides changed goes to review.
5. The ``ledger`` records every order's stages and attempts; its report ends the demo,
   followed by what each pattern prevented.

Everything runs in one process on a simulated clock (nothing sleeps, nothing touches the
network); the ERP's failures come from ``random.Random(seed)``, so a seed always prints
the same report. The other systems are stand-ins from ``interlock._demo_world``: this
module composes the patterns and prints what they did.
"""

from __future__ import annotations

import json
import random
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from interlock import _demo_world as world
from interlock import cdc_event, circuit_breaker, idempotency, ledger, outbox, retry, saga
from interlock.sync_boundary import FieldMapping, RecordAuthority, SharedPolicy, SyncBoundary
from interlock.webhook_handler import WebhookVerificationError, verify

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

__all__ = ["DEFAULT_SEED", "add_parser", "run", "run_demo"]

DEFAULT_SEED = 7
PROCESS = "order-to-cash"
RUN_KEY = "orders-2026-11-22"
STEPS = ("erp", "stock", "payment", "shipment")  # the ledger stages of an order, in order
RELAY_POLL_SECONDS = 5.0


@dataclass
class _Facts:
    """What happened, counted along the way for the final summary."""

    orders: int = 0
    duplicates: int = 0
    refused: int = 0
    deliveries: int = 0
    erp_calls: int = 0
    retried_503s: int = 0
    trips: int = 0
    opened_at: str = ""
    turned_away: int = 0
    closed_at: str = ""
    shipped: list[int] = field(default_factory=list)
    compensated: list[int] = field(default_factory=list)
    events: int = 0
    event_duplicates: int = 0
    to_crm: int = 0
    to_erp: int = 0
    echoes: int = 0
    reviews: list[str] = field(default_factory=list)


class ERPNotCalled(Exception):  # noqa: N818 - named for the ledger's failure reasons
    """The circuit breaker turned the call away: the ERP was not called."""


# --- the shop: its database, its ledger, its clock --------------------------------------


class _Tracker:
    """Records each order's stages in the ledger: every try is one attempt."""

    def __init__(self, book: ledger.Ledger) -> None:
        self.book = book
        self.items: dict[int, int] = {}

    def register(self, order: dict[str, Any]) -> None:
        """Start following ``order``: an item whose first stage is ``erp``."""
        payload = {"order_id": order["id"], "total": order["total_price"]}
        item, _ = self.book.start_or_resume(PROCESS, payload, run_key=RUN_KEY)
        self.items[order["id"]] = item.id

    @contextmanager
    def attempt(self, order_id: int, step: str) -> Iterator[None]:
        """Claim the order's ``step``, run the block, record its outcome (and re-raise)."""
        claim = self.book.claim(PROCESS, worker=f"{step}-worker", item_id=self.items[order_id])
        if claim is None or claim.stage.step != step:
            raise RuntimeError(f"order {order_id}: the ledger has no due {step!r} stage")
        try:
            yield
        except Exception as exc:
            self.book.fail(claim, exc)  # a system error is retried, a business one is not
            raise
        self.book.complete(claim)


def _order_to_cash() -> ledger.ProcessDefinition:
    once = ledger.RetryPolicy(max_attempts=1)
    # The relay decides when to deliver again; the ledger holds it to the same budget.
    like_the_relay = ledger.RetryPolicy(max_attempts=10, backoff=ledger.Backoff.FIXED, base_delay=0)
    steps = [ledger.Step(name, retry=once) for name in STEPS[1:]]
    return ledger.ProcessDefinition(
        PROCESS,
        (ledger.Step("erp", retry=like_the_relay), *steps),
        dedup=ledger.Dedup.fields("order_id"),
    )


def _business_errors(exc: BaseException) -> ledger.AttemptOutcome | None:
    """A declined card is a business outcome; anything else is a system error."""
    if isinstance(exc, world.PaymentDeclined):
        return ledger.AttemptOutcome.BUSINESS_ERROR
    return None


class _Shop:
    """The shop's side of the integration: its tables, its ledger, and the world around."""

    def __init__(self, db: world.DemoDatabase, seed: int) -> None:
        self.db = db
        self.clock = world.SimClock()
        self.facts = _Facts()
        self.conn = db.connect()  # the shop's own transactions
        for migrate in (outbox.migrate, idempotency.migrate, saga.SQLSagaLog.migrate):
            migrate(self.conn)
        self.conn.execute(
            "CREATE TABLE shop_order (order_id INTEGER PRIMARY KEY, customer_id TEXT NOT NULL,"
            " total TEXT NOT NULL, status TEXT NOT NULL)"
        )
        self.conn.execute(
            "CREATE TABLE crm_sync_baseline (record_id TEXT PRIMARY KEY, baseline TEXT NOT NULL)"
        )
        self.conn.commit()
        ledger_conn = db.connect(autocommit=True)
        ledger.migrate(ledger_conn)
        self.book = ledger.Ledger(
            ledger.SQLLedgerStore(ledger_conn), clock=self.clock.utc, classify=_business_errors
        )
        self.book.define(_order_to_cash())
        self.book.start_run(PROCESS, RUN_KEY, params={"seed": seed})
        self.tracker = _Tracker(self.book)
        self.erp = world.ERP(self.clock, random.Random(seed))  # noqa: S311 - a simulation
        self.jitter = random.Random(seed + 1)  # noqa: S311 - the retry's jitter, not a secret

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction on the shop's connection: committed at the end, or rolled back."""
        self.db.begin(self.conn)
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()


# --- 1. webhooks: verify, deduplicate, store the order and its message -----------------


def _receive_webhooks(shop: _Shop, out: world.Report) -> None:
    out.section("1. The storefront sends its orders as signed webhooks")
    out.say(
        "Each request is verified from its raw bytes against the shared secret "
        "(webhook_handler.verify, Shopify's HMAC-SHA256 scheme). Its webhook id goes into "
        "the idempotency inbox in the same transaction that stores the order and the "
        "order's outbox message, so a redelivery finds the id and changes nothing.",
    )
    rows = []
    for delivery in world.storefront_deliveries():
        shop.clock.sleep(1.0)
        status, what = _webhook_endpoint(shop, delivery.body, delivery.headers)
        order_id = json.loads(delivery.body)["id"]
        rows.append((delivery.number, shop.clock.hms(), order_id, delivery.note, status, what))
    out.table(("#", "time", "order", "request", "HTTP", "what the shop did"), rows)
    f = shop.facts
    out.say(
        f"{f.orders} orders stored, each with its outbox message in the same transaction; "
        f"{f.duplicates} redelivery answered 200 without a second order; {f.refused} forged "
        "request refused with 400 before anything was written.",
    )


def _webhook_endpoint(shop: _Shop, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """Verify; then the inbox row, the order and its outbox message in one transaction."""
    try:
        verified = verify("shopify", body=body, headers=headers, secret=world.SHOP_SECRET)
    except WebhookVerificationError as exc:
        shop.facts.refused += 1
        return 400, f"refused: {type(exc).__name__}"
    order = json.loads(body)
    with shop.transaction() as conn:
        entry = idempotency.inbox(
            conn, scope="storefront-webhooks", key=verified.webhook_id, now=shop.clock.time()
        )
        if entry.is_duplicate:
            shop.facts.duplicates += 1
            return 200, f"duplicate ({verified.webhook_id}): nothing written"
        conn.execute(
            shop.db.sql("INSERT INTO shop_order VALUES (?, ?, ?, 'received')"),
            (order["id"], order["customer"]["id"], order["total_price"]),
        )
        outbox.add(
            conn,
            topic="erp.orders",
            key=str(order["id"]),
            payload=order,
            message_id=f"order-{order['id']}-created",
            event_type="order.created",
        )
    shop.facts.orders += 1
    shop.tracker.register(order)
    return 200, "order stored, outbox message queued"


# --- 2. the outbox relay, through retry and a circuit breaker --------------------------


def _relay_backoff(attempt: int) -> float:
    """The relay's wait before delivering a message again: 5, 10, 20, 40, 60 s."""
    return min(60.0, 5.0 * 2.0 ** (attempt - 1))


class _ERPLink:
    """How the relay reaches the ERP: through retry, each attempt through the breaker."""

    def __init__(self, shop: _Shop) -> None:
        self.shop = shop
        self.rows: list[tuple[object, ...]] = []
        self._states: list[str] = []
        self._retries = 0
        self.breaker = circuit_breaker.CircuitBreaker(
            "erp",
            failure_threshold=3,
            recovery_timeout=20.0,
            recovery_multiplier=2.0,  # a failed probe keeps it open twice as long
            expected_exceptions=(world.ERPUnavailable,),
            clock=shop.clock.time,
            listeners=[self._on_breaker_event],
        )
        self.policy = retry.Retrying(
            on=world.ERPUnavailable,  # not CircuitOpenError: then the relay waits instead
            attempts=3,
            timeout=10.0,
            backoff=retry.Backoff(initial_seconds=0.2, max_seconds=2.0),
            on_retry=self._on_retry,
            clock=shop.clock.time,
            sleep=shop.clock.sleep,
            rng=shop.jitter,
        )

    def deliver(self, message: outbox.OutboxMessage) -> str:
        """One delivery: a ledger attempt, around retry, around the breaker, around the call."""
        with self.shop.tracker.attempt(int(message.key), "erp"):
            try:
                return self.policy.call(
                    self.breaker.execute,
                    self.shop.erp.create_order,
                    message.message_id,
                    message.payload,
                )
            except circuit_breaker.CircuitOpenError as exc:
                raise ERPNotCalled("the circuit breaker is open") from exc

    def publish(self, message: outbox.OutboxMessage) -> None:
        """The relay's ``publish``: :meth:`deliver`, noting what happened for the report.

        Raising leaves the message in the outbox for a later delivery.
        """
        shop = self.shop
        started, first_call = shop.clock.hms(), len(shop.erp.calls)
        self._states, self._retries = [_state(self.breaker.state)], 0
        was_down = shop.erp.down_from is not None
        outcome = f"failed; relay retries in {_relay_backoff(message.attempt):g} s"
        try:
            outcome = f"accepted as {self.deliver(message)}"
            shop.facts.retried_503s += self._retries
        finally:
            calls = shop.erp.calls[first_call:]
            shop.facts.deliveries += 1
            shop.facts.erp_calls += len(calls)
            if not was_down and shop.erp.down_from is not None:
                outcome += "; then the ERP goes down"
            answers = _answers([str(call) for call in calls])
            breaker = " > ".join(self._states)
            self.rows.append(
                (started, int(message.key), message.attempt, answers, breaker, outcome)
            )

    def _on_breaker_event(self, event: circuit_breaker.CircuitBreakerEvent) -> None:
        facts = self.shop.facts
        if event.kind == "rejected":
            facts.turned_away += 1
        elif event.kind == "state_change":
            self._states.append(_state(event.state))
            if event.state is circuit_breaker.CircuitState.OPEN:
                facts.trips += 1
                facts.opened_at = facts.opened_at or self.shop.clock.hms()
            elif event.state is circuit_breaker.CircuitState.CLOSED:
                facts.closed_at = self.shop.clock.hms()

    def _on_retry(self, _failed: retry.AttemptRecord, _wait: float) -> None:
        self._retries += 1


def _state(state: circuit_breaker.CircuitState) -> str:
    return state.value.replace("_", "-")


def _answers(answers: list[str]) -> str:
    """``["503 busy", "503 busy", "200"]`` as ``"503 busy x2, 200"``."""
    runs: list[list[Any]] = []
    for answer in answers:
        if runs and runs[-1][0] == answer:
            runs[-1][1] += 1
        else:
            runs.append([answer, 1])
    return ", ".join(a if n == 1 else f"{a} x{n}" for a, n in runs) or "not called"


def _publish_orders(shop: _Shop, out: world.Report) -> None:
    out.section("2. The outbox relay publishes the orders to the ERP")
    out.say(
        "A relay reads the committed outbox messages and calls the ERP's order API for each. "
        "The ERP answers 503 now and then, and after its second order it goes down for "
        "maintenance for 40 s. Each delivery calls it through a retry policy (3 attempts, "
        "jittered backoff), and each attempt goes through a circuit breaker (open after 3 "
        "failures in a row, a probe after 20 s). A delivery that still fails stays in the "
        "outbox, and the relay delivers it again later (after 5, 10, 20 s...).",
    )
    link = _ERPLink(shop)
    relay = outbox.OutboxRelay(
        shop.db.connect,
        link.publish,
        max_attempts=10,
        backoff=_relay_backoff,
        clock=shop.clock.time,
        monotonic=shop.clock.time,
    )
    shop.clock.sleep(RELAY_POLL_SECONDS)
    for _ in range(100):  # the relay's poll loop, until the outbox is drained
        relay.run_once()
        if outbox.stats(shop.conn, now=shop.clock.time()).pending == 0:
            break
        shop.clock.sleep(RELAY_POLL_SECONDS)
    else:
        raise RuntimeError("the outbox did not drain")
    shop.conn.commit()  # ends the read transaction of stats() on PostgreSQL
    relay.close()
    out.table(
        ("time", "order", "try", "ERP answered", "breaker", "outcome"), link.rows, wrap={5: 30}
    )
    f = shop.facts
    out.say(
        f"All {len(shop.erp.orders)} orders reached the ERP, each once, in {f.deliveries} "
        f"deliveries and {f.erp_calls} ERP calls. The retry policy absorbed {f.retried_503s} "
        f"transient 503(s). The breaker opened at {f.opened_at}, {_reopened(f)}turned "
        f"{f.turned_away} call(s) away without touching the ERP while it was down, and closed "
        f"at {f.closed_at} after a successful probe.",
    )


def _reopened(facts: _Facts) -> str:
    probes = facts.trips - 1
    return f"re-opened after {probes} failed probe(s), " if probes else ""


# --- 3. the fulfilment saga ------------------------------------------------------------


@dataclass
class _Fulfilment:
    """The three systems an order passes through after the ERP."""

    warehouse: world.Warehouse
    payments: world.PaymentProvider
    carrier: world.Carrier


def _fulfilment_saga(
    shop: _Shop, log: saga.SQLSagaLog, order: dict[str, Any], systems: _Fulfilment
) -> saga.SagaOrchestrator:
    """The saga of one order; each action is also an attempt of its ledger stage."""
    order_id, line = order["id"], order["line_items"][0]
    ledger_stage = shop.tracker.attempt

    def reserve(ctx: saga.StepContext) -> str:
        with ledger_stage(order_id, "stock"):
            return systems.warehouse.reserve(ctx.idempotency_key, line["sku"], line["quantity"])

    def release(ctx: saga.StepContext) -> None:
        systems.warehouse.release(ctx.results["stock"])

    def charge(ctx: saga.StepContext) -> str:
        with ledger_stage(order_id, "payment"):
            card = order["payment"]["card_token"]
            return systems.payments.charge(ctx.idempotency_key, order["total_price"], card)

    def ship(ctx: saga.StepContext) -> str:
        with ledger_stage(order_id, "shipment"):
            return systems.carrier.create_shipment(ctx.idempotency_key, order_id)

    orchestrator = saga.SagaOrchestrator(
        "fulfilment", log=log, pass_context=True, clock=shop.clock.time, sleep=shop.clock.sleep
    )
    orchestrator.add_step("stock", reserve, release)
    orchestrator.add_step("payment", charge, pivot=True, idempotent=True)  # no undoing a charge
    orchestrator.add_step("shipment", ship, idempotent=True)
    return orchestrator


def _fulfil_orders(shop: _Shop, out: world.Report) -> None:
    out.section("3. A saga fulfils each order: stock, payment, shipment")
    out.say(
        "Three systems, no shared transaction: the warehouse reserves stock, the payment "
        "provider charges the card (the pivot: from there the saga only goes forward), the "
        "carrier books the shipment. Each step is in the saga log before the next starts; a "
        "failure before the pivot undoes the steps already done, in reverse order.",
    )
    clock = shop.clock
    systems = _Fulfilment(
        world.Warehouse(clock), world.PaymentProvider(clock), world.Carrier(clock)
    )
    stock_before = dict(systems.warehouse.stock)
    log = saga.SQLSagaLog(shop.db.connect())
    rows = []
    for order in sorted(shop.erp.orders.values(), key=lambda o: int(o["id"])):
        clock.sleep(2.0)
        result = _fulfilment_saga(shop, log, order, systems).execute(saga_id=f"order-{order['id']}")
        shipped = result.status is saga.SagaStatus.COMPLETED
        (shop.facts.shipped if shipped else shop.facts.compensated).append(order["id"])
        with shop.transaction() as conn:
            conn.execute(
                shop.db.sql("UPDATE shop_order SET status = ? WHERE order_id = ?"),
                ("shipped" if shipped else "cancelled", order["id"]),
            )
        steps = result.step_results
        stock = steps["stock"] + (", released" if "stock" in result.compensated_steps else "")
        payment = steps.get("payment") or f"declined: {result.error}"
        rows.append((order["id"], stock, payment, steps.get("shipment"), result.status.value))
    out.table(("order", "stock", "payment", "shipment", "saga"), rows)
    sku = "KB-101"
    out.say(
        f"{len(shop.facts.shipped)} orders shipped. Order {shop.facts.compensated[0]}'s card was "
        f"declined, so its reservation was released: {sku} went from {stock_before[sku]} to "
        f"{systems.warehouse.stock[sku]} units, only what the shipped orders took.",
    )


# --- 4. change data capture into the CRM, through the sync boundary -------------------


def _erp_phone(value: str) -> str:
    return value.removeprefix("+")


def _crm_phone(value: str) -> str:
    return "+" + value


def _customer_boundary(shop: _Shop) -> SyncBoundary:
    """Who owns which customer field (CRM names), and how the ERP names it."""
    return SyncBoundary(
        "customer",
        "crm",
        "erp",
        field_authority={
            "email": RecordAuthority.SYSTEM_A,  # the CRM's
            "full_name": RecordAuthority.SHARED,
            "phone": RecordAuthority.SHARED,
            "credit_limit": RecordAuthority.SYSTEM_B,  # the ERP's
            "payment_terms": RecordAuthority.SHARED,
        },
        excluded_fields={"lead_score"},
        field_map={
            "email": "EmailAddress",
            "full_name": "Name",
            "phone": FieldMapping("PhoneNo", to_b=_erp_phone, to_a=_crm_phone),
            "credit_limit": "CreditLimit",
            "payment_terms": "PaymentTerms",
        },
        shared_policy=SharedPolicy.REVIEW,  # changed on both sides: a person decides
        clock=shop.clock.utc,
    )


def _sync_crm(shop: _Shop, out: world.Report) -> None:
    out.section("4. The ERP's change events update the CRM")
    out.say(
        "Meanwhile an ERP user edited Grace Hopper's customer record (name, credit limit, "
        "payment terms), and a salesperson changed her e-mail and payment terms in the CRM. "
        "The ERP's Debezium connector emits a change event per row change. Each is read with "
        "cdc_event, deduplicated by its event id in the inbox, and planned field by field by "
        "the sync boundary, against the baseline the last sync stored.",
    )
    with shop.transaction() as conn:  # what the last sync stored, days ago
        for record_id, baseline in world.LAST_SYNCED.items():
            conn.execute(
                shop.db.sql("INSERT INTO crm_sync_baseline VALUES (?, ?)"),
                (record_id, json.dumps(baseline)),
            )
    shop.clock.sleep(60.0)
    erp, crm, boundary = shop.erp, world.CRM(), _customer_boundary(shop)
    erp.update_customer("C-2", Name="Grace B. Hopper", CreditLimit=5000, PaymentTerms="NET60")
    erp.change_feed.append(erp.change_feed[-1])  # the consumer restarts and reads it again
    rows: list[tuple[object, ...]] = []
    first_plan: list[tuple[object, ...]] = []
    for number, (key, value) in enumerate(world.iter_feed(erp.change_feed), start=1):
        shop.clock.sleep(0.5)
        event = cdc_event.CDCEvent.from_debezium(value, key=key)
        decision, fields = _apply_change(shop, boundary, crm, event)
        first_plan = first_plan or fields
        changed = ", ".join(sorted(event.changed_fields()))
        rows.append((number, event.source.lsn, event.event_id[:8], changed, decision))
    out.table(("#", "lsn", "event id", "ERP changed", "plan"), rows, wrap={3: 28, 4: 40})
    out.say("The plan of event #1, field by field (the ERP writes phones without the '+'):")
    out.table(("field", "owner", "CRM", "ERP", "last synced", "plan"), first_plan)
    f = shop.facts
    out.say(
        f"The CRM received {f.to_crm} field(s) and the ERP {f.to_erp}. The redelivered event "
        "was skipped by its id, and the sync's own write came back as an event and changed "
        f"nothing. {len(f.reviews)} field waits for a person ({'; '.join(f.reviews)}). The "
        "lead score is never synced.",
    )


def _apply_change(
    shop: _Shop, boundary: SyncBoundary, crm: world.CRM, event: cdc_event.CDCEvent
) -> tuple[str, list[tuple[object, ...]]]:
    """Plan one change event and write it; the inbox row and the new baseline commit together.

    Returns what was decided, and the plan field by field (empty for a duplicate).
    """
    shop.facts.events += 1
    record_id = event.key["CustomerNo"]
    with shop.transaction() as conn:
        entry = idempotency.inbox(
            conn, scope="erp-customer-events", key=event.event_id, now=shop.clock.time()
        )
        if entry.is_duplicate:
            shop.facts.event_duplicates += 1
            return "already applied (same event id): skipped", []
        cursor = conn.cursor()
        cursor.execute(
            shop.db.sql("SELECT baseline FROM crm_sync_baseline WHERE record_id = ?"),
            (record_id,),
        )
        baseline = json.loads(cursor.fetchone()[0])
        contact, erp_row = dict(crm.contacts[record_id]), event.after or {}
        plan = boundary.plan(contact, erp_row, baseline, record_id=record_id)
        crm.contacts[record_id].update(plan.updates_a)
        if plan.updates_b:
            shop.erp.update_customer(record_id, **plan.updates_b)  # the connector sees it too
        cursor.execute(
            shop.db.sql("UPDATE crm_sync_baseline SET baseline = ? WHERE record_id = ?"),
            (json.dumps(dict(plan.new_baseline)), record_id),
        )
    shop.facts.to_crm += len(plan.updates_a)
    shop.facts.to_erp += len(plan.updates_b)
    review = {c.field_name: c for c in plan.conflicts}
    for name, conflict in review.items():
        note = f"{name}: CRM {conflict.value_a}, ERP {conflict.value_b}"
        if note not in shop.facts.reviews:
            shop.facts.reviews.append(note)
    fields: list[tuple[object, ...]] = []
    for name in boundary.synced_fields():
        b_name = boundary.b_name_for(name) or name
        if name in review:
            reason = review[name].reason
            decision = f"review ({reason.value if reason else 'conflict'})"
        elif name in plan.updates_a:
            decision = "to the CRM"
        elif b_name in plan.updates_b:
            decision = "to the ERP"
        else:
            decision = "in step"
        owner = _OWNERS[boundary.authority_for(name) or RecordAuthority.SHARED]
        fields.append((name, owner, contact[name], erp_row[b_name], baseline[name], decision))
    if not plan.updates_a and not plan.updates_b:
        shop.facts.echoes += 1
        return "nothing to write: the echo of the sync's own change", fields
    writes = [
        f"CRM: {', '.join(plan.updates_a)}" if plan.updates_a else "",
        f"ERP: {', '.join(plan.updates_b)}" if plan.updates_b else "",
        f"review: {', '.join(review)}" if review else "",
    ]
    return "; ".join(w for w in writes if w), fields


_OWNERS = {
    RecordAuthority.SYSTEM_A: "CRM",
    RecordAuthority.SYSTEM_B: "ERP",
    RecordAuthority.SHARED: "both",
    RecordAuthority.MANUAL: "a person",
}


# --- 5. the ledger's report ------------------------------------------------------------


def _ledger_report(shop: _Shop, out: world.Report) -> None:
    out.section("5. The ledger: every order's stages and attempts")
    finished = shop.book.finish_run(RUN_KEY)
    report = shop.book.report(run_key=RUN_KEY)
    out.say(
        f"Each order was an item of the run {RUN_KEY}, each step a stage, each try an "
        f"attempt. The run finished {finished.status.value}; this is its ledger.report():",
    )
    statuses = sorted(set(report.items) | set(report.stages))
    counts = [(s, report.items.get(s, 0), report.stages.get(s, 0)) for s in statuses]
    out.table(("status", "items", "stages"), counts)
    by_step = {s.step: s for s in report.steps}
    steps = [
        (
            s.step,
            s.attempts,
            s.successes,
            s.system_errors,
            s.business_errors,
            f"{100 * s.success_rate:.0f}%",
            f"{s.p50 or 0:.3f}",
            f"{s.max or 0:.3f}",
        )
        for s in (by_step[name] for name in STEPS if name in by_step)
    ]
    header = ("step", "attempts", "ok", "system err", "business err", "success", "p50 s", "max s")
    out.table(header, steps)
    out.table(
        ("count", "step", "failure reason"),
        [(f.attempts, f.step, f.error) for f in report.failures],
    )
    letters = [
        f"order {json.loads(d.payload)['order_id']} ({d.reason.value}: {d.error})"
        for d in shop.book.dead_letters(run_key=RUN_KEY)
    ]
    out.say(f"Dead letters: {report.dead_letters}, " + "; ".join(letters) + ".")


# --- what each pattern prevented -------------------------------------------------------


def _summary(shop: _Shop, out: world.Report) -> None:
    out.section("What each pattern prevented")
    f = shop.facts
    rows = [
        (
            "webhook_handler",
            f"{f.refused} forged request refused (400) before anything was written",
            "an order nobody placed reaching the ERP",
        ),
        (
            "idempotency",
            (
                f"{f.duplicates} redelivered webhook and {f.event_duplicates} redelivered "
                "change event recognised by their ids"
            ),
            "a second order 1002; one CRM update applied twice",
        ),
        (
            "outbox",
            f"{f.orders} orders committed with their messages; the ERP got each once",
            "an order stored but never sent to the ERP, or sent but never stored",
        ),
        (
            "retry",
            f"{f.retried_503s} transient 503(s) absorbed inside their delivery",
            "orders held back by a momentary ERP hiccup",
        ),
        (
            "circuit_breaker",
            (
                f"opened at {f.opened_at}, {_reopened(f)}turned {f.turned_away} call(s) away, "
                f"closed at {f.closed_at}"
            ),
            "hammering an ERP that was down",
        ),
        (
            "saga",
            (
                f"{len(f.shipped)} orders shipped; order {f.compensated[0]} declined and its "
                "stock released"
            ),
            "stock reserved forever for an unpaid order",
        ),
        (
            "cdc_event",
            f"{f.events} change events read, with ids that survive a redelivery",
            "a redelivered event mistaken for a new change",
        ),
        (
            "sync_boundary",
            (
                f"{f.to_crm} field(s) to the CRM, {f.to_erp} to the ERP, {len(f.reviews)} to "
                f"review, {f.echoes} echo ignored"
            ),
            "one system's edit silently overwritten by the other's; a sync loop",
        ),
        (
            "ledger",
            f"{f.deliveries} ERP deliveries and every saga step recorded; 1 dead letter",
            "a declined order vanishing without a trace",
        ),
    ]
    out.table(("pattern", "what happened", "failure prevented"), rows, wrap={1: 42, 2: 32})


# --- the command -----------------------------------------------------------------------


def run_demo(
    out: TextIO,
    *,
    seed: int = DEFAULT_SEED,
    db_path: str | None = None,
    postgres: str | None = None,
    schema: str | None = None,
) -> None:
    """Run the demo, writing its report to ``out``.

    ``db_path`` keeps the SQLite database in a new file; ``postgres`` (a DSN) runs on
    PostgreSQL in a new schema, ``schema`` (kept) or a temporary one (dropped).

    Raises:
        interlock._demo_world.DemoSetupError: the database cannot be set up.
    """
    db = world.open_database(path=db_path, postgres=postgres, schema=schema)
    try:
        shop = _Shop(db, seed)
        report = world.Report(out)
        report.line(f"interlock demo: order to cash, seed {seed}, on {db.label}")
        _receive_webhooks(shop, report)
        _publish_orders(shop, report)
        _fulfil_orders(shop, report)
        _sync_crm(shop, report)
        _ledger_report(shop, report)
        _summary(shop, report)
    finally:
        db.close()


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``demo`` on the main parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the end-to-end order-to-cash demo",
        description=(
            "An order-to-cash integration, end to end: signed webhooks, an outbox relay to a "
            "flaky ERP through retry and a circuit breaker, a fulfilment saga, change events "
            "synced into a CRM, and the ledger's report. Simulated time, no network: the "
            "same seed prints the same report."
        ),
        epilog="Exit codes: 0 the demo ran; 2 bad arguments or a database it cannot set up.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the ERP's random failures (default {DEFAULT_SEED})",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="PATH",
        help="write the SQLite database to PATH, a new file, and keep it (read it with "
        "`interlock ledger report --db PATH`); default: a temporary file, removed at the end",
    )
    where.add_argument(
        "--postgres",
        metavar="DSN",
        help="run on PostgreSQL instead (a libpq DSN or URL; needs psycopg), in a new schema "
        "that is dropped at the end unless --schema names one to keep",
    )
    parser.add_argument(
        "--schema",
        metavar="NAME",
        help="with --postgres: create the tables in this new schema and keep it",
    )


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run the demo: 0 when it ran, 2 for bad arguments or a database it cannot set up."""
    if args.schema is not None and (
        args.postgres is None or not _SCHEMA_NAME.fullmatch(args.schema)
    ):
        stderr.write(
            "interlock demo: --schema needs --postgres and a lower-case SQL name, "
            f"got {args.schema!r}\n"
        )
        return 2
    try:
        run_demo(
            stdout, seed=args.seed, db_path=args.db, postgres=args.postgres, schema=args.schema
        )
    except world.DemoSetupError as exc:
        stderr.write(f"interlock demo: {exc}\n")
        return 2
    return 0
