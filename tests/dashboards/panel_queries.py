"""Pull every InfluxQL query out of the dashboard models and fill Grafana's macros the way
Grafana's InfluxDB data source does before it sends them."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref_id: str
    query: str
    time_from: str | None


def targets(models: Mapping[str, dict[str, Any]]) -> Iterator[Target]:
    for name, model in models.items():
        for panel in model.get("panels", []):
            for p in [panel, *panel.get("panels", [])]:
                for t in p.get("targets", []) or []:
                    yield Target(name, p["title"], t["refId"], t["query"], p.get("timeFrom"))


def variables(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in model.get("templating", {}).get("list", []) if v.get("type") == "query"]


def fill(query: str, *, start_ms: int, end_ms: int, values: Mapping[str, str]) -> str:
    """Grafana's substitution: $timeFilter, $__interval, ${__from}/${__to}, variables.

    ``values`` maps a variable to its regex-formatted value (``.*`` for All, ``(a|b)``
    for a multi-value pick), as Grafana formats variables used inside ``/.../``.
    """
    interval_ms = max((end_ms - start_ms) // 500, 10_000)
    q = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    q = q.replace("$__interval", f"{interval_ms}ms")
    q = q.replace("${__from}", str(start_ms)).replace("${__to}", str(end_ms))
    for name in sorted(values, key=len, reverse=True):
        q = q.replace(f"${name}", values[name])
    leftover = re.findall(r"\$\{?\w+", q)
    if leftover:
        raise AssertionError(f"unfilled template variables {leftover} in {q}")
    return q


def regex_value(options: list[str]) -> str:
    escaped = [re.sub(r"([.\\+*?\[^\]$(){}=!<>|:\-/])", r"\\\1", o) for o in options]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
