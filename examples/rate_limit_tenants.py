"""Per-tenant rate limits and a bulkhead in front of a slow ERP, on simulated time.

Part 1 replays ten simulated seconds of API traffic from three tenants against one
``RateLimiter`` keyed by tenant (5 requests/s, bursts of 10): "acme" hammers the API every
10 ms, "globex" sends a steady 4/s, "initech" sends nothing for five seconds and then 30
requests at once. Refused requests get the exact Retry-After a server would send. Acme,
with saturated demand, gets exactly floor(5 * 10) + 10 = 60 requests through.

Part 2 puts a ``Bulkhead`` of two slots in front of an ERP call. Two worker threads hold
both slots; a third worker is refused at once; a fourth queues and gets the slot the
moment one is released. No real time passes: the clock is a number, the threads are
coordinated with a barrier and events.

Run:  python examples/rate_limit_tenants.py
"""

from __future__ import annotations

import math
import threading

from interlock.rate_limit import Bulkhead, BulkheadFullError, RateLimiter

MS = 1_000_000  # nanoseconds


def rate_limits() -> None:
    """Ten simulated seconds of traffic from three tenants through one keyed limiter."""
    now = [0]
    limiter = RateLimiter(5, per=1.0, burst=10, clock_ns=lambda: now[0])
    requests: list[tuple[int, str]] = []
    requests += [(t * 10 * MS, "acme") for t in range(1001)]  # every 10 ms, 0 to 10 s
    requests += [(t * 250 * MS, "globex") for t in range(41)]  # 4/s
    requests += [(5_000 * MS, "initech")] * 30  # a burst at t = 5 s
    requests.sort()

    admitted: dict[str, int] = {}
    refused: dict[str, int] = {}
    first_refusal: dict[str, tuple[int, float]] = {}
    for at, tenant in requests:
        now[0] = at
        decision = limiter.try_acquire(tenant)
        if decision:
            admitted[tenant] = admitted.get(tenant, 0) + 1
        else:
            refused[tenant] = refused.get(tenant, 0) + 1
            first_refusal.setdefault(tenant, (at, decision.retry_after))

    print("Part 1: 5 requests/s per tenant, bursts of 10, ten simulated seconds")
    for tenant in ("acme", "globex", "initech"):
        line = (
            f"  {tenant:8} admitted {admitted.get(tenant, 0):3}, refused {refused.get(tenant, 0):3}"
        )
        if tenant in first_refusal:
            at, wait = first_refusal[tenant]
            line += f"; first 429 at {at / 1e9:.2f} s with Retry-After {math.ceil(wait)} ({wait} s)"
        print(line)
    expected = math.floor(5 * 10) + 10
    exact = admitted["acme"] == expected
    print(f"  acme, saturated for 10 s: floor(5 * 10) + 10 = {expected}: {exact}")
    print(f"  buckets held now: {limiter.keys_tracked}")


def bulkhead() -> None:
    """Two slots in front of a slow ERP call; a third caller is refused, a fourth queues."""
    erp = Bulkhead(2, name="erp")
    both_inside = threading.Barrier(3)
    finish = [threading.Event(), threading.Event()]

    def slow_erp_call(worker: int) -> None:
        with erp:
            both_inside.wait()  # proves the two workers are inside at the same time
            finish[worker].wait()

    holders = [threading.Thread(target=slow_erp_call, args=(w,)) for w in (0, 1)]
    for thread in holders:
        thread.start()
    both_inside.wait()

    print("Part 2: a bulkhead of 2 slots in front of the ERP")
    print(f"  in flight: {erp.metrics().in_flight}")
    try:
        erp.acquire()  # the default: no waiting when full
    except BulkheadFullError as exc:
        print(f"  a third caller is refused: {exc}")

    queued = threading.Event()
    got_slot = threading.Event()

    def patient_worker() -> None:
        queued.set()
        erp.acquire(timeout=None)  # queue as long as it takes
        got_slot.set()
        erp.release()

    patient = threading.Thread(target=patient_worker)
    patient.start()
    queued.wait()
    while erp.metrics().waiting == 0:  # until worker 3 is in the queue
        got_slot.wait(0.001)
    print(f"  a fourth caller (worker 3) queues: waiting = {erp.metrics().waiting}")
    finish[0].set()  # worker 0 leaves: its slot goes straight to worker 3
    got_slot.wait()
    print("  worker 3 got the slot worker 0 released")
    finish[1].set()
    for thread in (*holders, patient):
        thread.join()
    m = erp.metrics()
    print(
        f"  metrics: in_flight={m.in_flight} max_in_flight={m.max_in_flight} "
        f"admitted={m.admitted} rejected={m.rejected} waited={m.waited}"
    )


def main() -> None:
    rate_limits()
    print()
    bulkhead()


if __name__ == "__main__":
    main()
