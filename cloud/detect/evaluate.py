"""``akita eval``: score the detectors on labelled scenario exports and on BattLeDIM.

See docs/detectors.md for the matching rule and the measured figures.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cloud.detect import battledim
from cloud.detect.config import DetectConfig
from cloud.detect.dataset import DatasetError, Export, load_export
from cloud.detect.scoring import (
    GOAL_PRECISION,
    GOAL_RECALL,
    KindScore,
    ReplayStats,
    replay,
    score,
)

app = typer.Typer(
    name="eval",
    help=(
        "Score the anomaly detectors on labelled data.\n\n"
        "With SCENARIO names, each scenario is exported by the simulator ('akita sim "
        "export') and replayed through the detectors; --data scores existing exports; "
        "--battledim replays the BattLeDIM L-Town SCADA flows through the water-block "
        "leak detector.\n\n"
        "Examples:\n\n"
        "  akita eval flood_event leak_small\n\n"
        "  akita eval --data /tmp/flood.csv\n\n"
        "  akita eval --battledim ../shared/data/battledim-ltown-2018"
    ),
    no_args_is_help=False,
    rich_markup_mode="rich",
    # a group stops parsing options at its first argument; let SCENARIO... --seed 2 work
    context_settings={"allow_interspersed_args": True},
)

console = Console(width=160)


def _fmt(x: float, nd: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _delay(s: float) -> str:
    if math.isnan(s):
        return "—"
    if s >= 86400:
        return f"{s / 86400:.1f} d"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s:.0f} s"


def scores_table(title: str, scores: dict[str, KindScore]) -> Table:
    t = Table(title=title, show_lines=False)
    for col in (
        "kind",
        "labels",
        "found",
        "recall",
        "alarms",
        "precision",
        "mean delay",
        "(samples)",
        "p95 delay",
        "(samples)",
        "false/dev-day",
        "goal",
    ):
        t.add_column(col, justify="left" if col in ("kind", "goal") else "right")
    for ks in scores.values():
        mean_s, mean_n = ks.delay("mean")
        p95_s, p95_n = ks.delay("p95")
        goal = ks.goal_met()
        t.add_row(
            ks.kind if ks.scored else f"{ks.kind} (unlabelled)",
            str(ks.labels) if ks.scored else "—",
            str(ks.detected) if ks.scored else "—",
            _fmt(ks.recall),
            str(ks.onsets),
            _fmt(ks.precision) if ks.scored else "—",
            _delay(mean_s),
            _fmt(mean_n, 1),
            _delay(p95_s),
            _fmt(p95_n, 1),
            _fmt(ks.fa_per_device_day, 4),
            "—" if goal is None else ("[green]met[/]" if goal else "[red]short[/]"),
        )
    return t


def evaluate_export(export: Export, config: DetectConfig) -> tuple[dict[str, KindScore], int]:
    """Replay and score one export; also return how many readings it held."""
    stats = ReplayStats()
    detections = replay(export, config, stats=stats)
    return score(export, detections, stats=stats), stats.readings


def _scores_json(scores: dict[str, KindScore]) -> dict[str, Any]:
    out = {}
    for k, ks in scores.items():
        mean_s, mean_n = ks.delay("mean")
        p95_s, p95_n = ks.delay("p95")
        out[k] = {
            "scored": ks.scored,
            "labels": ks.labels,
            "detected": ks.detected,
            "alarms": ks.onsets,
            "true_alarms": ks.true_onsets,
            "false_alarms": ks.false_alarms,
            "recall": None if math.isnan(ks.recall) else ks.recall,
            "precision": None if math.isnan(ks.precision) else ks.precision,
            "mean_delay_s": None if math.isnan(mean_s) else mean_s,
            "mean_delay_samples": None if math.isnan(mean_n) else mean_n,
            "p95_delay_s": None if math.isnan(p95_s) else p95_s,
            "p95_delay_samples": None if math.isnan(p95_n) else p95_n,
            "false_per_device_day": None
            if math.isnan(ks.fa_per_device_day)
            else ks.fa_per_device_day,
            "missed": ks.missed,
            "goal_met": ks.goal_met(),
        }
    return out


def load_config(path: Path | None) -> DetectConfig:
    if path is None:
        return DetectConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return DetectConfig.model_validate(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise typer.BadParameter(f"--config {path}: {exc}") from exc


def export_scenario(name: str, out_dir: Path, *, seed: int, scale: str, days: float | None) -> Path:
    """Have the simulator write a labelled export (contract C) and return its CSV path.

    Uses ``firmware_sim.export.export`` when the simulator is importable here, else
    ``akita sim export`` in a subprocess (same files either way).
    """
    out = out_dir / f"{name}.csv"
    try:
        sim_export = importlib.import_module("firmware_sim.export")
    except ImportError:
        sim_export = None
    if sim_export is not None and hasattr(sim_export, "export"):
        try:
            sim_export.export(name, out, seed=seed, scale=scale, days=days)
        except (KeyError, ValueError) as exc:
            raise typer.BadParameter(f"scenario {name!r}: {exc}") from exc
        return out
    cmd = [sys.executable, "-m", "akita.cli", "sim", "export", name, "--out", str(out)]
    cmd += ["--seed", str(seed), "--scale", scale]
    if days is not None:
        cmd += ["--days", str(days)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        raise typer.BadParameter(
            f"'akita sim export {name}' failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    return out


def known_scenarios() -> list[str]:
    """Scenario names the simulator offers (empty when it cannot say)."""
    try:
        mod = importlib.import_module("firmware_sim.scenarios")
    except ImportError:
        return []
    for attr in ("SCENARIOS", "REGISTRY", "scenarios"):
        obj = getattr(mod, attr, None)
        if isinstance(obj, dict):
            return sorted(obj)
        if callable(obj):
            try:
                res = obj()
            except TypeError:
                continue
            return sorted(res)
    names = getattr(mod, "names", None)
    return sorted(names()) if callable(names) else []


def print_battledim(res: battledim.BattledimResult) -> None:
    t = Table(title="BattLeDIM replay: water-block leak detector")
    for col in ("leak", "type", "start", "peak", "found at", "delay", "goal"):
        t.add_column(col)
    for r in res.leaks:
        lk = r.leak
        t.add_row(
            lk.link_id,
            lk.kind,
            f"{lk.start:%Y-%m-%d %H:%M}",
            f"{lk.peak:%Y-%m-%d %H:%M}" if lk.kind == "incipient" else "—",
            f"{r.found_at:%Y-%m-%d %H:%M}" if r.found_at else "not found",
            _delay(r.delay.total_seconds()) if r.delay is not None else "—",
            "[green]met[/]" if r.goal_met else "[red]short[/]",
        )
    console.print(t)
    ab_ok, ab_n = res.count("abrupt")
    inc_ok, inc_n = res.count("incipient")
    console.print(
        f"abrupt found within 2 days: {ab_ok}/{ab_n} · incipient found before peak: "
        f"{inc_ok}/{inc_n} · alarms: {len(res.alarms)} (repeats {res.repeats}) · "
        f"false alarms: {len(res.false_alarms)} over {res.months:.1f} months = "
        f"{res.false_alarms_per_month:.2f}/month"
    )
    for d in res.false_alarms:
        console.print(f"  false alarm {d.ts:%Y-%m-%d %H:%M} {d.message}")


def battledim_json(res: battledim.BattledimResult) -> dict[str, Any]:
    return {
        "leaks": [
            {
                "link_id": r.leak.link_id,
                "type": r.leak.kind,
                "start": r.leak.start.isoformat(),
                "found_at": r.found_at.isoformat() if r.found_at else None,
                "delay_h": r.delay.total_seconds() / 3600 if r.delay is not None else None,
                "goal_met": r.goal_met,
            }
            for r in res.leaks
        ],
        "false_alarms": len(res.false_alarms),
        "false_alarms_per_month": res.false_alarms_per_month,
        "abrupt_goal": list(res.count("abrupt")),
        "incipient_goal": list(res.count("incipient")),
    }


@app.callback(invoke_without_command=True)
def main(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help="Simulator scenarios to export and score (default: all of them)"),
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Score an existing export (PATH.csv + sidecars); repeatable"),
    ] = None,
    battledim_path: Annotated[
        Path | None,
        typer.Option(
            "--battledim",
            help="BattLeDIM directory (or its *SCADA_Flows*.csv) to replay through the leak "
            "detector",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed for scenario exports")] = 1,
    scale: Annotated[str, typer.Option(help="Simulator fleet scale: small or city")] = "small",
    days: Annotated[float | None, typer.Option(help="Scenario length override (days)")] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Keep scenario exports here (default: a temp dir)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Detector config (YAML/JSON, DetectConfig fields)")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON here")
    ] = None,
) -> None:
    """Print precision, recall, detection delays and false alarms per detector kind."""
    cfg = load_config(config)
    results: dict[str, Any] = {}
    exports: list[Path] = list(data or [])
    names = list(scenarios or [])
    if not names and not exports and battledim_path is None:
        names = known_scenarios()
        if not names:
            console.print(
                "[red]No scenario given and the simulator lists none.[/] "
                "Pass SCENARIO names, --data PATH.csv or --battledim PATH."
            )
            raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="akita-eval-") as tmp:
        where = out_dir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for name in names:
            console.print(f"exporting scenario {name} ...")
            exports.append(export_scenario(name, where, seed=seed, scale=scale, days=days))
        all_met = True
        for path in exports:
            try:
                # streamed: a city-scale export does not fit in memory as objects
                export = load_export(path, load_readings=False)
                scores, n_readings = evaluate_export(export, cfg)
            except DatasetError as exc:
                raise typer.BadParameter(str(exc)) from exc
            title = (
                f"{export.scenario}: {n_readings} readings, "
                f"{len(export.devices) or '?'} devices, "
                f"{(export.end - export.start).total_seconds() / 86400:.1f} days"
            )
            console.print(scores_table(title, scores))
            for ks in scores.values():
                if ks.missed:
                    console.print(f"  {ks.kind} missed: {', '.join(ks.missed[:10])}")
                all_met = all_met and ks.goal_met() is not False
            results[export.scenario] = _scores_json(scores)
        if exports:
            console.print(
                f"goals: recall ≥ {GOAL_RECALL}, precision ≥ {GOAL_PRECISION}, bursts and "
                "button presses within 2 samples, leaks within 3 nights — "
                + ("[green]all met[/]" if all_met else "[red]not all met[/]")
            )
    if battledim_path is not None:
        try:
            res = battledim.run(battledim_path, cfg)
        except DatasetError as exc:
            raise typer.BadParameter(str(exc)) from exc
        print_battledim(res)
        results["battledim"] = battledim_json(res)
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
