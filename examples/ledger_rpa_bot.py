# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""An invoice bot across ERP, bank portal and CRM, tracked by interlock.ledger on SQLite.

Shows: per-platform retry budgets (the bank gets 4 attempts, the ERP 2), a business
rejection that is never retried, EXHAUSTED told apart from RETRY_WAITING, a bot that
crashes mid-stage and whose stage another bot takes over after the lease, the audit trail,
dead letters, and the day's report. Deterministic: a manual clock, no network, no sleeping.

Run: ``python examples/ledger_rpa_bot.py``
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from interlock.ledger import (
    Backoff,
    BusinessError,
    Dedup,
    LeaseLostError,
    Ledger,
    ManualClock,
    ProcessDefinition,
    RetryPolicy,
    SQLLedgerStore,
    Step,
    Trigger,
    connect_sqlite,
    migrate,
)

BANK_TIMEOUTS = {"INV-2": 2, "INV-4": 99}  # INV-4's bank portal never answers


def erp(invoice: dict[str, Any]) -> int:
    del invoice  # the stand-in ERP accepts every invoice
    return 0


def bank(invoice: dict[str, Any]) -> int:
    if invoice["vendor"] == "blocked-vendor":
        raise BusinessError("vendor is blocked for payments", code=17)
    if BANK_TIMEOUTS.get(invoice["no"], 0) > 0:
        BANK_TIMEOUTS[invoice["no"]] -= 1
        return -408
    return 0


def crm(invoice: dict[str, Any]) -> int:
    del invoice  # the stand-in CRM closes every case
    return 0


PLATFORMS = {"erp": erp, "bank": bank, "crm": crm}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        conn = connect_sqlite(str(Path(tmp) / "ledger.db"))
        migrate(conn)
        clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc))
        ledger = Ledger(SQLLedgerStore(conn), clock=clock, lease_seconds=120)
        ledger.define(
            ProcessDefinition(
                "invoice",
                (
                    Step("erp", retry=RetryPolicy(max_attempts=2, backoff=Backoff.FIXED)),
                    Step(
                        "bank",
                        retry=RetryPolicy(
                            max_attempts=4, backoff=Backoff.EXPONENTIAL, base_delay=30
                        ),
                    ),
                    Step("crm", retry=RetryPolicy(max_attempts=3, backoff=Backoff.LINEAR)),
                ),
                dedup=Dedup.fields("no"),
            )
        )
        events: list[str] = []
        ledger.subscribe(lambda e: events.append(e.kind.value))
        ledger.start_run("invoice", "2026-03-02", trigger=Trigger.SCHEDULED)
        for no, vendor in [
            ("INV-1", "acme"),
            ("INV-2", "acme"),
            ("INV-3", "blocked-vendor"),
            ("INV-4", "acme"),
            ("INV-1", "acme"),
        ]:
            item, is_new = ledger.start_or_resume(
                "invoice", {"no": no, "vendor": vendor}, run_key="2026-03-02"
            )
            print(f"register {no}: item {item.id} {'new' if is_new else 'duplicate, skipped'}")

        # bot-1 crashes in the ERP while working INV-1: its lease is left behind.
        crashed = ledger.claim("invoice", worker="bot-1")
        if crashed is None:
            raise SystemExit("nothing to claim")
        print(f"bot-1 claimed {crashed.item.payload['no']} in {crashed.stage.step}, then crashed")

        for _ in range(12):  # bot-2 works whatever is due, minute by minute
            while (claim := ledger.claim("invoice", worker="bot-2")) is not None:
                clock.advance(4)
                ledger.run_stage(claim, PLATFORMS[claim.stage.step])
            clock.advance(60)
        try:
            ledger.complete(crashed)
        except LeaseLostError:
            print("bot-1 came back: its late result was refused (the stage was taken over)")

        print("\nitem      status         attempts (step:outcome)")
        for item_id in range(1, 5):
            item = ledger.get_item(item_id)
            trail = " ".join(
                f"{a.step}:{a.outcome.value if a.outcome else 'open'}"
                for a in ledger.attempts(item_id)
            )
            print(f"{item.payload['no']:<9} {item.status.value:<14} {trail}")
        print("\ndead letters:")
        for letter in ledger.dead_letters():
            print(f"  {letter.reason.value:<9} {letter.payload}  {letter.error}")
        run = ledger.finish_run("2026-03-02")
        report = ledger.report()
        print(f"\nrun {run.run_key}: {run.status.value}")
        for step in report.steps:
            print(
                f"  {step.step:<5} attempts={step.attempts} success={step.success_rate:.0%} "
                f"attempts/stage={step.attempts_per_stage:.2f} p90={step.p90}s"
            )
        print("events:", ", ".join(sorted(set(events))))
        conn.close()


if __name__ == "__main__":
    main()
