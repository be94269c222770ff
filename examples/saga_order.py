# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""An order saga (stock, payment, shipping) on a SQLite log, killed mid-run and resumed.

Run: ``python examples/saga_order.py``. It shows, in about a second:

1. an order that completes;
2. an order whose carrier API fails twice: shipping is after the pivot (the payment), so
   it is retried forward and the order completes;
3. an order whose card is declined: the stock reservation is released;
4. a worker process killed with SIGKILL right after the card was charged but before the
   saga recorded it; the next start-up finds the saga in ``pending()`` and resumes it:
   the charge is re-run with the same idempotency key, so the card is charged once;
5. the log of that saga, as an operator reads it.
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

from interlock.saga import RetryPolicy, SagaOrchestrator, SQLSagaLog, StepContext

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Ledger:
    """The three external systems, as rows keyed by idempotency key in one SQLite file.

    A real API deduplicates the same way: the second call with a key returns the first
    call's answer instead of charging again.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        self.conn.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, what TEXT)")
        self.declined = False
        self.carrier_failures = 0

    def call(self, key: str, what: str) -> str:
        row = self.conn.execute("SELECT what FROM calls WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return str(row[0])  # already done: the same answer, no second effect
        self.conn.execute("INSERT INTO calls VALUES (?, ?)", (key, what))
        return what

    def count(self, prefix: str) -> int:
        query = "SELECT count(*) FROM calls WHERE what LIKE ?"
        return int(self.conn.execute(query, (prefix + "%",)).fetchone()[0])


def order_saga(log: SQLSagaLog, ledger: Ledger, on_charge: object = None) -> SagaOrchestrator:
    def reserve(ctx: StepContext) -> str:
        return ledger.call(ctx.idempotency_key, f"reserve 2 x SKU-1 for {ctx.saga_id}")

    def release(ctx: StepContext) -> None:
        ledger.call(ctx.idempotency_key, f"release {ctx.results.get('stock')}")

    def charge(ctx: StepContext) -> str:
        if ledger.declined:
            raise PermissionError("card declined")
        charged = ledger.call(ctx.idempotency_key, f"charge 59.90 EUR for {ctx.saga_id}")
        if callable(on_charge):
            on_charge()
        return charged

    def ship(ctx: StepContext) -> str:
        if ledger.carrier_failures:
            ledger.carrier_failures -= 1
            raise ConnectionError("carrier API unavailable")
        return ledger.call(ctx.idempotency_key, f"ship {ctx.saga_id}")

    saga = SagaOrchestrator(
        "order",
        log=log,
        pass_context=True,
        forward_retry=RetryPolicy(attempts=4, initial=0.0),
        compensation_retry=RetryPolicy(attempts=4, initial=0.0),
    )
    saga.add_step("stock", reserve, release)
    saga.add_step("payment", charge, pivot=True, idempotent=True)
    saga.add_step("shipping", ship, idempotent=True)
    return saga


WORKER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {here!r})
    from pathlib import Path
    import saga_order as ex
    from interlock.saga import SQLSagaLog

    folder = Path({folder!r})
    ledger = ex.Ledger(folder / "ledger.db")

    def die_mid_charge():
        print("worker: card charged, saga not yet told (killed now)", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    saga = ex.order_saga(SQLSagaLog(ex.connect(folder / "saga.db")), ledger, die_mid_charge)
    saga.execute(saga_id="order-4")
    """
)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="saga_order_"))
    SQLSagaLog.migrate(connect(folder / "saga.db"))
    ledger = Ledger(folder / "ledger.db")
    log = SQLSagaLog(connect(folder / "saga.db"))

    result = order_saga(log, ledger).execute(saga_id="order-1")
    print(f"1. order-1: {result.status.value}; results {result.step_results}")

    ledger.carrier_failures = 2
    result = order_saga(log, ledger).execute(saga_id="order-2")
    shipping = order_saga(log, ledger).inspect("order-2").steps[2]
    print(f"2. order-2: {result.status.value} after {shipping.attempts} shipping attempts")

    ledger.declined = True
    result = order_saga(log, ledger).execute(saga_id="order-3")
    ledger.declined = False
    print(
        f"3. order-3: {result.status.value}; failed at {result.failed_step} ({result.error});"
        f" compensated {result.compensated_steps}"
    )

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = WORKER.format(here=str(HERE), folder=str(folder))
    proc = subprocess.run([sys.executable, "-c", code], env=env, check=False)  # noqa: S603
    if proc.returncode != -signal.SIGKILL:
        raise SystemExit(f"the worker should have been killed, it exited with {proc.returncode}")
    print("4. the worker died with SIGKILL in the middle of the payment step")

    saga = order_saga(SQLSagaLog(connect(folder / "saga.db")), ledger)
    print(f"   start-up: pending sagas {saga.pending()}")
    for saga_id in saga.pending():
        resumed = saga.resume(saga_id)
        print(f"   resumed {saga_id}: {resumed.status.value}; results {resumed.step_results}")
    print(f"   charges in the ledger for order-4: {ledger.count('charge 59.90 EUR for order-4')}")

    print("5. the log of order-4:")
    for record in saga.inspect("order-4").history:
        extra = f"  ({record.error})" if record.error else ""
        print(f"   {record.seq:>2} {record.kind.value:<16} {record.step or '':<9}{extra}")


if __name__ == "__main__":
    main()
