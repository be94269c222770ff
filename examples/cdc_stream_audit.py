"""Audit a stream of Debezium change events without logging row values.

The script reads PostgreSQL change events as JSON lines, the form a Kafka console consumer
or Debezium Server's file sink prints with schemas disabled: an insert, an update, a delete
and the tombstone that follows it, a transaction END marker, and one line a crashed
producer cut short. For each record it prints the deterministic event id, the operation,
the stream position and the changed fields, then the audit record with the e-mail column
masked. The bad line is reported with its number, and the lines after it are still read.

Run:  python examples/cdc_stream_audit.py
"""

from __future__ import annotations

import io
import json

from interlock.cdc_event import CDCParseError, CDCTransactionEvent, iter_jsonl

STREAM = r"""
{"before": null, "after": {"id": 7, "name": "Alice", "email": "alice@example.com", "plan": "free"}, "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "shop", "ts_ms": 1767225600128, "snapshot": "false", "db": "shop", "sequence": "[\"24023040\", \"24023128\"]", "schema": "public", "table": "customers", "txId": 555, "lsn": 24023128, "xmin": null}, "transaction": {"id": "555:24023128", "total_order": 1, "data_collection_order": 1}, "op": "c", "ts_ms": 1767225601128, "ts_us": 1767225601128417, "ts_ns": 1767225601128417088}
{"before": {"id": 7, "name": "Alice", "email": "alice@example.com", "plan": "free"}, "after": {"id": 7, "name": "Alice", "email": "alice@example.org", "plan": "pro"}, "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "shop", "ts_ms": 1767225600200, "snapshot": "false", "db": "shop", "sequence": "[\"24023160\", \"24023200\"]", "schema": "public", "table": "customers", "txId": 556, "lsn": 24023200, "xmin": null}, "transaction": {"id": "556:24023200", "total_order": 1, "data_collection_order": 1}, "op": "u", "ts_ms": 1767225601200, "ts_us": 1767225601200417, "ts_ns": 1767225601200417088}
{"before": {"id": 7, "name": "Alice", "email": "alice@example.org", "plan": "pro"}, "after": {"id": 7, "name": "Ali
{"before": {"id": 7, "name": "Alice", "email": "alice@example.org", "plan": "pro"}, "after": null, "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "shop", "ts_ms": 1767225600344, "snapshot": "false", "db": "shop", "sequence": "[\"24023304\", \"24023344\"]", "schema": "public", "table": "customers", "txId": 557, "lsn": 24023344, "xmin": null}, "transaction": {"id": "557:24023344", "total_order": 1, "data_collection_order": 1}, "op": "d", "ts_ms": 1767225601344, "ts_us": 1767225601344417, "ts_ns": 1767225601344417088}
null
{"status": "END", "id": "557:24023344", "ts_ms": 1767225601350, "event_count": 1, "data_collections": [{"data_collection": "public.customers", "event_count": 1}]}
"""  # noqa: E501 - one change event per line, as the stream carries them


def report(problem: CDCParseError) -> None:
    """Called by iter_jsonl for a bad line; reading goes on."""
    print(f"line {problem.line} skipped: {problem.path}: {problem.rule}")


def main() -> None:
    """Read the stream and print one block per record; bad lines are reported in place."""
    for record in iter_jsonl(io.StringIO(STREAM.lstrip("\n")), on_error=report):
        if isinstance(record, CDCTransactionEvent):
            print(f"transaction {record.status.value} {record.id}: {record.event_count} event(s)")
            continue
        print(f"{record.event_id}  {record.operation.value:<9} {record.position}")
        if record.changed_fields():
            print(f"    changed: {', '.join(sorted(record.changed_fields()))}")
        audit = record.to_audit_dict(include_values=True, mask={"email"})
        print(f"    audit: {json.dumps(audit, sort_keys=True)}")


if __name__ == "__main__":
    main()
