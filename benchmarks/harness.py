# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The benchmark harness: contenders, hot paths, interleaved measuring, goals.

``run.py`` is the command; each ``hot_<area>.py`` file next to it defines ``HOT_PATHS``,
a tuple of functions that each build one ``HotPath`` from the pieces defined here. The
shared inputs (one CRM contact update as a CloudEvent) live here too, so every area
measures the same realistic event.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import importlib.util
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter_ns
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
if (SRC / "interlock").is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # a checkout measures its own code, not an installed copy

Call = Callable[[], object]


# --------------------------------------------------------------------------------------
# The structure: contenders, hot paths, results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One way of doing the hot path's job.

    ``prepare`` imports what it needs (peers lazily, so a missing one is skipped) and
    builds the inputs; it returns the call to time. ``check`` receives one result of
    that call and says whether it did the same job as the floor.
    """

    key: str  # stable id used by goals and the JSON output: "floor", "interlock", ...
    name: str  # who: "floor", "interlock", "cloudevents 2.2.0", ...
    timed: str  # what exactly is timed
    prepare: Callable[[], Call]
    requires: str | None = None  # top-level module of a peer; absent means "not installed"
    check: Callable[[Any], bool] | None = None
    note: str = ""  # printed under the table


def cloudevents_sdk(
    core: tuple[str, Callable[[], Call], Callable[[Any], bool]],
    v1: tuple[str, Callable[[], Call], Callable[[Any], bool]],
) -> tuple[Contender, Contender]:
    """The cloudevents SDK twice: its 2.x core API and its 1.x-compatible v1 API.

    Each argument is ``(what is timed, prepare, check)``.
    """
    return (
        Contender("cloudevents", CE, core[0], core[1], requires="cloudevents", check=core[2]),
        Contender(
            "cloudevents-v1", f"{CE} v1 API", v1[0], v1[1], requires="cloudevents", check=v1[2]
        ),
    )


@dataclass(frozen=True)
class Settings:
    quick: bool

    @property
    def batch_ns(self) -> int:
        """Target duration of one timed batch."""
        return 1_500_000 if self.quick else 3_000_000

    @property
    def warmup_ns(self) -> int:
        return 30_000_000 if self.quick else 100_000_000


@dataclass
class Outcome:
    key: str
    name: str
    timed: str
    status: str = "ok"  # "ok", "not installed" or "error"
    message: str = ""
    samples: list[float] = field(default_factory=list)  # ns per call, one per round
    calls_per_batch: int = 0

    def fail(self, exc: BaseException) -> None:
        self.status, self.message = "error", f"{type(exc).__name__}: {exc}"
        self.samples.clear()

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range over the median: how noisy the rounds were."""
        if len(self.samples) < 4:
            return 0.0
        low, _, high = statistics.quantiles(self.samples, n=4)
        return (high - low) / self.median_ns


@dataclass(frozen=True)
class Verdict:
    status: str  # "PASS", "FAIL", "SKIP" or "info"
    text: str


@dataclass
class PathResult:
    path: HotPath
    rounds: int
    outcomes: dict[str, Outcome]
    verdicts: list[Verdict] = field(default_factory=list)

    def ok(self, key: str) -> Outcome | None:
        outcome = self.outcomes.get(key)
        return outcome if outcome is not None and outcome.status == "ok" else None

    def ratios(self, key: str, other: str = "floor") -> list[float]:
        """Per round: key's time divided by other's time in the same round ([] if unmeasured)."""
        a, b = self.ok(key), self.ok(other)
        if a is None or b is None:
            return []
        return [x / y for x, y in zip(a.samples, b.samples, strict=True)]

    def ratio(self, key: str, other: str = "floor") -> float | None:
        """The headline figure: the median of the per-round ratios."""
        ratios = self.ratios(key, other)
        return statistics.median(ratios) if ratios else None


@dataclass(frozen=True)
class Sampler:
    """Takes one round's measurement of a prepared call: nanoseconds per call."""

    sample: Callable[[], float]
    calls_per_batch: int = 1


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------


def timed_batches(call: Call, settings: Settings) -> Sampler:
    """Warm ``call`` up, size a batch to ``settings.batch_ns``, return the batch timer."""
    calls, elapsed = 1, 0
    while elapsed < settings.warmup_ns:
        calls *= 2
        start = perf_counter_ns()
        for _ in range(calls):
            call()
        elapsed = perf_counter_ns() - start
    batch = range(max(1, settings.batch_ns * calls // max(elapsed, 1)))
    n = len(batch)

    def sample() -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = perf_counter_ns()
            for _ in batch:
                call()
            stop = perf_counter_ns()
        finally:
            if enabled:
                gc.enable()
        return (stop - start) / n

    return Sampler(sample, n)


def self_timed(call: Call, settings: Settings) -> Sampler:  # noqa: ARG001 - same shape as timed_batches
    """For calls that measure themselves (a subprocess import) and return nanoseconds."""
    call()  # warm-up: fills the bytecode cache, loads the files into the page cache
    return Sampler(lambda: cast("float", call()))


@dataclass(frozen=True)
class HotPath:
    """A job measured several ways; ``goals`` turns the results into PASS/FAIL lines."""

    name: str
    summary: str
    contenders: tuple[Contender, ...]
    goals: Callable[[PathResult], list[Verdict]] = lambda _result: []
    full_rounds: int = 200
    quick_rounds: int = 30
    measure: Callable[[Call, Settings], Sampler] = timed_batches  # or self_timed
    unit: str = "us/call"  # or "ms/import": microseconds or milliseconds, display only
    notes: tuple[str, ...] = ()
    # Set-up heavy (tens of seconds even in a quick run): ``--quick`` skips it unless it
    # is chosen with ``--only``.
    heavy: bool = False


def prepare(contender: Contender, path: HotPath, settings: Settings) -> Sampler:
    """Build the contender's call, check its result once, warm it up."""
    call = contender.prepare()
    if contender.check is not None and not contender.check(call()):
        raise RuntimeError("its result does not match the input (check failed)")
    return path.measure(call, settings)


def run_path(path: HotPath, settings: Settings) -> PathResult:
    """Prepare every contender, then run the interleaved rounds."""
    outcomes = {c.key: Outcome(c.key, c.name, c.timed) for c in path.contenders}
    samplers: dict[str, Sampler] = {}
    for contender in path.contenders:
        outcome = outcomes[contender.key]
        if contender.requires and importlib.util.find_spec(contender.requires) is None:
            outcome.status = "not installed"
            continue
        try:
            samplers[contender.key] = prepare(contender, path, settings)
            outcome.calls_per_batch = samplers[contender.key].calls_per_batch
        except Exception as exc:
            outcome.fail(exc)
    live = [outcomes[key] for key in samplers]
    rounds = path.quick_rounds if settings.quick else path.full_rounds
    for number in range(rounds):
        shift = number % max(len(live), 1)
        for outcome in live[shift:] + live[:shift]:
            if outcome.status != "ok":
                continue
            try:
                outcome.samples.append(samplers[outcome.key].sample())
            except Exception as exc:
                outcome.fail(exc)
    result = PathResult(path, rounds, outcomes)
    result.verdicts = path.goals(result)
    return result


# --------------------------------------------------------------------------------------
# Goals
# --------------------------------------------------------------------------------------


def quartiles(ratios: list[float]) -> str:
    """The middle half of the per-round ratios: how firm a verdict near its limit is."""
    if len(ratios) < 4:
        return ""
    low, _, high = statistics.quantiles(ratios, n=4)
    return f"; middle half of rounds {low:.2f}-{high:.2f}x"


def at_most(result: PathResult, key: str, limit: float) -> Verdict:
    """PASS when ``key`` costs at most ``limit`` times the floor (median of per-round ratios)."""
    text = f"{key} <= {limit:.2f}x the floor"
    ratios = result.ratios(key)
    if not ratios:
        return Verdict("SKIP", f"{text}: not measured")
    ratio = statistics.median(ratios)
    status = "PASS" if ratio <= limit else "FAIL"
    return Verdict(status, f"{text}: {ratio:.3f}x{quartiles(ratios)}")


def at_most_of(result: PathResult, key: str, rival: str, limit: float) -> Verdict:
    """PASS when ``key`` takes at most ``limit`` times ``rival``'s time (per-round ratios)."""
    rival_outcome = result.outcomes[rival]
    text = f"{key} <= {limit:.2f}x the time of {rival_outcome.name}"
    ratios = result.ratios(key, rival)
    if not ratios:
        why = rival_outcome.status if rival_outcome.status != "ok" else "not measured"
        return Verdict("SKIP", f"{text}: {why}")
    ratio = statistics.median(ratios)
    status = "PASS" if ratio <= limit else "FAIL"
    return Verdict(status, f"{text}: {ratio:.2f}x{quartiles(ratios)}")


def faster_than(result: PathResult, key: str, rival: str) -> Verdict:
    """PASS when ``key`` takes less time than ``rival`` (median of per-round ratios)."""
    rival_outcome = result.outcomes[rival]
    text = f"{key} faster than {rival_outcome.name}"
    ratios = result.ratios(key, rival)
    if not ratios:
        why = rival_outcome.status if rival_outcome.status != "ok" else "not measured"
        return Verdict("SKIP", f"{text}: {why}")
    ratio = statistics.median(ratios)
    status = "PASS" if ratio < 1 else "FAIL"
    speed = f"{1 / ratio:.1f}x faster" if ratio < 1 else f"{ratio:.1f}x slower"
    return Verdict(status, f"{text}: {ratio:.2f}x its time ({speed}{quartiles(ratios)})")


# --------------------------------------------------------------------------------------
# Shared inputs: one CRM contact update
# --------------------------------------------------------------------------------------

EVENT_ID = "6f1c2a9e-3b7d-4c1e-9f05-8a2d4e6b1c73"
EVENT_TYPE = "com.example.crm.contact.updated"
SOURCE = "/crm/contacts"
CORRELATION_ID = "req-2f9d81c4"
SCHEMA_VERSION = "2.1"
CREATED_AT = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=timezone.utc)
TIME_TEXT = "2026-03-14T09:26:53.589793Z"

CONTACT: dict[str, Any] = {
    "contact_id": "003Dn00000QX9fKIAT",
    "account_id": "001Dn00000A1b2CIAR",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada.lovelace@example.com",
    "phone": "+44 20 7946 0958",
    "title": "Head of Analytics",
    "lifecycle_stage": "customer",
    "email_opt_in": True,
    "lead_score": 87,
    "address": {
        "street": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    },
}

# The same contact with the context a CRM webhook usually adds: about 1 KB as an event.
CONTACT_1KB: dict[str, Any] = {
    **CONTACT,
    "previous": {"email": "ada@analytical-engines.example", "title": "Senior Analyst"},
    "changed_fields": ["email", "title"],
    "owner": {"user_id": "005Dn000001xYzQIAU", "name": "Charles Babbage", "team": "EMEA"},
    "custom_fields": {
        "industry": "Computing",
        "employees": 250,
        "annual_revenue": 12500000.0,
        "preferred_language": "en-GB",
        "segment": "enterprise",
        "renewal_date": "2026-09-30",
    },
    "tags": ["vip", "analytics", "emea", "renewal-2026"],
}


def cloudevent_dict(data: object) -> dict[str, Any]:
    """The CloudEvents JSON object for the shared event, built by hand."""
    return {
        "specversion": "1.0",
        "id": EVENT_ID,
        "source": SOURCE,
        "type": EVENT_TYPE,
        "time": TIME_TEXT,
        "correlationid": CORRELATION_ID,
        "schemaversion": SCHEMA_VERSION,
        "data": data,
    }


def cloudevents_attributes(time: object) -> dict[str, Any]:
    """Attributes for the CloudEvents SDK (it keeps the dict and fills in defaults)."""
    return {
        "specversion": "1.0",
        "id": EVENT_ID,
        "source": SOURCE,
        "type": EVENT_TYPE,
        "time": time,
        "correlationid": CORRELATION_ID,
        "schemaversion": SCHEMA_VERSION,
    }


def peer(module: str) -> Any:
    """Import a peer module; peers are untyped here on purpose (they are optional)."""
    return importlib.import_module(module)


def with_version(distribution: str) -> str:
    """``"cloudevents 2.2.0"``, or the bare name when the distribution is not installed."""
    try:
        return f"{distribution} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return distribution


def cloudevents_v1_api() -> tuple[Any, Any]:
    """The SDK's v1 API: ``cloudevents.v1.*`` since 2.0 (a compat layer), top level in 1.x."""
    try:
        return peer("cloudevents.v1.http"), peer("cloudevents.v1.conversion")
    except ModuleNotFoundError:
        return peer("cloudevents.http"), peer("cloudevents.conversion")


CE = with_version("cloudevents")
IAP = with_version("integration-automation-patterns")
