"""interlock.saga crash tests: a worker killed with SIGKILL at every boundary and mid-step.

Each worker is a fresh process, forked from a "zygote" interpreter (a real subprocess
started once per test, which has imported interlock and the driver, so a kill costs a fork
and not an interpreter start-up). The worker opens its own connections and runs an order
saga (stock, payment, shipping; payment is idempotent) over the SQL log. Every durable log
record and every step's "before effect" and "after effect" moment writes one progress
line and, when it is the k-th, blocks until the parent kills it with SIGKILL. For every k
of a complete run the parent kills a fresh worker there, resumes the saga the way a
service does at start-up (``pending()`` then ``resume()``), and checks from the databases
that the saga is completed or fully compensated, that no effect was applied twice for one
idempotency key, and that the log tells the story.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from interlock.saga import (
    RecordKind,
    SagaStatus,
    SQLSagaLog,
    StepStatus,
    idempotency_key,
    inspect_saga,
)

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    '''
    """The crash-test worker: the order saga, its effects, and progress lines."""
    import os
    import signal
    import sqlite3
    import sys

    from interlock.saga import SagaOrchestrator, SQLSagaLog

    STEPS = (("stock", False), ("payment", True), ("shipping", False))
    STATE = {"count": 0, "kill_at": 0}


    def progress(tag):
        STATE["count"] += 1
        sys.stdout.write(tag + "\\n")
        sys.stdout.flush()
        while STATE["count"] == STATE["kill_at"]:
            signal.pause()  # wait here for SIGKILL


    def connect(backend, where):
        if backend == "sqlite":
            conn = sqlite3.connect(where, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        import psycopg

        return psycopg.connect(where)


    class ProgressLog(SQLSagaLog):
        def append(self, record):
            super().append(record)
            progress(f"log {record.kind.value} {record.step}")


    def build(log, effects_path, notes_path, scenario):
        effects = sqlite3.connect(effects_path, timeout=10, isolation_level=None)

        def note(line):
            fd = os.open(notes_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, (line + "\\n").encode())
            finally:
                os.close(fd)

        def action(name, idempotent):
            def run(ctx):
                key = ctx.idempotency_key
                note(f"action {key} {name}")
                progress(f"in {name}")
                if scenario == "failure" and name == "shipping":
                    raise ConnectionError("carrier down")
                verb = "INSERT OR IGNORE" if idempotent else "INSERT"
                try:
                    effects.execute(f"{verb} INTO effects VALUES (?, ?, ?)", (key, "action", name))
                except sqlite3.IntegrityError:
                    note(f"DUPLICATE {key} {name}")
                    raise
                progress(f"did {name}")
                return f"{name}-ok"

            return run

        def undo(name):
            def run(ctx):
                key = ctx.idempotency_key
                note(f"compensation {key} {name}")
                progress(f"in undo-{name}")
                # Idempotent by key, as compensations must be; a replay is noted.
                cur = effects.execute(
                    "INSERT OR IGNORE INTO effects VALUES (?, ?, ?)", (key, "compensation", name)
                )
                if cur.rowcount == 0:
                    note(f"REPLAYED {key} {name}")
                progress(f"did undo-{name}")

            return run

        saga = SagaOrchestrator("order", log=log, pass_context=True)
        for name, idempotent in STEPS:
            saga.add_step(name, action(name, idempotent), undo(name), idempotent=idempotent)
        return saga


    def run(backend, where, effects_path, notes_path, scenario, saga_id, kill_at, out):
        """One worker run (a fresh forked process): progress lines go to ``out``."""
        sys.stdout = out
        STATE["kill_at"] = kill_at
        saga = build(ProgressLog(connect(backend, where)), effects_path, notes_path, scenario)
        result = saga.execute(saga_id=saga_id)
        progress(f"end {result.status.value}")


    def zygote(backend, where, effects_path, notes_path, scenario):
        """Imports done once; each command forks a fresh worker process and reports its pid.

        Command: ``saga_id kill_at fifo``. Reply: ``pid N``, then ``exit S`` once it is gone.
        """
        if backend == "postgres":
            import psycopg  # noqa: F401 - imported once here, not in every worker
        for line in sys.stdin:
            saga_id, kill_at, fifo = line.split()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    with open(fifo, "w") as out:
                        args = (effects_path, notes_path, scenario, saga_id, int(kill_at), out)
                        run(backend, where, *args)
                except BaseException:
                    code = 1
                os._exit(code)
            print(f"pid {pid}", flush=True)
            _, status = os.waitpid(pid, 0)
            print(f"exit {status}", flush=True)


    if __name__ == "__main__":
        zygote(*sys.argv[1:])
    '''
)


def _load_worker(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"saga_worker_{os.getpid()}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Bench:
    """One backend and scenario: files, the worker, and the checks."""

    def __init__(self, tmp_path: Path, backend: str, where: str, scenario: str) -> None:
        self.backend, self.where, self.scenario = backend, where, scenario
        self.worker_path = tmp_path / "saga_worker.py"
        self.worker_path.write_text(WORKER, encoding="utf-8")
        self.effects = tmp_path / "effects.db"
        self.notes = tmp_path / "notes.txt"
        with sqlite3.connect(self.effects) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, kind TEXT, step TEXT)"
            )
            conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        self.worker = _load_worker(self.worker_path)
        self.worker.progress = lambda tag: None  # the resuming parent is not watched
        self.conn = self.worker.connect(backend, where)
        SQLSagaLog.migrate(self.conn)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.tmp = tmp_path
        self.start()

    def start(self) -> None:
        """The zygote: one interpreter that forks a fresh worker process per run."""
        args = [self.backend, self.where, str(self.effects), str(self.notes), self.scenario]
        self.zygote = subprocess.Popen(
            [sys.executable, str(self.worker_path), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            text=True,
        )

    def stop(self) -> None:
        assert self.zygote.stdin is not None
        assert self.zygote.stdout is not None
        self.zygote.stdin.close()
        self.zygote.wait(timeout=30)
        self.zygote.stdout.close()
        self.conn.close()

    def run(self, saga_id: str, kill_at: int) -> list[str]:
        """Run a fresh worker; after kill_at progress lines SIGKILL it; return the lines."""
        zin, zout = self.zygote.stdin, self.zygote.stdout
        assert zin is not None
        assert zout is not None
        fifo = self.tmp / f"progress-{saga_id}"
        os.mkfifo(fifo)
        zin.write(f"{saga_id} {kill_at} {fifo}\n")
        zin.flush()
        reply = zout.readline().split()
        assert reply[0] == "pid", reply
        pid = int(reply[1])
        lines: list[str] = []
        with fifo.open(encoding="utf-8") as progress:
            while kill_at == 0 or len(lines) < kill_at:
                line = progress.readline()
                if not line:
                    break
                lines.append(line.rstrip("\n"))
            if kill_at:
                os.kill(pid, signal.SIGKILL)
        status = int(zout.readline().split()[1])
        if kill_at:
            assert os.WIFSIGNALED(status), lines
            assert os.WTERMSIG(status) == signal.SIGKILL, lines
        else:
            assert os.WIFEXITED(status), lines
            assert os.WEXITSTATUS(status) == 0, lines
        return lines

    def resume_all(self) -> list[Any]:
        """What a service does at start-up: resume every pending run of its saga."""
        log = SQLSagaLog(self.conn)
        saga = self.worker.build(log, str(self.effects), str(self.notes), self.scenario)
        return [saga.resume(saga_id) for saga_id in saga.pending()]

    def notes_of(self, saga_id: str) -> list[list[str]]:
        keys = self.keys(saga_id)
        lines = self.notes.read_text(encoding="utf-8").splitlines() if self.notes.exists() else []
        return [line.split() for line in lines if line.split()[1] in keys]

    def keys(self, saga_id: str) -> dict[str, tuple[str, str]]:
        out = {}
        for name, _ in self.worker.STEPS:
            out[idempotency_key(saga_id, name)] = ("action", name)
            out[idempotency_key(saga_id, name, compensate=True)] = ("compensation", name)
        return out

    def effects_of(self, saga_id: str) -> set[tuple[str, str]]:
        keys = self.keys(saga_id)
        with sqlite3.connect(self.effects) as conn:
            rows = conn.execute("SELECT key, kind, step FROM effects").fetchall()
        conn.close()
        return {(kind, step) for key, kind, step in rows if key in keys}


def _check(bench: Bench, saga_id: str, killed_at: str) -> SagaStatus:
    """The invariants after a kill at the progress line ``killed_at`` and a resume."""
    log = SQLSagaLog(bench.conn)
    run = inspect_saga(log, saga_id)
    assert run.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED), (killed_at, run)
    assert saga_id not in log.pending()
    effects = bench.effects_of(saga_id)
    actions = {step for kind, step in effects if kind == "action"}
    undone = {step for kind, step in effects if kind == "compensation"}
    if run.status is SagaStatus.COMPLETED:
        assert actions == {"stock", "payment", "shipping"}, killed_at
        assert undone == set(), killed_at
        assert all(s.status is StepStatus.SUCCEEDED for s in run.steps)
    else:
        assert actions <= undone, (killed_at, effects)  # fully compensated
        by_name = {s.name: s for s in run.steps}
        for step in actions:
            assert by_name[step].status is StepStatus.COMPENSATED, (killed_at, by_name[step])
    # No effect twice for one idempotency key; invocations of a non-idempotent action: once.
    notes = bench.notes_of(saga_id)
    assert not [n for n in notes if n[0] == "DUPLICATE"], (killed_at, notes)
    words = killed_at.split()
    inside = words[0] in ("in", "did") or words[:2] == ["log", "compensation_started"]
    inside |= words[:2] == ["log", "step_started"]
    for kind, key, name in (n for n in notes if n[0] in ("action", "compensation")):
        count = sum(1 for n in notes if n[:2] == [kind, key])
        if kind == "action" and name != "payment":
            assert count == 1, (killed_at, notes)
        else:
            # Re-run only when this kill left exactly this call "started, not finished".
            assert count <= (2 if inside and name in killed_at else 1), (killed_at, notes)
    if any(n[0] == "REPLAYED" for n in notes):
        assert (inside and "undo" in killed_at) or "compensation_started" in killed_at, killed_at
    # The log tells the story: an unfinished call is on record as interrupted.
    if words[0] == "in" and "shipping" not in killed_at and bench.scenario == "success":
        errors = [r.error or "" for r in run.history if r.kind is RecordKind.STEP_FAILED]
        errors += [r.error or "" for r in run.history if r.kind is RecordKind.COMPENSATION_FAILED]
        assert any("interrupted" in e for e in errors), (killed_at, run.history)
    return run.status


def _crash_every_boundary(bench: Bench) -> int:
    full = bench.run(f"{bench.scenario}-full", 0)
    assert full[-1] == ("end completed" if bench.scenario == "success" else "end compensated")
    moments = full[:-1]
    for k, moment in enumerate(moments, start=1):
        saga_id = f"{bench.scenario}-{k}"
        lines = bench.run(saga_id, k)
        assert lines[-1] == moment  # deterministic: the same run up to the kill
        resumed = bench.resume_all()
        finished = moment.startswith(("log saga_completed", "log saga_compensated"))
        assert [r.saga_id for r in resumed] == ([] if finished else [saga_id]), moment
        _check(bench, saga_id, moment)
    return len(moments)


@pytest.mark.parametrize("scenario", ["success", "failure"])
def test_sigkill_at_every_boundary_and_mid_step_on_sqlite(tmp_path: Path, scenario: str) -> None:
    """SQLite log: a SIGKILL at each of the run's moments, then resume: exact end state."""
    bench = Bench(tmp_path, "sqlite", str(tmp_path / "saga.db"), scenario)
    try:
        kills = _crash_every_boundary(bench)
    finally:
        bench.stop()
    assert kills == (14 if scenario == "success" else 22)


@pytest.mark.parametrize("scenario", ["success", "failure"])
def test_sigkill_at_every_boundary_and_mid_step_on_postgres(
    tmp_path: Path, scenario: str, postgres: Any
) -> None:
    """PostgreSQL log: the same kills and checks with the worker on a real server."""
    bench = Bench(tmp_path, "postgres", postgres.conninfo, scenario)
    try:
        kills = _crash_every_boundary(bench)
    finally:
        bench.stop()
    assert kills == (14 if scenario == "success" else 22)
