"""Four worker processes share one circuit breaker through an SQLite file: one probe in total.

A web server or task queue often runs several worker processes on one host. This script
starts four real worker processes that each build a ``CircuitBreaker`` named
``"billing"`` on the same ``SQLiteBreakerStore`` file:

1. the workers take turns calling a billing service that is down; failures from all of
   them add up, so the shared breaker opens after three failures in total and every
   worker then sees it open;
2. after the recovery timeout, the four workers are released together (a pipe-based
   barrier) while the service is still down: exactly one of them gets the half-open probe,
   the three others are rejected at once;
3. the probe reports success and every worker sees the breaker closed.

The clock is a value the parent passes to the workers, so the script is deterministic and
never sleeps.

Run:  python examples/circuit_breaker_shared_workers.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import interlock

WORKER = """
import sys
from interlock.circuit_breaker import CircuitBreaker, CircuitOpenError, SQLiteBreakerStore

now = [0.0]
store = SQLiteBreakerStore(sys.argv[1])
billing = CircuitBreaker(
    "billing", failure_threshold=3, recovery_timeout=30.0, clock=lambda: now[0], store=store
)
permit = None


def down():
    raise ConnectionError("billing is down")


for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    if command == "time":
        now[0] = float(argument)
        answer = "ok"
    elif command == "call":
        try:
            billing.execute(down)
        except ConnectionError:
            answer = "failed (ConnectionError)"
        except CircuitOpenError as exc:
            answer = f"rejected ({exc.state.value})"
    elif command == "acquire":
        try:
            permit = billing.acquire()
            answer = "probe" if permit.probe else "closed permit"
        except CircuitOpenError as exc:
            answer = f"rejected ({exc.state.value})"
    elif command == "report":
        if permit is not None:
            permit.success()
        answer = "reported"
    elif command == "state":
        answer = billing.state.value
    print(answer, flush=True)
store.close()
"""


class Worker:
    """One worker process, driven line by line over its stdin and stdout."""

    def __init__(self, number: int, database: Path, source: Path) -> None:
        self.number = number
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", WORKER, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(source)},
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the worker's pipes did not open")
        self.stdin, self.stdout = stdin, stdout

    def send(self, command: str) -> None:
        self.stdin.write(command + "\n")
        self.stdin.flush()

    def answer(self) -> str:
        return self.stdout.readline().strip()

    def ask(self, command: str) -> str:
        self.send(command)
        return self.answer()

    def stop(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=10)
        self.stdout.close()


def broadcast(workers: list[Worker], command: str) -> list[str]:
    """Send to every worker first, then collect: they all act at (nearly) the same time."""
    for worker in workers:
        worker.send(command)
    return [worker.answer() for worker in workers]


def main() -> None:
    source = Path(interlock.__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "breakers.db"
        workers = [Worker(number, database, source) for number in range(1, 5)]
        try:
            broadcast(workers, "time 0")
            print("1. the billing service is down; workers take turns calling it")
            for worker in [*workers, workers[0]]:
                print(f"   worker {worker.number}: {worker.ask('call')}")
            print(f"   states seen by the workers: {broadcast(workers, 'state')}")

            print("2. 30 s later, all four workers try at once")
            broadcast(workers, "time 30")
            answers = broadcast(workers, "acquire")  # which worker wins varies from run to run
            for answer in sorted(set(answers)):
                print(f"   {answers.count(answer)} x {answer}")

            print("3. the probe succeeds")
            broadcast(workers, "report")
            print(f"   states seen by the workers: {broadcast(workers, 'state')}")
        finally:
            for worker in workers:
                worker.stop()


if __name__ == "__main__":
    main()
