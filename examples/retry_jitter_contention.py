"""Why full jitter is interlock.retry's default: N clients contending for one row.

A reproduction, in simulated time, of the experiment in M. Brooker's "Exponential Backoff
And Jitter" (AWS Architecture Blog, 2015). N clients start together and each wants to
update the same record under optimistic concurrency control: a client reads the record's
version, then writes conditionally on that version. A write fails when another client's
write landed in between; the failing client waits (exponential backoff from 10 ms, capped
at 1 s, with the jitter under test) and tries again, until every client has written once.
The network delay of each message is |normal(10 ms, 4 ms)|.

Every schedule is computed by interlock.retry.Backoff with a seeded random source, so the
output is the same on every run. The table shows, averaged over a few seeds, how many
write attempts ("calls") the clients made in total and when the last client finished.
Without jitter the clients keep colliding in lock-step; with jitter they spread out.

Run:  python examples/retry_jitter_contention.py
"""

from __future__ import annotations

import heapq
import random
import statistics

from interlock.retry import Backoff, Jitter

NETWORK_MEAN, NETWORK_SD = 0.010, 0.004  # seconds per message
SEEDS = (1, 2, 3, 4, 5)
CLIENT_COUNTS = (10, 100, 200)
READ, WRITE, REPLY = 0, 1, 2


def simulate(clients: int, jitter: Jitter, seed: int) -> tuple[int, float]:
    """Run one contention; return (write attempts, seconds until the last success)."""
    backoff = Backoff(initial_seconds=0.010, max_seconds=1.0, jitter=jitter)
    rng = random.Random(seed)  # noqa: S311 - a simulation, reproducible per seed

    def net() -> float:
        return abs(rng.normalvariate(NETWORK_MEAN, NETWORK_SD))

    version = 0
    calls = 0
    finished = 0.0
    failures = [0] * clients  # failed writes so far, per client
    previous: list[float | None] = [None] * clients  # last wait, for decorrelated jitter
    seen = [0] * clients  # the version each client read
    # Events: (time, sequence, kind, client). All clients send their first read at 0.
    events = [(net(), c, READ, c) for c in range(clients)]
    heapq.heapify(events)
    sequence = clients
    while events:
        now, _, kind, client = heapq.heappop(events)
        sequence += 1
        if kind == READ:  # the read reaches the server; the reply travels back
            seen[client] = version
            heapq.heappush(events, (now + net() + net(), sequence, WRITE, client))
        elif kind == WRITE:  # the conditional write reaches the server
            calls += 1
            if seen[client] == version:
                version += 1
                finished = max(finished, now + net())
            else:  # conflict: the reply comes back, then the client backs off
                wait = backoff.wait_seconds_for_attempt(
                    failures[client], previous=previous[client], rng=rng
                )
                failures[client] += 1
                previous[client] = wait
                heapq.heappush(events, (now + net() + wait, sequence, REPLY, client))
        else:  # the backoff is over: read again
            heapq.heappush(events, (now + net(), sequence, READ, client))
    return calls, finished


def main() -> None:
    """Print one row per jitter and client count: mean calls and completion time."""
    print(f"{'jitter':<13}{'clients':>8}{'calls':>10}{'calls/client':>14}{'done (s)':>10}")
    results: dict[tuple[Jitter, int], tuple[float, float]] = {}
    for clients in CLIENT_COUNTS:
        for jitter in (Jitter.NONE, Jitter.FULL, Jitter.EQUAL, Jitter.DECORRELATED):
            runs = [simulate(clients, jitter, seed) for seed in SEEDS]
            calls = statistics.fmean(r[0] for r in runs)
            done = statistics.fmean(r[1] for r in runs)
            results[jitter, clients] = calls, done
            print(
                f"{jitter.value:<13}{clients:>8}{calls:>10.0f}{calls / clients:>14.1f}{done:>10.3f}"
            )
        print()
    largest = CLIENT_COUNTS[-1]
    none_calls, none_done = results[Jitter.NONE, largest]
    full_calls, full_done = results[Jitter.FULL, largest]
    jittered = (Jitter.FULL, Jitter.EQUAL, Jitter.DECORRELATED)
    fewest = min(results[j, largest][0] for j in jittered)
    fastest = min(results[j, largest][1] for j in jittered)
    print(
        f"With {largest} clients, no jitter makes {none_calls / full_calls:.1f}x the calls of "
        f"full jitter and takes {none_done / full_done:.1f}x as long."
    )
    print(
        f"Full jitter is within {100 * (full_calls / fewest - 1):.0f}% of the fewest calls and "
        f"{100 * (full_done / fastest - 1):.0f}% of the fastest completion of the jittered "
        "schedules,"
    )
    print(
        "with a formula that needs no per-client state (decorrelated jitter needs each "
        "client's previous wait): hence the default."
    )


if __name__ == "__main__":
    main()
