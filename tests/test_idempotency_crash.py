"""interlock.idempotency across real processes: races, SIGKILL mid-effect, inbox exactly-once."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import interlock.idempotency as idem
from interlock.idempotency import (
    Claim,
    ClaimLostError,
    RecordState,
    SQLIdempotencyStore,
    migrate,
)

SRC = Path(idem.__file__).resolve().parents[1]
RACERS = 8
RACE_KEYS = 40
KILLS = 30
MESSAGES = 120

# One "zygote" process per test imports the driver once (importing psycopg costs more than
# a second here) and forks a fresh child per worker: every worker is a real process that
# the test kills with SIGKILL. A child's lines start with its pid; the zygote's with "zygote".
ZYGOTE = textwrap.dedent(
    """
    import json, os, random, sys, time, traceback
    from interlock.idempotency import *

    BACKEND, TARGET = sys.argv[1], sys.argv[2]
    if BACKEND == "postgres":
        import psycopg
    else:
        import sqlite3

    def connect():
        if BACKEND == "sqlite":
            return sqlite3.connect(TARGET, timeout=60.0, isolation_level=None)
        return psycopg.connect(TARGET)

    def begin(conn):
        if BACKEND == "sqlite":
            conn.execute("BEGIN IMMEDIATE")

    def q(sql):
        return sql if BACKEND == "sqlite" else sql.replace("?", "%s")

    def say(*words):  # one write(2) per line: lines of different processes never mix
        os.write(1, (" ".join(map(str, (os.getpid(), *words))) + "\\n").encode())

    def tell(*words):
        os.write(1, (" ".join(map(str, ("zygote", *words))) + "\\n").encode())

    def racer(worker, count, barrier):
        keys = [f"key-{i:03d}" for i in range(count)]
        random.Random(worker).shuffle(keys)
        store = SQLIdempotencyStore(connect, lease_seconds=120)
        effects, consumer = connect(), connect()

        @idempotent(store, scope="race", key="key")
        def apply(key, amount):
            cur = effects.cursor()
            cur.execute(q("INSERT INTO effects (scope, key, worker) VALUES ('race', ?, ?)"),
                        (key, worker))
            effects.commit()
            return {"key": key, "amount": amount, "by": worker}

        store.get("race", "warm-up")  # connected before the start
        say("ready")
        os.read(barrier, 1)  # every racer starts at once
        results = {}
        for key in keys:
            while True:
                try:
                    results[key] = apply(key, len(key))
                    break
                except KeyInProgressError:
                    time.sleep(0.001)
            begin(consumer)
            with inbox(consumer, scope="race-inbox", key=key) as entry:
                if entry.is_new:
                    consumer.cursor().execute(
                        q("INSERT INTO effects (scope, key, worker) VALUES ('inbox', ?, ?)"),
                        (key, worker))
            consumer.commit()
        say("result", json.dumps(results))

    def holder(lease):
        store = SQLIdempotencyStore(connect, lease_seconds=lease)
        claim = store.claim("jobs", "job-1", fingerprint="f")
        say("claimed", json.dumps({"token": claim.token, "lease": claim.lease_expires_at}))
        time.sleep(3600)  # mid-effect: killed here

    def consumer(generation, total):
        offset = generation * 1000.0  # each generation lives after the last one's leases
        clock = lambda: time.time() + offset
        conn = connect()
        store = SQLIdempotencyStore(connect, clock=clock, lease_seconds=60, ttl_seconds=1e7)
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM applied")
        done = cur.fetchone()[0]
        conn.commit()
        start = max(0, done - 3)  # the broker redelivers the last unacknowledged messages
        for index in range(start, total):
            message_id = f"m{index:04d}"
            begin(conn)
            say("step begin")
            with inbox(conn, scope="consumer", key=message_id, now=clock(), ttl_seconds=1e7) as e:
                say("step inbox")
                if e.is_new:
                    cur = conn.cursor()
                    cur.execute(q("INSERT INTO applied (message_id) VALUES (?)"), (message_id,))
                    say("step applied")
                    cur.execute(q("UPDATE account SET balance = balance + ?"), (index,))
                    say("step balance")
            conn.commit()
            say("step commit")
            claim = store.claim("notify", message_id)  # an effect outside the database
            say("step claim")
            if claim.claimed:
                if claim.found is RecordState.EXPIRED:
                    say("retake", message_id)
                cur = conn.cursor()
                cur.execute(q("INSERT INTO notified (message_id) VALUES (?)"), (message_id,))
                conn.commit()
                say("step notified")
                store.complete(claim, {"sent": message_id})
                say("step complete")
        say("done")

    def fork(target, *args):
        pid = os.fork()
        if pid == 0:
            try:
                target(*args)
            except BaseException:
                say("error", json.dumps(traceback.format_exc()))
                os._exit(1)
            os._exit(0)
        return pid

    tell("ready")
    barrier_r, barrier_w = os.pipe()
    for line in sys.stdin:
        command, *args = line.split()
        if command == "race":
            pids = [fork(racer, w, int(args[1]), barrier_r) for w in range(int(args[0]))]
            tell("pids", *pids)
        elif command == "go":
            os.write(barrier_w, b"x" * int(args[0]))
        elif command == "holder":
            tell("pid", fork(holder, float(args[0])))
        elif command == "consumer":
            tell("pid", fork(consumer, int(args[0]), int(args[1])))
        elif command == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            tell("exit", args[0], status)
    """
)


class Zygote:
    """Drives the zygote process: fork workers, read their lines, reap them."""

    def __init__(self, backend: str, target: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, backend, target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(SRC)},
        )
        self.pending: list[str] = []
        self.line("zygote ready")

    def send(self, *words: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()

    def line(self, prefix: str) -> str:
        """The next line starting with ``prefix`` (other lines are kept for later)."""
        for index, pending in enumerate(self.pending):
            if pending.startswith(prefix):
                return self.pending.pop(index)
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                assert self.proc.stderr is not None
                raise AssertionError(f"the zygote ended: {self.proc.stderr.read()}")
            line = line.rstrip("\n")
            assert " error " not in line, json.loads(line.split(" error ", 1)[1])
            if line.startswith(prefix):
                return line
            self.pending.append(line)

    def fork(self, *command: object) -> int:
        self.send(*command)
        return int(self.line("zygote pid ").split()[-1])

    def reap(self, pid: int) -> int:
        """Wait for a child; return its wait status."""
        self.send("wait", pid)
        return int(self.line(f"zygote exit {pid} ").split()[-1])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()


def _killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """(connect() for the test, a zygote for its workers) on a migrated database."""
    if request.param == "sqlite":
        path = tmp_path / "crash.db"
        init = sqlite3.connect(path)
        init.execute("PRAGMA journal_mode=WAL")
        init.close()

        def connect() -> Any:
            return sqlite3.connect(path, timeout=60.0)

        target = str(path)
    else:
        pg = request.getfixturevalue("postgres")
        connect, target = pg.connect, pg.conninfo
    conn = connect()
    migrate(conn)
    conn.close()
    zygote = Zygote(request.param, target)
    yield connect, zygote
    zygote.close()


def _execute(connect: Any, *statements: str) -> None:
    conn = connect()
    cursor = conn.cursor()
    for statement in statements:
        cursor.execute(statement)
    conn.commit()
    conn.close()


def _rows(connect: Any, sql: str) -> list[tuple[Any, ...]]:
    conn = connect()
    cursor = conn.cursor()
    cursor.execute(sql)
    rows = [tuple(row) for row in cursor.fetchall()]
    conn.commit()
    conn.close()
    return rows


def test_eight_processes_racing_on_overlapping_keys_run_each_effect_once(database: Any) -> None:
    """8 processes, the same 40 keys in different orders, started together: each effect
    (through `idempotent` and through `inbox`) runs once, and every racer gets its result."""
    connect, zygote = database
    _execute(connect, "CREATE TABLE effects (scope TEXT, key TEXT, worker INTEGER)")
    zygote.send("race", RACERS, RACE_KEYS)
    pids = [int(pid) for pid in zygote.line("zygote pids ").split()[2:]]
    assert len(pids) == RACERS
    for pid in pids:
        zygote.line(f"{pid} ready")
    zygote.send("go", RACERS)
    outputs = [json.loads(zygote.line(f"{pid} result ").split(" ", 2)[2]) for pid in pids]
    assert all(zygote.reap(pid) == 0 for pid in pids)
    effects = _rows(connect, "SELECT scope, key, worker FROM effects")
    counts = Counter((scope, key) for scope, key, _ in effects)
    keys = {f"key-{i:03d}" for i in range(RACE_KEYS)}
    assert {key for scope, key in counts if scope == "race"} == keys
    assert {key for scope, key in counts if scope == "inbox"} == keys
    assert set(counts.values()) == {1}
    ran_by = {key: worker for scope, key, worker in effects if scope == "race"}
    for result in outputs:
        assert set(result) == keys
        for key, value in result.items():
            assert value == {"key": key, "amount": len(key), "by": ran_by[key]}


def test_a_worker_killed_mid_effect_leaves_a_claim_that_is_retaken_after_its_lease(
    database: Any,
) -> None:
    """SIGKILL while holding a claim: IN_PROGRESS until the lease ends, then retaken; the dead
    worker's token can neither complete nor release the new claim."""
    connect, zygote = database
    pid = zygote.fork("holder", 30)
    line = json.loads(zygote.line(f"{pid} claimed ").split(" ", 2)[2])
    os.kill(pid, signal.SIGKILL)
    assert _killed(zygote.reap(pid))
    lease_end = line["lease"]
    store = SQLIdempotencyStore(connect)
    try:
        live = store.claim("jobs", "job-1", fingerprint="f", now=lease_end - 0.5)
        assert live.in_progress
        assert live.lease_expires_at == pytest.approx(lease_end)
        retaken = store.claim("jobs", "job-1", fingerprint="f", now=lease_end)
        assert retaken.claimed
        assert retaken.found is RecordState.EXPIRED
        dead = Claim("jobs", "job-1", RecordState.ABSENT, claimed=True, token=line["token"])
        with pytest.raises(ClaimLostError):
            store.complete(dead, "from the dead", now=lease_end + 1)
        assert store.release(dead) is False
        store.complete(retaken, "done", now=lease_end + 1)
        assert store.claim("jobs", "job-1", now=lease_end + 2).result == "done"
    finally:
        store.close()


def test_inbox_effect_happens_exactly_once_under_random_sigkills(database: Any) -> None:
    """30 consumers SIGKILLed at random moments, then one that finishes: every message is
    applied exactly once (inbox), notified at least once (store), no claim is left stuck."""
    connect, zygote = database
    _execute(
        connect,
        "CREATE TABLE applied (message_id TEXT)",  # no unique key: a double apply would show
        "CREATE TABLE account (balance BIGINT NOT NULL)",
        "INSERT INTO account VALUES (0)",
        "CREATE TABLE notified (message_id TEXT)",
    )
    rng = random.Random(20260601)
    kills = generation = 0
    while kills < KILLS:
        assert generation < 2 * KILLS, "the consumers finished before enough kills"
        pid = zygote.fork("consumer", generation, MESSAGES)
        generation += 1
        for _ in range(rng.randint(1, 30)):  # a random step of a random message
            if zygote.line(f"{pid} ").endswith("done"):
                break
        os.kill(pid, signal.SIGKILL)  # just after that step: mid-transaction or between
        kills += _killed(zygote.reap(pid))
        zygote.pending = [line for line in zygote.pending if not line.startswith(f"{pid} ")]
    last = zygote.fork("consumer", generation, MESSAGES)
    zygote.line(f"{last} done")
    assert zygote.reap(last) == 0
    applied = [row[0] for row in _rows(connect, "SELECT message_id FROM applied")]
    expected = [f"m{i:04d}" for i in range(MESSAGES)]
    assert sorted(applied) == expected  # each exactly once
    assert _rows(connect, "SELECT balance FROM account") == [(sum(range(MESSAGES)),)]
    notified = Counter(row[0] for row in _rows(connect, "SELECT message_id FROM notified"))
    assert set(notified) == set(expected)  # at least once
    store = SQLIdempotencyStore(connect)
    try:
        later = time.time() + (generation + 1) * 1000.0
        for message_id in expected:
            record = store.get("notify", message_id, now=later)
            assert record is not None
            assert record.state is RecordState.COMPLETED
            assert record.result == {"sent": message_id}
    finally:
        store.close()
