# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The world ``python -m interlock demo`` runs in: simulated time, a database, stand-ins.

Not a pattern module and not public API: the demo's scenery, kept apart so that
``interlock.cli_demo`` reads as the composition of the patterns. Here are:

- :class:`SimClock`: unix seconds that move only when code sleeps, so the demo never waits
  and prints the same times on every run;
- :class:`DemoDatabase`: an SQLite file or a fresh PostgreSQL schema, and its connections;
- :class:`Report`: the report's typesetting (sections, paragraphs, aligned tables);
- the other systems, in memory: the storefront that sends signed webhooks, an ERP that
  fails now and then (its failures come from ``random.Random(seed)``), goes down for a
  while and emits Debezium change events, a warehouse, a payment provider that declines
  one card, a carrier and a CRM.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import textwrap
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from interlock.webhook_handler import sign

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator, Sequence
    from typing import TextIO

START = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
SHOP_SECRET = "shpss_demo_2f8c1a"  # noqa: S105 - a made-up secret both sides of the demo share
DECLINED_CARD = "tok_chargeDeclined"  # the test card the payment provider declines


class SimClock:
    """Simulated time in unix seconds: it moves when code sleeps or the story says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start.timestamp()

    def time(self) -> float:
        """The current time (the ``clock``/``monotonic`` the patterns are given)."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass at once (the ``sleep`` the patterns are given)."""
        self.now += max(0.0, seconds)

    def utc(self) -> datetime:
        """The current time as an aware datetime (the ledger's clock)."""
        return datetime.fromtimestamp(self.now, timezone.utc)

    def hms(self) -> str:
        """The current time as ``HH:MM:SS``."""
        return self.utc().strftime("%H:%M:%S")


# --- the report -----------------------------------------------------------------------


class Report:
    """Writes the demo's report: sections, wrapped paragraphs and aligned tables.

    Every block (a paragraph, a table) starts with a blank line and none ends with one,
    so blocks never leave a double gap between them.
    """

    width = 92

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str) -> None:
        """One line, as it is."""
        self.out.write(text + "\n")

    def section(self, title: str) -> None:
        """A heading, underlined."""
        self.out.write(f"\n{title}\n{'=' * len(title)}\n")

    def say(self, text: str) -> None:
        """A paragraph, wrapped."""
        self.out.write("\n" + textwrap.fill(text, self.width) + "\n")

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[object]],
        *,
        wrap: dict[int, int] | None = None,
    ) -> None:
        """Aligned columns, numbers to the right; ``wrap`` maps a column to its width."""
        wrap = wrap or {}

        def lines(column: int, value: object) -> list[str]:
            text = "-" if value is None else str(value)
            if column in wrap:
                return textwrap.wrap(text, wrap[column]) or [""]
            return [text]

        cells = [[lines(i, v) for i, v in enumerate(row)] for row in [header, *rows]]
        columns = range(len(header))
        widths = [max(len(line) for row in cells for line in row[i]) for i in columns]
        numeric = [
            bool(rows) and all(isinstance(r[i], (int, float)) for r in rows) for i in columns
        ]
        self.out.write("\n")
        for n, row in enumerate(cells):
            for k in range(max(len(cell) for cell in row)):
                texts = [cell[k] if k < len(cell) else "" for cell in row]
                padded = [
                    t.rjust(w) if n and numeric[i] else t.ljust(w)
                    for i, (t, w) in enumerate(zip(texts, widths, strict=True))
                ]
                self.out.write(("  " + "  ".join(padded)).rstrip() + "\n")
            if n == 0:
                self.out.write("  " + "  ".join("-" * w for w in widths) + "\n")


# --- the database ----------------------------------------------------------------------


class DemoSetupError(Exception):
    """The demo's database cannot be set up (the message says why)."""


class DemoDatabase:
    """Where the demo keeps its state: an SQLite file, or a PostgreSQL schema of its own.

    ``connect()`` opens one more connection (each component gets its own, as separate
    processes would); ``close()`` closes them all and removes what is not kept: the
    temporary directory, or the temporary PostgreSQL schema.
    """

    dialect = "sqlite"

    def __init__(self, label: str) -> None:
        self.label = label
        self._connections: list[Any] = []

    def connect(self, *, autocommit: bool = False) -> Any:
        """A new connection to the demo's tables (``autocommit`` for the ledger's store)."""
        conn = self._open(autocommit=autocommit)
        self._connections.append(conn)
        return conn

    def begin(self, conn: Any) -> None:
        """Open a write transaction on ``conn`` (on SQLite, take the write lock at once)."""
        if self.dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")

    def sql(self, statement: str) -> str:
        """``statement`` with its ``?`` placeholders in the driver's paramstyle."""
        return statement if self.dialect == "sqlite" else statement.replace("?", "%s")

    def close(self) -> None:
        """Close every connection, then remove what is not kept."""
        for conn in self._connections:
            conn.close()
        self._connections.clear()

    def _open(self, *, autocommit: bool) -> Any:
        raise NotImplementedError


class _SQLiteDatabase(DemoDatabase):
    def __init__(self, path: str | None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="interlock-demo-")
            self.path = Path(self._tmp.name) / "demo.db"
            super().__init__("SQLite, a temporary file removed at the end")
            return
        self.path = Path(path)
        if self.path.exists():
            raise DemoSetupError(
                f"{path} exists; the demo writes a new database (remove it or pick another path)"
            )
        try:
            sqlite3.connect(self.path).close()
        except sqlite3.Error as exc:
            raise DemoSetupError(f"cannot create {path}: {exc}") from exc
        super().__init__(
            f"SQLite file {path}, kept (python -m interlock ledger report --db {path})"
        )

    def _open(self, *, autocommit: bool) -> sqlite3.Connection:
        if autocommit:  # the ledger's store issues its own BEGIN IMMEDIATE
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def close(self) -> None:
        super().close()
        if self._tmp is not None:
            self._tmp.cleanup()


class _PostgresDatabase(DemoDatabase):
    dialect = "postgresql"

    def __init__(self, dsn: str, schema: str | None) -> None:
        try:
            import psycopg  # noqa: PLC0415 - only --postgres needs the driver
        except ImportError as exc:
            raise DemoSetupError(
                "--postgres needs psycopg: python -m pip install 'psycopg[binary]'"
            ) from exc
        self._psycopg = psycopg
        self._dsn = dsn
        self._keep = schema is not None
        self.schema = schema or f"interlock_demo_{uuid.uuid4().hex[:12]}"
        try:
            options = f"-c search_path={self.schema}"
            self._conninfo = psycopg.conninfo.make_conninfo(dsn, options=options)
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as admin:
                admin.execute(f'CREATE SCHEMA "{self.schema}"')
        except psycopg.Error as exc:  # the message names the host, never the password
            reason = " ".join(str(exc).split())
            raise DemoSetupError(f"cannot use PostgreSQL: {reason}") from exc
        fate = "kept" if self._keep else "dropped at the end"
        super().__init__(f"PostgreSQL, schema {self.schema} ({fate})")

    def _open(self, *, autocommit: bool) -> Any:
        return self._psycopg.connect(self._conninfo, autocommit=autocommit)

    def close(self) -> None:
        super().close()
        if not self._keep:
            with self._psycopg.connect(self._dsn, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


def open_database(*, path: str | None, postgres: str | None, schema: str | None) -> DemoDatabase:
    """The demo's database: PostgreSQL when ``postgres`` is a DSN, else SQLite.

    Raises:
        DemoSetupError: the file exists, psycopg is missing, the server cannot be reached,
            or the schema exists already.
    """
    if postgres is not None:
        return _PostgresDatabase(postgres, schema)
    return _SQLiteDatabase(path)


# --- the storefront --------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """An order as the storefront sends it."""

    order_id: int
    customer_id: str
    customer: str
    sku: str
    quantity: int
    total: str
    card: str = "tok_visa"

    def to_json(self) -> bytes:
        """The webhook body: the storefront's JSON, byte for byte."""
        return json.dumps(
            {
                "id": self.order_id,
                "customer": {"id": self.customer_id, "name": self.customer},
                "line_items": [{"sku": self.sku, "quantity": self.quantity}],
                "total_price": self.total,
                "currency": "EUR",
                "payment": {"card_token": self.card},
            },
            separators=(",", ":"),
        ).encode()


ORDERS = (
    Order(1001, "C-1", "Ada Lovelace", "KB-101", 2, "149.80"),
    Order(1002, "C-2", "Grace Hopper", "MS-202", 1, "59.90"),
    Order(1003, "C-3", "Alan Turing", "KB-101", 1, "74.90"),
    Order(1004, "C-2", "Grace Hopper", "KB-101", 2, "149.80", card=DECLINED_CARD),
    Order(1005, "C-1", "Ada Lovelace", "MS-202", 3, "179.70"),
)


@dataclass(frozen=True)
class Delivery:
    """One HTTP request the storefront makes to the shop's webhook endpoint."""

    number: int
    note: str
    body: bytes
    headers: dict[str, str]


def storefront_deliveries() -> list[Delivery]:
    """The storefront's webhook deliveries, Shopify-style: HMAC-SHA256 of the body.

    Order 1002 is delivered twice (the storefront did not see the first 200 in time and
    retried with the same webhook id), and one request comes from someone who does not
    know the secret.
    """

    def signed(order: Order, *, secret: str = SHOP_SECRET) -> tuple[bytes, dict[str, str]]:
        body = order.to_json()
        headers = sign("shopify", body=body, secret=secret, webhook_id=f"wh-{order.order_id}-a1")
        return body, {**headers, "X-Shopify-Topic": "orders/create"}

    forged = Order(1006, "C-9", "Mallory", "KB-101", 50, "0.50")
    plan = [
        (ORDERS[0], SHOP_SECRET, "new order"),
        (ORDERS[1], SHOP_SECRET, "new order"),
        (ORDERS[2], SHOP_SECRET, "new order"),
        (ORDERS[1], SHOP_SECRET, "the storefront's retry of #2"),
        (ORDERS[3], SHOP_SECRET, "new order"),
        (forged, "guessed-secret", "signed with a guessed secret"),
        (ORDERS[4], SHOP_SECRET, "new order"),
    ]
    deliveries = []
    for number, (order, secret, note) in enumerate(plan, start=1):
        body, headers = signed(order, secret=secret)
        deliveries.append(Delivery(number, note, body, headers))
    return deliveries


# --- the ERP ---------------------------------------------------------------------------


class ERPUnavailable(Exception):  # noqa: N818 - named as the ERP's answer, not as an error kind
    """The ERP answered 503 Service Unavailable."""


@dataclass
class ERPCall:
    """One request that reached the ERP: its status, and for a 503 ``"busy"`` or ``"down"``."""

    at: float
    message_id: str
    status: int
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.status} {self.reason}".rstrip()


CUSTOMER_ROWS = {
    "C-2": {
        "CustomerNo": "C-2",
        "Name": "Grace Hopper",
        "EmailAddress": "grace@old.example",
        "PhoneNo": "15550111",
        "CreditLimit": 1000,
        "PaymentTerms": "NET30",
    },
}


class ERP:
    """The ERP: takes orders over its API, fails now and then, emits change events.

    Its API answers 503 to its first call (it is warming up) and then at random
    (``blip_rate``, drawn from ``rng``), but never three times in a row. After accepting
    ``outage_after`` orders it goes down for maintenance for ``outage_seconds`` and answers
    every call with 503. Each call takes a little simulated time. Orders are stored by
    message id, so a redelivered message does not create a second order.

    Its customer table is captured by a Debezium-style connector: every change appends a
    change-event record value (JSON bytes) and its key to ``change_feed``.
    """

    def __init__(
        self,
        clock: SimClock,
        rng: random.Random,
        *,
        blip_rate: float = 0.3,
        outage_after: int = 2,
        outage_seconds: float = 40.0,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.blip_rate = blip_rate
        self.outage_after = outage_after
        self.outage_seconds = outage_seconds
        self.down_from: float | None = None
        self.down_until: float | None = None
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[ERPCall] = []
        self.customers = {no: dict(row) for no, row in CUSTOMER_ROWS.items()}
        self.change_feed: list[tuple[bytes, bytes]] = []
        self._failures_in_a_row = 0
        self._lsn = 37_000_000

    # the order API

    def create_order(self, message_id: str, order: dict[str, Any]) -> str:
        """``POST /orders``: the ERP's order number; raises :class:`ERPUnavailable`."""
        self.clock.sleep(round(self.rng.uniform(0.04, 0.12), 3))
        now = self.clock.time()
        if self.down_until is not None and now < self.down_until:
            self._fail(message_id, "down")
        if not self.calls or (self._failures_in_a_row < 2 and self.rng.random() < self.blip_rate):
            self._fail(message_id, "busy")
        self._failures_in_a_row = 0
        self.calls.append(ERPCall(now, message_id, 200))
        if message_id not in self.orders:
            self.orders[message_id] = order
            if len(self.orders) == self.outage_after:
                self.down_from, self.down_until = now, now + self.outage_seconds
        return f"SO-{40000 + list(self.orders).index(message_id) + 1}"

    def _fail(self, message_id: str, reason: str) -> NoReturn:
        self._failures_in_a_row += 1
        self.calls.append(ERPCall(self.clock.time(), message_id, 503, reason))
        why = "down for maintenance" if reason == "down" else "busy, try again"
        raise ERPUnavailable(f"503 Service Unavailable ({why})")

    # the customer table and its change feed

    def update_customer(self, number: str, **changes: Any) -> None:
        """Change a customer row, as an ERP user or an API call does; emit the change."""
        before = dict(self.customers[number])
        after = {**before, **changes}
        self.customers[number] = after
        self._lsn += 1_208
        ts_ms = int(self.clock.time() * 1000)
        value = {
            "before": before,
            "after": after,
            "source": {
                "version": "2.7.0.Final",
                "connector": "postgresql",
                "name": "erp",
                "ts_ms": ts_ms,
                "db": "erp",
                "schema": "public",
                "table": "customers",
                "txId": self._lsn // 1000,
                "lsn": self._lsn,
            },
            "op": "u",
            "ts_ms": ts_ms + 41,
        }
        key = json.dumps({"CustomerNo": number}).encode()
        self.change_feed.append((key, json.dumps(value).encode()))


# --- fulfilment: warehouse, payment provider, carrier ----------------------------------


class PaymentDeclined(Exception):  # noqa: N818 - the provider's answer, not an error kind
    """The card was declined: a business outcome, retrying will not change it."""


@dataclass
class Warehouse:
    """Stock by SKU; one reservation per idempotency key, released at most once."""

    clock: SimClock
    stock: dict[str, int] = field(default_factory=lambda: {"KB-101": 10, "MS-202": 8})
    reservations: dict[str, tuple[str, int]] = field(default_factory=dict)
    _by_key: dict[str, str] = field(default_factory=dict)

    def reserve(self, key: str, sku: str, quantity: int) -> str:
        """Reserve ``quantity`` of ``sku``; returns the reservation id."""
        self.clock.sleep(0.08)
        if key not in self._by_key:
            self._by_key[key] = f"RSV-{len(self._by_key) + 1:03d}"
            self.stock[sku] -= quantity
            self.reservations[self._by_key[key]] = (sku, quantity)
        return self._by_key[key]

    def release(self, reservation: str) -> None:
        """Put a reservation's stock back (a second release changes nothing)."""
        self.clock.sleep(0.05)
        if reservation in self.reservations:
            sku, quantity = self.reservations.pop(reservation)
            self.stock[sku] += quantity


@dataclass
class PaymentProvider:
    """Charges cards once per idempotency key; declines :data:`DECLINED_CARD`."""

    clock: SimClock
    charges: dict[str, str] = field(default_factory=dict)

    def charge(self, key: str, amount: str, card: str) -> str:
        """Charge ``amount`` EUR; returns the charge id or raises :class:`PaymentDeclined`."""
        self.clock.sleep(0.31)
        if card == DECLINED_CARD:
            raise PaymentDeclined(f"card declined for {amount} EUR")
        return self.charges.setdefault(key, f"ch_{len(self.charges) + 1:04d}")


@dataclass
class Carrier:
    """Creates one shipment per idempotency key."""

    clock: SimClock
    shipments: dict[str, str] = field(default_factory=dict)

    def create_shipment(self, key: str, order_id: int) -> str:
        """Book a shipment for ``order_id``; returns the tracking number."""
        self.clock.sleep(0.17)
        return self.shipments.setdefault(key, f"TRK{order_id}{len(self.shipments) + 1:02d}")


# --- the CRM ---------------------------------------------------------------------------


@dataclass
class CRM:
    """The CRM's contact records (its own field names), as a salesperson left them."""

    contacts: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "C-2": {
                "email": "grace@new.example",
                "full_name": "Grace Hopper",
                "phone": "+15550111",
                "credit_limit": 1000,
                "payment_terms": "NET45",
                "lead_score": 91,
            },
        }
    )


#: What the previous CRM/ERP sync agreed on, field by field (CRM names).
LAST_SYNCED = {
    "C-2": {
        "email": "grace@old.example",
        "full_name": "Grace Hopper",
        "phone": "+15550111",
        "credit_limit": 1000,
        "payment_terms": "NET30",
    },
}


def iter_feed(feed: list[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """Read a change feed that may grow while it is read (a consumer's poll loop)."""
    index = 0
    while index < len(feed):
        yield feed[index]
        index += 1
