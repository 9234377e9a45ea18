"""Process metrics in the Prometheus text format (``GET /metrics``).

A small thread-safe registry of counters, gauges and histograms; no client library
needed. The ingest's metrics are declared here so that ``/metrics`` always lists them,
even before the first message:

- ``akita_ingest_readings_total`` readings durably written
- ``akita_ingest_messages_total{result}`` telemetry messages by outcome
  (``stored``, ``duplicate``, ``dead_letter``)
- ``akita_ingest_dead_letters_total`` payloads refused
- ``akita_ingest_refused_total{reason,item}`` items refused by the trust checks
  (declared by the worker; see docs/provisioning.md)
- ``akita_ingest_seq_gaps_total`` / ``akita_ingest_duplicates_total`` by gateway seq
- ``akita_ingest_reaggregations_total`` aggregates recomputed for late readings
- ``akita_ingest_buffer_depth`` readings held in memory waiting for the store
- ``akita_ingest_points_per_second`` / ``akita_ingest_lag_seconds`` last 10 s
- ``akita_ingest_batch_write_seconds`` store write latency (histogram)
- ``akita_ingest_store_errors_total{retryable}``
- ``akita_ingest_store_up`` / ``akita_ingest_broker_up`` (1 or 0)

Other parts declare their own with :meth:`Metrics.counter` / :meth:`Metrics.gauge`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

LabelKey = tuple[tuple[str, str], ...]
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    buckets: tuple[float, ...] = ()
    values: dict[LabelKey, float] = field(default_factory=dict)
    # histograms: per label set, bucket counts, sum, count
    hist: dict[LabelKey, tuple[list[int], list[float]]] = field(default_factory=dict)


def _key(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _fmt_labels(key: LabelKey, extra: tuple[str, str] | None = None) -> str:
    items = list(key) + ([extra] if extra else [])
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in items)
    return "{" + body + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Metrics:
    """Counters, gauges and histograms rendered as Prometheus text exposition 0.0.4."""

    def __init__(self, *, declare_ingest: bool = True) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        if declare_ingest:
            self._declare_ingest()

    def _declare_ingest(self) -> None:
        self.counter("akita_ingest_readings_total", "Readings durably written to the store")
        self.counter("akita_ingest_messages_total", "Telemetry messages by outcome")
        self.counter("akita_ingest_dead_letters_total", "Payloads refused to the dead letter")
        self.counter("akita_ingest_seq_gaps_total", "Batches found missing by gateway seq")
        self.counter("akita_ingest_duplicates_total", "Batches received again (same seq)")
        self.counter(
            "akita_ingest_reaggregations_total",
            "Time ranges whose 1-minute aggregates were recomputed for late readings",
        )
        self.counter("akita_ingest_store_errors_total", "Failed store writes")
        self.gauge("akita_ingest_buffer_depth", "Readings held in memory waiting for the store")
        self.gauge("akita_ingest_points_per_second", "Readings written per second, last 10 s")
        self.gauge("akita_ingest_lag_seconds", "Median age of readings when written, last 10 s")
        self.gauge("akita_ingest_store_up", "1 when the last store write succeeded")
        self.gauge("akita_ingest_broker_up", "1 when connected to the MQTT broker")
        self.histogram("akita_ingest_batch_write_seconds", "Store write latency per batch")

    # --- declaration --------------------------------------------------------------------

    def _declare(self, name: str, kind: str, help: str, buckets: tuple[float, ...] = ()) -> None:
        with self._lock:
            existing = self._families.get(name)
            if existing is None:
                self._families[name] = _Family(name, kind, help, buckets)
            elif existing.kind != kind:
                raise ValueError(f"metric {name!r} already declared as a {existing.kind}")

    def counter(self, name: str, help: str) -> None:
        self._declare(name, "counter", help)

    def gauge(self, name: str, help: str) -> None:
        self._declare(name, "gauge", help)

    def histogram(self, name: str, help: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self._declare(name, "histogram", help, tuple(sorted(buckets)))

    # --- updates ------------------------------------------------------------------------

    def _family(self, name: str, kind: str) -> _Family:
        family = self._families.get(name)
        if family is None:
            family = _Family(name, kind, name.replace("_", " "))
            if kind == "histogram":
                family.buckets = DEFAULT_BUCKETS
            self._families[name] = family
        return family

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            family = self._family(name, "counter")
            family.values[key] = family.values.get(key, 0.0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            self._family(name, "gauge").values[key] = float(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            family = self._family(name, "histogram")
            counts, sums = family.hist.setdefault(key, ([0] * len(family.buckets), [0.0, 0.0]))
            for i, bound in enumerate(family.buckets):
                if value <= bound:
                    counts[i] += 1
            sums[0] += value
            sums[1] += 1

    def value(self, name: str, **labels: str) -> float:
        """Current value of a counter or gauge (0 when never set)."""
        with self._lock:
            family = self._families.get(name)
            return family.values.get(_key(labels), 0.0) if family else 0.0

    # --- exposition ---------------------------------------------------------------------

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for family in sorted(self._families.values(), key=lambda f: f.name):
                lines.append(f"# HELP {family.name} {family.help}")
                lines.append(f"# TYPE {family.name} {family.kind}")
                if family.kind == "histogram":
                    for key, (counts, (total, n)) in sorted(family.hist.items()):
                        for bound, count in zip(family.buckets, counts, strict=True):
                            le = ("le", _fmt_value(bound))
                            lines.append(f"{family.name}_bucket{_fmt_labels(key, le)} {count}")
                        inf = ("le", "+Inf")
                        lines.append(f"{family.name}_bucket{_fmt_labels(key, inf)} {int(n)}")
                        lines.append(f"{family.name}_sum{_fmt_labels(key)} {_fmt_value(total)}")
                        lines.append(f"{family.name}_count{_fmt_labels(key)} {int(n)}")
                    continue
                values = family.values or {(): 0.0}
                for key, value in sorted(values.items()):
                    lines.append(f"{family.name}{_fmt_labels(key)} {_fmt_value(value)}")
        return "\n".join(lines) + "\n"
