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
    """Grafana's substitution: $timeFilter, $__interval, ${__from}/${__to}, $__range_s
    (the range in whole seconds), variables.

    ``values`` maps a variable to its regex-formatted value (``.*`` for All, ``(a|b)``
    for a multi-value pick), as Grafana formats variables used inside ``/.../``.
    """
    interval_ms = max((end_ms - start_ms) // 500, 10_000)
    q = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    q = q.replace("$__interval", f"{interval_ms}ms")
    q = q.replace("${__from}", str(start_ms)).replace("${__to}", str(end_ms))
    q = q.replace("$__range_s", str(round((end_ms - start_ms) / 1000)))
    for name in sorted(values, key=len, reverse=True):
        q = q.replace(f"${name}", values[name])
    leftover = re.findall(r"\$\{?\w+", q)
    if leftover:
        raise AssertionError(f"unfilled template variables {leftover} in {q}")
    return q


def regex_value(options: list[str]) -> str:
    escaped = [re.sub(r"([.\\+*?\[^\]$(){}=!<>|:\-/])", r"\\\1", o) for o in options]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def panel(model: dict[str, Any], title: str) -> dict[str, Any]:
    for p in model.get("panels", []):
        for q in [p, *p.get("panels", [])]:
            if q["title"] == title:
                return q
    raise KeyError(f"no panel {title!r} in {model.get('uid')}")


def _js_regex(pattern: str) -> re.Pattern[str]:
    """Grafana's ``stringToJsRegex``: ``/re/flags`` as written, anything else anchored."""
    if pattern.startswith("/"):
        body, _, flags = pattern[1:].rpartition("/")
        return re.compile(body, re.IGNORECASE if "i" in flags else 0)
    return re.compile(f"^{pattern}$")


def _js_replacement(text: str) -> str:
    return re.sub(r"\$(\d)", r"\\\1", text)


def mapped(mappings: list[dict[str, Any]], value: Any) -> str | None:
    """The text Grafana shows for ``value`` under ``mappings`` (``getValueMappingResult``:
    the first mapping that matches wins; a regex mapping's text is the value with the
    pattern replaced by it). Value and regex mappings only: the ones the panels use."""
    for m in mappings:
        if m["type"] == "value" and value is not None and str(value) in m["options"]:
            return str(m["options"][str(value)]["text"])
        if m["type"] == "regex" and isinstance(value, str):
            regex = _js_regex(m["options"]["pattern"])
            if regex.search(value):
                return regex.sub(_js_replacement(m["options"]["result"]["text"]), value, count=1)
    return None


def renamed(transformations: list[dict[str, Any]], name: str) -> str:
    """A field name after the panel's ``renameByRegex`` transformations."""
    for t in transformations:
        if t["id"] == "renameByRegex":
            regex = _js_regex(t["options"]["regex"])
            name = regex.sub(_js_replacement(t["options"]["renamePattern"]), name, count=1)
    return name


def visible(transformations: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """The columns a table shows after renaming and ``organize``'s ``excludeByName``."""
    hidden: set[str] = set()
    for t in transformations:
        if t["id"] == "organize":
            hidden |= {k for k, v in t["options"].get("excludeByName", {}).items() if v}
    return [c for c in (renamed(transformations, c) for c in columns) if c not in hidden]


def table_columns(series: dict[str, Any]) -> list[str]:
    """The fields Grafana's InfluxQL table format makes of a series: ``Time``, the GROUP
    BY tags, then the value columns."""
    values = [c for c in series["columns"] if c != "time"]
    return ["Time", *series.get("tags", {}), *values]
