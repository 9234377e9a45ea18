"""``akita eval``: score the detectors on labelled scenario exports and on BattLeDIM.

See docs/detectors.md for the matching rule and the measured figures.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cloud.detect import battledim, leak_scoring, synthetic
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
        "  akita eval --battledim ../shared/data/battledim-ltown-2018\n\n"
        "  akita eval --battledim DIR --score-from 2018-07-01   (held-out half year)\n\n"
        "  akita eval --continuous DIR_2018 DIR_2019   (years back to back)\n\n"
        "  akita eval --synthetic 300 --seed 1   (detection-limit curve, no data needed)\n\n"
        "  akita eval --meters 3000 --seed 1   (household meter detectors, simulated)\n\n"
        "BattLeDIM alarms are scored under two rules, side by side: the onset rule (an alarm "
        "is credited to a leak whose onset it follows within a window; see docs/detectors.md) "
        "and the competition's rule (true positive if raised between a leak's start and its "
        "repair, false positive otherwise)."
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


# The simulator's part of ``akita eval`` (export a scenario, list the scenarios) is
# plugged in by the CLI layer (akita/evaluate.py): cloud never imports firmware_sim.
Exporter = Callable[[str, Path, int, str, float | None], None]
_simulator: tuple[Exporter, Callable[[], list[str]]] | None = None


MeterEval = Callable[[int, int, float, DetectConfig], dict[str, Any]]
_meter_eval: MeterEval | None = None


def use_meter_eval(fn: MeterEval) -> None:
    """Plug in the household-meter scoring (akita/evaluate.py: it needs the simulator);
    it prints its table and returns the figures for --json."""
    global _meter_eval
    _meter_eval = fn


def use_simulator(exporter: Exporter, scenarios: Callable[[], list[str]]) -> None:
    """Export scenarios in-process with ``exporter`` and list them with ``scenarios``."""
    global _simulator
    _simulator = (exporter, scenarios)


def export_scenario(name: str, out_dir: Path, *, seed: int, scale: str, days: float | None) -> Path:
    """Have the simulator write a labelled export (contract C) and return its CSV path.

    In-process when the CLI layer plugged the simulator in (:func:`use_simulator`), else
    ``akita sim export`` in a subprocess (same files either way).
    """
    out = out_dir / f"{name}.csv"
    if _simulator is not None:
        try:
            _simulator[0](name, out, seed, scale, days)
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
    """Scenario names the simulator offers (empty when it is not plugged in)."""
    return sorted(_simulator[1]()) if _simulator is not None else []


def _when(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M}" if t else "not found"


def print_battledim(res: battledim.BattledimResult) -> None:
    """Per-leak table (both rules side by side), then each rule's counts and false alarms."""
    on = {id(m.leak): m for m in res.onset.leaks}
    t = Table(title=f"BattLeDIM replay: {' → '.join(res.sources)}")
    for col in ("leak", "type", "start", "peak", "end", "onset rule: found", "delay", "goal"):
        t.add_column(col)
    t.add_column("BattLeDIM rule: found")
    for m in sorted(res.battledim.leaks, key=lambda m: m.leak.start):
        lk, o = m.leak, on[id(m.leak)]
        carried = "[dim]carried over, not scored[/]"
        t.add_row(
            lk.link_id,
            lk.kind,
            f"{lk.start:%Y-%m-%d %H:%M}",
            f"{lk.peak:%Y-%m-%d %H:%M}" if lk.kind == "incipient" else "—",
            f"{lk.end:%Y-%m-%d %H:%M}",
            carried if o.carried else _when(o.found_at),
            _delay(o.delay.total_seconds()) if o.delay is not None and not o.carried else "—",
            "—" if o.carried else ("[green]met[/]" if o.goal_met else "[red]short[/]"),
            carried if m.carried else _when(m.found_at),
        )
    console.print(t)
    console.print(
        f"scored {res.start:%Y-%m-%d %H:%M} to {res.end:%Y-%m-%d %H:%M} "
        f"({res.onset.months:.1f} months), {len(res.alarms)} alarms in the whole replay"
    )
    for rs in (res.onset, res.battledim):
        ab_ok, ab_n = rs.goal("abrupt")
        inc_ok, inc_n = rs.goal("incipient")
        ttd = rs.mean_time_to_detection_h()
        found = sum(m.found_at is not None for m in rs.scored)
        console.print(
            f"[bold]{rs.rule} rule[/]: true positives {rs.true_positives} "
            f"(leaks found {found}/{len(rs.scored)}), false positives {rs.false_positives} "
            f"= {rs.per_month(rs.false_positives):.2f}/month, repeats {rs.repeats} "
            f"(strict: {rs.per_month(rs.false_positives + rs.repeats):.2f}/month)\n"
            f"  mean time to detection {'—' if ttd is None else f'{ttd:.1f} h'} · "
            f"abrupt within 2 days {ab_ok}/{ab_n} · incipient before peak {inc_ok}/{inc_n}"
        )
        for a, v in rs.verdicts:
            if v in ("false", "repeat"):
                console.print(f"  {v} {a.ts:%Y-%m-%d %H:%M} {a.device_id}: {a.message}")


def _rule_json(rs: leak_scoring.RuleScore) -> dict[str, Any]:
    return {
        "true_positives": rs.true_positives,
        "false_positives": rs.false_positives,
        "repeats": rs.repeats,
        "false_positives_per_month": rs.per_month(rs.false_positives),
        "strict_false_per_month": rs.per_month(rs.false_positives + rs.repeats),
        "mean_time_to_detection_h": rs.mean_time_to_detection_h(),
        "abrupt_within_2_days": list(rs.goal("abrupt")),
        "incipient_before_peak": list(rs.goal("incipient")),
        "leaks": [
            {
                "link_id": m.leak.link_id,
                "type": m.leak.kind,
                "start": m.leak.start.isoformat(),
                "carried": m.carried,
                "found_at": m.found_at.isoformat() if m.found_at else None,
                "delay_h": m.delay.total_seconds() / 3600 if m.delay is not None else None,
                "goal_met": None if m.carried else m.goal_met,
            }
            for m in sorted(rs.leaks, key=lambda m: m.leak.start)
        ],
        "alarms": [
            {"ts": a.ts.isoformat(), "device_id": a.device_id, "verdict": v, "size_m3h": a.size_m3h}
            for a, v in rs.verdicts
        ],
    }


def battledim_json(res: battledim.BattledimResult) -> dict[str, Any]:
    return {
        "sources": res.sources,
        "scored_from": res.start.isoformat(),
        "scored_until": res.end.isoformat(),
        "months": res.onset.months,
        "onset_rule": _rule_json(res.onset),
        "battledim_rule": _rule_json(res.battledim),
    }


def _date(text: str | None, opt: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as exc:
        raise typer.BadParameter(f"{opt} {text!r}: expected YYYY-MM-DD[ HH:MM]") from exc


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
    continuous: Annotated[
        bool,
        typer.Option(
            "--continuous",
            help="Treat the arguments as BattLeDIM directories (A B ...) and replay them back "
            "to back with the detector's state carried across, as a city runs it",
        ),
    ] = False,
    score_from: Annotated[
        str | None,
        typer.Option(
            help="BattLeDIM: score only from this date (YYYY-MM-DD); the replay before it is "
            "warm-up and leaks started before it are shown as carried over"
        ),
    ] = None,
    score_until: Annotated[
        str | None, typer.Option(help="BattLeDIM: score only until this date (YYYY-MM-DD)")
    ] = None,
    synthetic: Annotated[
        int | None,
        typer.Option(
            "--synthetic",
            metavar="N",
            help="Detection-limit curve: N synthetic L-Town leaks (random pipe, start, "
            "season, 0.5-20 m³/h, abrupt or incipient) plus two leak-free years, replayed "
            "through the leak detector; prints the probability of detection within 2 and "
            "7 days per size band and false alarms per month (uses --seed)",
        ),
    ] = None,
    meters: Annotated[
        int | None,
        typer.Option(
            "--meters",
            metavar="N",
            help="Household water meters: N simulated households (leaks, heavy users, "
            "bursts, reverse flow, tamper, dead batteries) for --days (default 7) through "
            "the cloud's codec and the meter detectors; recall/precision per detector "
            "(uses --seed; needs the simulator)",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for scenario exports and --synthetic")] = 1,
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
    years: list[Path] = []
    if continuous:
        years, names = [Path(n) for n in names], []
        if not years:
            raise typer.BadParameter("--continuous needs BattLeDIM directories: A B ...")
    elif battledim_path is not None:
        years = [battledim_path]
    if meters is not None:
        if _meter_eval is None:
            raise typer.BadParameter("--meters needs the simulator (pip install .[sim])")
        if meters < 1:
            raise typer.BadParameter(f"--meters {meters}: need at least 1 household")
        results["meters"] = _meter_eval(meters, seed, days or 7.0, cfg)
        if not names and not exports and not years and synthetic is None:
            _write_json(json_out, results)
            return
    if synthetic is not None:
        if synthetic < 1:
            raise typer.BadParameter(f"--synthetic {synthetic}: need at least 1 leak")
        curve = _synthetic(synthetic, seed, cfg)
        results["synthetic"] = curve.to_json()
        if not names and not exports and not years:
            _write_json(json_out, results)
            return
    if not names and not exports and not years:
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
    if years:
        try:
            res = battledim.run(
                years,
                cfg,
                score_from=_date(score_from, "--score-from"),
                score_until=_date(score_until, "--score-until"),
            )
        except DatasetError as exc:
            raise typer.BadParameter(str(exc)) from exc
        print_battledim(res)
        results["battledim"] = battledim_json(res)
    _write_json(json_out, results)


def _write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


def _synthetic(n: int, seed: int, cfg: DetectConfig) -> synthetic.Curve:
    """Run the curve with a progress bar and print its table."""
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("synthetic L-Town runs", total=None)
        curve = synthetic.run_curve(
            n, seed, cfg, progress=lambda msg: bar.update(task, advance=1, description=msg)
        )
    t = Table(title=f"Detection-limit curve: {n} synthetic L-Town leaks, seed {seed}")
    for col in (
        "type",
        "size m³/h",
        "leaks",
        "found ≤ 2 days",
        "found ≤ 7 days",
        "≤ 2 d, block zone",
    ):
        t.add_column(col, justify="left" if col == "type" else "right")
    for r in curve.rows():
        lo, hi = r["band_m3h"]
        t.add_row(r["type"], f"{lo:g}–{hi:g}", str(r["leaks"]), _pct(r["pod_2d"]),
                  _pct(r["pod_7d"]), _pct(r["pod_2d_block_zone"]))  # fmt: skip
    console.print(t)
    found, of = curve.headline()
    bfound, bof = curve.headline("block")
    lo, hi = curve.headline_interval()
    console.print(
        f"headline: abrupt ≥ 5 m³/h found within 2 days {found}/{of} = "
        f"{_pct(found / of if of else math.nan)} (95 % interval {_pct(lo)}–{_pct(hi)}) "
        f"(block zone {bfound}/{bof}; goal ≥ 95 %) · false alarms on leak-free runs "
        f"{curve.free_false_alarms} in {curve.free_months:.1f} months = "
        f"{curve.free_per_month:.2f}/month (goal ≤ 1) · in the leak runs: "
        f"{curve.false_alarms} false, {curve.repeats} repeats over {curve.leak_run_months:.1f} "
        f"months · {curve.seconds:.0f} s"
    )
    _print_misses(curve)
    return curve


def _print_misses(curve: synthetic.Curve, limit: int = 20) -> None:
    """The headline's misses, each with what came before it: a leak found late is the
    detector's speed; one after an alarm in its zone may have passed as that alarm's
    growth (docs/detectors.md)."""
    misses = curve.misses()
    if not misses:
        return
    t = Table(title=f"Abrupt leaks ≥ 5 m³/h not found within 2 days ({len(misses)})")
    for col in ("zone", "size m³/h", "found after", "last alarm in its zone before it"):
        t.add_column(col, justify="left" if col == "zone" else "right")
    for o in misses[:limit]:
        lk = o.leak.leak
        after = (
            f"{(o.found_at - lk.start).total_seconds() / 86400:.2f} d" if o.found_at else "never"
        )
        before = o.alarm_before
        ago = (
            f"{before.total_seconds() / 3600:.0f} h earlier"
            if before is not None
            else f"none in {synthetic.PRIOR_LOOKBACK.days} days"
        )
        t.add_row(o.leak.zone, f"{lk.size_m3h or 0.0:.1f}", after, ago)
    console.print(t)
    if len(misses) > limit:
        console.print(f"… and {len(misses) - limit} more (all in --json)")


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.0f} %"
