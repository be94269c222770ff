"""Crash and concurrency tests for interlock.ledger: SIGKILLed workers, 4 processes per backend."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from interlock.ledger import (
    AttemptOutcome,
    Dedup,
    ItemStatus,
    Ledger,
    ProcessDefinition,
    RetryPolicy,
    SQLLedgerStore,
    Step,
    connect_sqlite,
    migrate,
    utc_now,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")
KILLS = 10  # SIGKILLed workers per backend
ITEMS = 20  # items x 2 steps = 40 stages
WORKERS = 4  # concurrent processes per backend

PROCESS = ProcessDefinition(
    "batch",
    (
        Step("extract", retry=RetryPolicy(max_attempts=None)),
        Step("load", retry=RetryPolicy(max_attempts=None)),
    ),
    dedup=Dedup.fields("n"),
)

CHILD_PRELUDE = """
import json, sys
from interlock.ledger import *
backend, target, worker, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if backend == "sqlite":
    conn = connect_sqlite(target)
else:
    import psycopg
    conn = psycopg.connect(target)
ledger = Ledger(SQLLedgerStore(conn), lease_seconds=lease)
ledger.define(ProcessDefinition("batch", (
    Step("extract", retry=RetryPolicy(max_attempts=None)),
    Step("load", retry=RetryPolicy(max_attempts=None))), dedup=Dedup.fields("n")))
"""

# Claims a stage, says so, then waits for "go" on stdin before completing it: the parent
# SIGKILLs it while it holds the lease (mid-stage), or right after "go" (racing the commit).
CRASH_CHILD = (
    CHILD_PRELUDE
    + """
while True:
    claim = ledger.claim("batch", worker=worker)
    if claim is None:
        print("idle", flush=True)
        break
    print("claimed", claim.stage.id, flush=True)
    if not sys.stdin.readline():
        break
    ledger.complete(claim)
    print("done", flush=True)
"""
)

# Waits for "go" (a barrier across processes), then works until nothing is claimable.
WORKER_CHILD = (
    CHILD_PRELUDE
    + """
print("ready", flush=True)
sys.stdin.readline()
done = lost = 0
while (claim := ledger.claim("batch", worker=worker)) is not None:
    try:
        ledger.complete(claim)
        done += 1
    except LeaseLostError:
        lost += 1
print(json.dumps({"done": done, "lost": lost}), flush=True)
"""
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def seed(conn: Any) -> Ledger:
    migrate(conn)
    ledger = Ledger(SQLLedgerStore(conn), lease_seconds=60)
    ledger.define(PROCESS)
    for n in range(ITEMS):
        ledger.start_or_resume("batch", {"n": n})
    return ledger


def check_invariants(ledger: Ledger) -> Counter[AttemptOutcome | None]:
    """Every item succeeded; every stage advanced once; no attempt is missing or left open."""
    outcomes: Counter[AttemptOutcome | None] = Counter()
    with ledger.store.transaction():
        item_ids = [i for i in range(1, 10 * ITEMS) if ledger.store.get_item(i) is not None]
    assert len(item_ids) == ITEMS
    for item_id in item_ids:
        assert ledger.get_item(item_id).status is ItemStatus.SUCCEEDED
        attempts = ledger.attempts(item_id)
        outcomes.update(a.outcome for a in attempts)
        for stage in ledger.stages(item_id):
            mine = [a for a in attempts if a.stage_id == stage.id]
            assert [a.attempt_no for a in mine] == list(range(1, stage.attempts + 1))
            assert [a.outcome for a in mine].count(AttemptOutcome.SUCCESS) == 1
            assert all(a.outcome is not None for a in mine)
            chain = ledger.history("stage", stage.id)
            assert [c.new for c in chain].count("succeeded") == 1
            assert [(c.old, c.new) for c in chain].count(("running", "succeeded")) == 1
    assert outcomes[None] == 0
    return outcomes


def crash_and_recover(backend: str, target: str, ledger: Ledger) -> None:
    rng = random.Random(8)
    held, raced = 0, 0
    for k in range(KILLS):
        child = spawn(CRASH_CHILD, backend, target, f"victim-{k}", "60")
        assert child.stdin is not None
        assert child.stdout is not None
        racing = k % 3 == 2  # every third kill races the commit instead of a held lease
        for _ in range(rng.randint(0, 2)):  # a few stages done properly first
            assert child.stdout.readline().startswith("claimed")
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"
        assert child.stdout.readline().startswith("claimed")
        if racing:
            child.stdin.write("go\n")
            child.stdin.flush()
            raced += 1
        else:
            held += 1
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        child.stdin.close()
        child.stdout.close()
    # After the leases (60 s) expire, a survivor with a clock past them finishes everything.
    later = Ledger(ledger.store, clock=lambda: utc_now() + timedelta(seconds=61), lease_seconds=60)
    later.define(PROCESS)
    while (claim := later.claim("batch", worker="survivor")) is not None:
        later.complete(claim)
    outcomes = check_invariants(later)
    assert held <= outcomes[AttemptOutcome.ABANDONED] <= held + raced
    assert outcomes[AttemptOutcome.SUCCESS] == 2 * ITEMS


def test_sigkilled_workers_sqlite(tmp_path: Path) -> None:
    """10 workers SIGKILLed mid-stage on SQLite: after the leases nothing is lost or doubled."""
    path = str(tmp_path / "crash.db")
    conn = connect_sqlite(path)
    crash_and_recover("sqlite", path, seed(conn))
    conn.close()


def test_sigkilled_workers_postgres(postgres: Any) -> None:
    """10 workers SIGKILLed mid-stage on PostgreSQL: nothing is lost or doubled."""
    conn = postgres.connect()
    crash_and_recover("postgres", postgres.conninfo, seed(conn))
    conn.close()


def run_workers(backend: str, target: str, ledger: Ledger, lease: str) -> None:
    children = [spawn(WORKER_CHILD, backend, target, f"w{i}", lease) for i in range(WORKERS)]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    for child in children:  # release them together
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=120)
            assert child.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    # A survivor finishes whatever a worker lost to a takeover and nobody re-claimed.
    later = Ledger(ledger.store, clock=lambda: utc_now() + timedelta(seconds=61), lease_seconds=60)
    later.define(PROCESS)
    while (claim := later.claim("batch", worker="survivor")) is not None:
        later.complete(claim)
    outcomes = check_invariants(later)
    lost = sum(r["lost"] for r in results)
    # Each refused completion is a takeover the ledger recorded as an ABANDONED attempt.
    assert lost <= outcomes[AttemptOutcome.ABANDONED]
    assert sum(r["done"] for r in results) <= 2 * ITEMS == outcomes[AttemptOutcome.SUCCESS]


@pytest.mark.parametrize("lease", ["60", "0.05"])
def test_four_processes_on_one_sqlite_ledger(tmp_path: Path, lease: str) -> None:
    """4 processes on one SQLite file (long and tiny leases): each stage advances once."""
    path = str(tmp_path / "workers.db")
    conn = connect_sqlite(path)
    run_workers("sqlite", path, seed(conn), lease)
    conn.close()


@pytest.mark.parametrize("lease", ["60", "0.05"])
def test_four_processes_on_postgres(postgres: Any, lease: str) -> None:
    """4 processes on PostgreSQL (SKIP LOCKED, version checks): each stage advances exactly once."""
    conn = postgres.connect()
    run_workers("postgres", postgres.conninfo, seed(conn), lease)
    conn.close()
