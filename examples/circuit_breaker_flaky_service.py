"""Protect callers of a flaky HTTP service with a circuit breaker, and count what reaches it.

A local stdlib HTTP server on 127.0.0.1 plays a dependency that goes down (HTTP 503) and
later recovers. A client guarded by ``interlock.circuit_breaker`` calls it:

1. while the service is down, three real failures open the breaker, and the next calls
   are rejected without a request reaching the server;
2. when the recovery timeout has passed, 16 threads call at the same moment while the
   service is still down: exactly one probe request reaches the server, it fails, and the
   breaker re-opens for twice as long;
3. once the service is back, one probe closes the breaker and calls flow again.

Time is a simulated clock the script moves forward, so it runs in well under a second and
prints the same thing every time.

Run:  python examples/circuit_breaker_flaky_service.py
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from interlock.circuit_breaker import CircuitBreaker, CircuitOpenError


class Service:
    """What the fake dependency knows: whether it is up, and how many requests it saw."""

    up = True
    requests = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with Service.lock:
            Service.requests += 1
        status = 200 if Service.up else 503
        body = b'{"name": "Acme"}' if Service.up else b"down"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Keep the example's output to what it demonstrates."""


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/accounts/001"
    clock = SimulatedClock()
    breaker = CircuitBreaker(
        "accounts-api",
        failure_threshold=3,
        recovery_timeout=30.0,
        recovery_multiplier=2.0,
        expected_exceptions=(urllib.error.URLError, TimeoutError),  # HTTPError is a URLError
        clock=clock,
    )

    @breaker.call
    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body

    def attempt() -> str:
        try:
            return fetch().decode()
        except CircuitOpenError as exc:
            return f"rejected ({exc.state.value}, retry in {exc.remaining:.0f}s)"
        except urllib.error.HTTPError as exc:
            return f"failed: HTTP {exc.code}"

    try:
        print("1. the service goes down")
        Service.up = False
        for number in range(1, 6):
            print(f"   call {number}: {attempt():40} server saw {Service.requests} requests")

        print("2. 30 s later, 16 threads call at once; the service is still down")
        clock.now += 30.0
        start = threading.Barrier(16)
        outcomes: list[str] = []

        def worker() -> None:
            start.wait()
            outcomes.append(attempt().split(" (")[0])  # rejected while half-open or re-opened

        before = Service.requests
        threads = [threading.Thread(target=worker) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"   requests that reached the server: {Service.requests - before}")
        for outcome in sorted(set(outcomes)):
            print(f"   {outcomes.count(outcome):2} x {outcome}")
        print(f"   open for {breaker.metrics().open_duration:.0f}s now (doubled)")

        print("3. the service recovers; 60 s later one probe closes the breaker")
        Service.up = True
        clock.now += 60.0
        for number in range(1, 4):
            print(f"   call {number}: {attempt():40} state {breaker.state.value}")
        metrics = breaker.metrics()
        print(
            f"totals: {metrics.successes} successes, {metrics.failures} failures,"
            f" {metrics.rejected} rejected, {metrics.trips} trips,"
            f" {Service.requests} requests reached the server"
        )
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
