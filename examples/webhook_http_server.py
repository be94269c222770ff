"""Receive signed webhooks behind a standard-library HTTP server, each one processed once.

A WebhookReceiver sits behind http.server on a local port, with its delivery keys in an
SQLite file (the store several worker processes would share). The script then plays the
provider: it posts a signed Standard Webhooks delivery, the same delivery again (as a
provider's retry would arrive, freshly signed), a forged one, a delivery whose handler
fails once and is retried, and a delivery that arrives while another worker is still
processing it. It prints the HTTP status the provider gets for each.

Run:  python examples/webhook_http_server.py
"""

from __future__ import annotations

import json
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from interlock.webhook_handler import (
    SQLiteDeliveryStore,
    WebhookDelivery,
    WebhookReceiver,
    sign,
)

# A Standard Webhooks secret: "whsec_" + base64 of the key the provider shows you.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the spec's example secret

processed: list[str] = []
slow_started = threading.Event()
slow_may_finish = threading.Event()
failures_left = {"msg_flaky": 1}


def handle(delivery: WebhookDelivery) -> None:
    """The application's work: runs once per delivery id, after verification."""
    event = json.loads(delivery.body)
    webhook_id = delivery.verified.webhook_id or ""
    if failures_left.get(webhook_id):
        failures_left[webhook_id] -= 1
        raise ConnectionError("the CRM is down")  # -> 500, the provider retries
    if webhook_id == "msg_slow":
        slow_started.set()
        slow_may_finish.wait(timeout=5)
    processed.append(f"{event['type']} ({webhook_id}, attempt {delivery.attempt})")


class WebhookEndpoint(BaseHTTPRequestHandler):
    """POST /webhooks: hand the raw body and headers to the receiver, answer what it says."""

    receiver: WebhookReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        result = self.receiver.receive(body, list(self.headers.items()))
        payload = result.outcome.phrase.encode()  # never result.detail: it is for your logs
        self.send_response(result.status)
        for name, value in result.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep the example's output to what it prints itself."""


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, str | None]:
    """POST like a webhook provider; return (status, response text, Retry-After)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local URL
            return response.status, response.read().decode(), response.headers["Retry-After"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers["Retry-After"]


def delivery(
    webhook_id: str, event_type: str, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    """A signed delivery, as the provider would send it now."""
    body = json.dumps({"type": event_type, "data": {"id": webhook_id}}).encode()
    headers = sign("standard-webhooks", body=body, secret=secret, webhook_id=webhook_id)
    return body, {**headers, "Content-Type": "application/json"}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteDeliveryStore(Path(folder) / "deliveries.db")
        WebhookEndpoint.receiver = WebhookReceiver(
            "standard-webhooks", secret=SECRET, handler=handle, store=store, lease_seconds=30
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), WebhookEndpoint)
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        serving.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks"
        try:

            def show(label: str, body: bytes, headers: dict[str, str]) -> None:
                status, text, retry_after = post(url, body, headers)
                wait = f" (Retry-After: {retry_after})" if retry_after else ""
                print(f"{label:<34} -> {status} {text}{wait}")

            show("signed delivery", *delivery("msg_1", "invoice.paid"))
            show("same delivery, retried", *delivery("msg_1", "invoice.paid"))
            forged_secret = "whsec_" + "Zm9yZ2VkLWtleS0xMjM0NTY3ODkwMTI="
            show("forged delivery", *delivery("msg_2", "invoice.paid", forged_secret))
            show("handler fails", *delivery("msg_flaky", "customer.updated"))
            show("provider retries it", *delivery("msg_flaky", "customer.updated"))

            slow = threading.Thread(
                target=show, args=("slow delivery", *delivery("msg_slow", "order.created"))
            )
            slow.start()
            slow_started.wait(timeout=5)  # a worker is inside the handler, holding the claim
            show("same id while it runs", *delivery("msg_slow", "order.created"))
            slow_may_finish.set()
            slow.join(timeout=5)
        finally:
            server.shutdown()
            server.server_close()
            serving.join(timeout=5)
            store.close()
    print("handler ran for:")
    for line in processed:
        print("  ", line)


if __name__ == "__main__":
    main()
