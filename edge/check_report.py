"""What ``akita edge check`` found per device, as a table, as lines, or as JSON.

A technician reads this on a laptop at the cabinet, often in a narrow terminal: a
device id is never cut, because two ids of one site differ only at the end
("wb-kawajiri-flow" / "wb-kawajiri-pressure").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

# table overhead: 6 columns -> 7 borders + 2 spaces of padding each
_TABLE_OVERHEAD = 7 + 6 * 2
_MIN_DETAIL = 24  # narrower than this, "values / reason" becomes a column of fragments
_RESULT_WIDTH = 6  # the "result" header
_REQUESTS_WIDTH = 8  # "requests"


@dataclass(frozen=True)
class DeviceCheck:
    """One device's result: ``values`` when it answered, ``reason`` when not (or quiet).

    ``values`` holds only values that can be trusted; ``invalid`` the others (NaN, Inf,
    out of the field's range) and ``missing`` the fields whose register block failed,
    each with its reason. Either makes the device fail the check.
    """

    device: str
    kind: str
    driver: str
    ok: bool
    requests: int | None
    values: dict[str, Any] | None
    reason: str | None
    invalid: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def detail(self) -> str:
        return self.detail_text().plain

    def detail_text(self) -> Text:
        """Good values plain, untrusted and missing fields in red with their reason."""
        if self.values is None:
            return Text(self.reason or "")
        parts: list[Text] = [Text(f"{k}={v!r}") for k, v in self.values.items()]
        parts += [Text(f"{k}: {why}", style="bold red") for k, why in self.invalid.items()]
        parts += [Text(f"{k} missing: {why}", style="bold red") for k, why in self.missing.items()]
        return Text(", ").join(parts)


def to_json(gateway: str, config: str, results: list[DeviceCheck]) -> str:
    """One JSON document; ``ok`` is true when every device answered (exit code 0)."""
    doc = {
        "gateway": gateway,
        "config": config,
        "ok": all(r.ok for r in results),
        "devices": [asdict(r) for r in results],
    }
    # register values are numbers, bools or strings; anything else is shown as text
    return json.dumps(doc, ensure_ascii=False, indent=2, default=str)


def table_fits(results: list[DeviceCheck], width: int) -> bool:
    """Whether the six-column table fits ``width`` with whole ids and a usable detail column."""
    longest = max((len(r.device) for r in results), default=6)
    kind = max((len(r.kind) for r in results), default=4)
    driver = max((len(r.driver) for r in results), default=6)
    needed = max(longest, 6) + max(kind, 4) + max(driver, 6) + _RESULT_WIDTH + _REQUESTS_WIDTH
    return needed + _MIN_DETAIL + _TABLE_OVERHEAD <= width


def render(gateway: str, config: str, results: list[DeviceCheck], width: int) -> RenderableType:
    """The table when it fits ``width``, else one line per device (wrapped beneath it)."""
    title = f"gateway {gateway}: {config}"
    if table_fits(results, width):
        return _table(title, results)
    return _lines(title, results)


def _result(ok: bool) -> Text:
    return Text("ok", style="green") if ok else Text("FAIL", style="red")


def _table(title: str, results: list[DeviceCheck]) -> Table:
    table = Table(title=title)
    longest = max((len(r.device) for r in results), default=6)
    table.add_column("device", no_wrap=True, min_width=longest)
    table.add_column("kind", no_wrap=True)
    table.add_column("driver", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("requests", justify="right", no_wrap=True)
    table.add_column("values / reason", ratio=1, overflow="fold")
    for r in results:
        requests = "" if r.requests is None else str(r.requests)
        table.add_row(r.device, r.kind, r.driver, _result(r.ok), requests, r.detail_text())
    return table


def _lines(title: str, results: list[DeviceCheck]) -> Group:
    parts: list[RenderableType] = [Text(title, style="italic")]
    for r in results:
        head = Text.assemble(_result(r.ok), " ", (r.device, "bold"), f"  {r.kind} {r.driver}")
        if r.requests is not None:
            head.append(f"  requests={r.requests}")
        # the id leads the line and is a single word: rich folds it only if it alone is
        # wider than the terminal
        parts.append(head)
        if r.detail:
            detail = r.detail_text()
            detail.overflow = "fold"
            parts.append(Padding(detail, (0, 0, 0, 4)))
    return Group(*parts)
