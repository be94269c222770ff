"""A consumer that applies each message exactly once, even when it is killed mid-transaction.

The broker delivers at least once: here the messages arrive with duplicates, and one
consumer process is killed with SIGKILL after applying a payment but before committing.
The inbox records each message id in the same SQLite transaction as the payment, so the
kill takes both back and the redelivery applies the payment once. For contrast, a naive
consumer that marks a message "seen" in its own transaction before applying it loses the
payment when it dies in between (the defect of receivers that mark keys seen before the
handler runs). Finally a notification that leaves the database goes through
``idempotent``: a claim whose worker died is retaken after its lease.

Run:  python examples/idempotency_inbox.py
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import interlock.idempotency as idem
from interlock.idempotency import SQLIdempotencyStore, idempotent, inbox, migrate

WORKDIR = Path(tempfile.mkdtemp())
DATABASE = WORKDIR / "ledger.db"
PAYMENTS = [("pay-1", 500), ("pay-2", 250), ("pay-1", 500), ("pay-3", 125), ("pay-2", 250)]


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DATABASE, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def balance(conn: sqlite3.Connection, table: str = "balance") -> int:
    return int(conn.execute(f"SELECT cents FROM {table}").fetchone()[0])  # noqa: S608 - fixed names


def consume(conn: sqlite3.Connection, message_id: str, cents: int) -> bool:
    """One message, one transaction: the inbox record and the payment commit together."""
    conn.execute("BEGIN IMMEDIATE")
    with inbox(conn, scope="payments", key=message_id) as entry:
        if entry.is_new:
            conn.execute("UPDATE balance SET cents = cents + ?", (cents,))
    conn.execute("COMMIT")
    return entry.is_new


# A child that applies pay-4 and then hangs before COMMIT, until it is killed.
CRASHING_CHILD = textwrap.dedent(
    """
    import sqlite3, sys, time
    from interlock.idempotency import inbox
    conn = sqlite3.connect(sys.argv[1], timeout=10.0, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    if sys.argv[2] == "inbox":
        inbox(conn, scope="payments", key="pay-4")
        conn.execute("UPDATE balance SET cents = cents + 1000")
    else:  # naive: mark seen and commit, then apply in a second transaction
        conn.execute("INSERT INTO seen VALUES ('pay-4')")
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE naive_balance SET cents = cents + 1000")
    print("applied, not committed", flush=True)
    time.sleep(60)
    """
)


def run_and_kill(mode: str) -> None:
    """Start a consumer process, wait until it is mid-transaction, SIGKILL it."""
    src = str(Path(idem.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CRASHING_CHILD, str(DATABASE), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    if child.stdout is not None:
        child.stdout.readline()  # "applied, not committed"
        child.stdout.close()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def main() -> None:
    conn = connect()
    migrate(conn)
    conn.execute("CREATE TABLE balance (cents INTEGER NOT NULL)")
    conn.execute("INSERT INTO balance VALUES (0)")
    conn.execute("CREATE TABLE naive_balance (cents INTEGER NOT NULL)")
    conn.execute("INSERT INTO naive_balance VALUES (0)")
    conn.execute("CREATE TABLE seen (message_id TEXT PRIMARY KEY)")

    print("1. deliveries with duplicates:")
    for message_id, cents in PAYMENTS:
        applied = consume(conn, message_id, cents)
        print(f"   {message_id} {cents:>4} -> {'applied' if applied else 'duplicate, skipped'}")
    print(f"   balance: {balance(conn)} (500 + 250 + 125)")

    print("2. a consumer killed with SIGKILL after applying pay-4, before COMMIT:")
    run_and_kill("inbox")
    print(f"   balance after the kill: {balance(conn)} (the payment rolled back with its record)")
    for _ in range(2):
        applied = consume(conn, "pay-4", 1000)
        print(f"   redelivery of pay-4 -> {'applied' if applied else 'duplicate, skipped'}")
    print(f"   balance: {balance(conn)} (pay-4 applied exactly once)")

    print("3. the naive consumer (mark seen, then apply) killed the same way:")
    run_and_kill("naive")
    seen = conn.execute("SELECT COUNT(*) FROM seen WHERE message_id = 'pay-4'").fetchone()[0]
    print(f"   pay-4 marked seen: {bool(seen)}; its redelivery would be dropped")
    print(f"   naive balance: {balance(conn, 'naive_balance')} (the payment is lost)")

    print("4. an effect outside the database: claim, lease, complete")
    now = [1_767_225_600.0]
    store = SQLIdempotencyStore(connect, lease_seconds=30.0, clock=lambda: now[0])
    sent: list[str] = []

    @idempotent(store, scope="receipts", key="payment_id")
    def send_receipt(payment_id: str) -> str:
        sent.append(payment_id)
        return f"receipt for {payment_id}"

    store.claim("receipts", "pay-1")  # a worker claims pay-1 and dies before completing
    try:
        send_receipt("pay-1")
    except idem.KeyInProgressError as error:
        print(f"   while the dead worker's lease runs: {idem.http_status(error)} in progress")
    now[0] += 30.0
    print(f"   after its lease: {send_receipt('pay-1')!r} (claim retaken)")
    print(f"   a retry: {send_receipt('pay-1')!r} (stored result, sent {len(sent)} time)")
    store.close()
    conn.close()


if __name__ == "__main__":
    main()
