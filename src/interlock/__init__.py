# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""interlock: reliable-integration patterns, one standard-library-only module per pattern.

Import the module you need; importing ``interlock`` itself loads no pattern module.

Modules:

- ``interlock.event_envelope``: an event envelope with a validated delivery lifecycle,
  a retry policy, and a CloudEvents 1.0.2 codec (JSON format, JSON batch, HTTP binding).
- ``interlock.sync_boundary``: field-level authority between two systems of record,
  conflict detection and three-way sync plans.
- ``interlock.cdc_event``: Debezium change events read into immutable values: tombstones,
  truncates, messages and transaction markers; deterministic ids; stream positions.
- ``interlock.kafka_envelope``: Kafka records without a client: the CloudEvents Kafka
  binding, Kafka's own partitioner, schema-version checks, dead-letter headers.
- ``interlock.webhook_handler``: verify and sign webhooks for the major providers'
  schemes, and receive them with claim-then-complete deduplication.
- ``interlock.retry``: retries for sync and asyncio code with deadlines, jitter and budgets.
- ``interlock.circuit_breaker``: a circuit breaker that never holds its lock during a call.
- ``interlock.rate_limit``: exact GCRA rate limiting per key, and a bulkhead.
- ``interlock.outbox``: a transactional outbox and a crash-safe relay, per-key ordered,
  on SQLite or a PostgreSQL fleet.
- ``interlock.idempotency``: idempotency keys for request handlers and an inbox that
  deduplicates consumers, safe across processes and crashes.
- ``interlock.saga``: orchestrated sagas with compensation and a durable log that a
  restarted process resumes from.
- ``interlock.ledger``: execution tracking for RPA and batch automation: runs, stages,
  attempts, an audit trail and reports.

Each module is a single file that imports only the standard library, so it can also be
copied alone into a codebase that cannot take dependencies.
"""

__version__ = "0.1.0"
