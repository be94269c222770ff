"""Send an event envelope as a CloudEvents HTTP request and read it back on the other side.

A tiny receiver runs on a local port (standard library http.server). It answers the first
request with 503, so the sender records a failure and schedules a retry; the retry goes out
in binary mode (ce- headers) and is accepted. The same event is then sent in structured mode
(application/cloudevents+json). The receiver parses whichever mode arrives with
EventEnvelope.from_http and answers 202, or 400 naming the rule a bad event broke.

Run:  python examples/cloudevents_over_http.py
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from interlock.event_envelope import CloudEventError, EventEnvelope, RetryPolicy

received: list[EventEnvelope] = []
unavailable_once = threading.Event()


class Receiver(BaseHTTPRequestHandler):
    """Accepts CloudEvents in any HTTP content mode."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not unavailable_once.is_set():
            unavailable_once.set()
            self.send_response(503)
            self.end_headers()
            return
        try:
            event = EventEnvelope.from_http(list(self.headers.items()), body)
        except CloudEventError as exc:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(str(exc).encode())
            return
        received.append(event)
        self.send_response(202)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep the example's output to what it prints itself."""


def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """POST and return (status, response text)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local URL
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def main() -> None:
    """Run the receiver, send the event both ways, show what arrived."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/events"

    envelope = EventEnvelope(
        "ord-1001-created",
        "com.example.order.created",
        "/storefront/orders",
        {"order_id": "1001", "total": "49.90", "currency": "EUR", "customer": "Zoë"},
        correlation_id="checkout-7f3a",
        created_at=datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc),
        retry_policy=RetryPolicy(max_attempts=5, backoff_seconds=2),
        subject="orders/1001",
    )

    try:
        status = 0
        while status != 202:
            envelope.mark_dispatched()
            headers, body = envelope.to_http()
            status, _ = post(url, headers, body)
            print(f"attempt {envelope.attempt_count} (binary mode) => HTTP {status}")
            if status != 202:
                envelope.mark_failed(reason=f"HTTP {status}")
                wait = envelope.next_retry_wait_seconds()
                print(f"   {envelope.status.value}: next attempt in {wait} s")
        envelope.mark_acknowledged()
        print("--- the accepted binary-mode request")
        for name, value in headers.items():
            print(f"{name}: {value}")
        print(body.decode())

        headers, body = envelope.to_http(structured=True)
        status, _ = post(url, headers, body)
        print(f"--- the same event in structured mode => HTTP {status}")
        print(f"content-type: {headers['content-type']}")
        print(body.decode())

        status, text = post(url, {"content-type": "application/json", "ce-id": "x"}, b"{}")
        print(f"--- a message without ce-specversion => HTTP {status}: {text}")
    finally:
        server.shutdown()
        server.server_close()

    binary, structured = received
    # Binary mode states the implied JSON media type explicitly, as the spec asks.
    sent = envelope.to_cloudevent()
    if binary.to_cloudevent() != {**sent, "datacontenttype": "application/json"}:
        raise SystemExit("binary mode changed the event")
    if structured.to_cloudevent() != sent:
        raise SystemExit("structured mode changed the event")
    print(f"--- receiver got {len(received)} events, both equal to the one sent:")
    print(f"    {binary.event_id} {binary.event_type} payload={binary.payload}")
    envelope.mark_processed()
    print("--- sender-side history")
    for step in envelope.history:
        print(f"    {step.source.value:>12} -> {step.target.value:<12} {step.reason}")
    print(envelope.to_audit_line())


if __name__ == "__main__":
    main()
