"""``akita eval --meters N``: the household-meter scores as a rich table and JSON.

Plugged into the cloud's evaluator by ``akita/evaluate.py`` (the scoring needs the
simulator, which cloud never imports). Goals as the issue states them: household leak
recall ≥ 0.95 and precision ≥ 0.9, and no leak alert for a household that only uses more.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from akita import meter_eval
from cloud.detect.config import DetectConfig

GOAL_RECALL, GOAL_PRECISION = 0.95, 0.9
UPLINKS_PER_METER_DAY = 4  # six hours per uplink: the progress bar's total

console = Console(width=140)


def _fmt(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.2f}"


def _fmt_h(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.0f} h"


def table(s: meter_eval.MeterScore) -> Table:
    t = Table(title=f"Household meters: {s.meters} simulated for {s.days:g} days, seed {s.seed}")
    for col in ("detector", "label", "labelled", "found", "false", "recall", "precision"):
        t.add_column(col, justify="left" if col in ("detector", "label") else "right")
    for alert, d in s.detectors.items():
        t.add_row(
            alert,
            meter_eval.LABEL_OF[alert],
            str(d.labels),
            str(d.found),
            str(d.false),
            _fmt(d.recall),
            _fmt(d.precision),
        )
    return t


def goals_met(s: meter_eval.MeterScore) -> bool:
    leak = s.leak
    return leak.recall >= GOAL_RECALL and leak.precision >= GOAL_PRECISION and not s.heavy_alerts


def evaluate_meters(n: int, seed: int, days: float, config: DetectConfig) -> dict[str, Any]:
    """Run, print the table and the leak goal, return the figures for ``--json``."""
    total = int(n * days * UPLINKS_PER_METER_DAY)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{n} meters x {days:g} days", total=total)
        try:
            score = meter_eval.run(
                n,
                days=days,
                seed=seed,
                config=config,
                progress=lambda done: bar.update(task, completed=done),
            )
        except ValueError as exc:  # the simulator names the bad value
            raise SystemExit(f"akita eval --meters: {exc}") from exc
    console.print(table(score))
    med, worst = score.leak_delay_h
    console.print(f"meter_leak after the leak began: median {_fmt_h(med)}, longest {_fmt_h(worst)}")
    met = goals_met(score)
    console.print(
        f"heavy users (3x the use, no leak): {score.heavy}, with meter_leak: "
        f"{score.heavy_alerts}; goal: leak recall ≥ {GOAL_RECALL}, precision ≥ "
        f"{GOAL_PRECISION}, no heavy user alerted — "
        + ("[green]met[/]" if met else "[red]not met[/]")
    )
    return {**score.to_json(), "goal_met": met}
