"""``akita demo`` against a fresh Mosquitto and a fresh influxd (tests/servers.py).

The demo runs in this process so the test can read the panel's state model
(``Running.state``) instead of scraping the terminal; the rendered panel is checked once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from akita.cli import app
from akita.demo import DemoOptions, Running, _main
from akita.pipeline_state import PipelineState, render
from tests.servers import Influx, Mosquitto, free_port, running_influx


async def _until(what: str, check: Callable[[], bool], timeout: float, running: Running) -> float:
    """Poll ``check`` every 0.1 s; the seconds it took, or fail naming ``what`` and
    showing the panel's last state (refused messages, a part that is down)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"gave up waiting {timeout:g} s for {what}; panel: {running.state}")


def _options(tmp_path: Path, mqtt_port: int, influx: Influx) -> DemoOptions:
    return DemoOptions(
        scenario="demo",
        seed=1,
        speed=60.0,
        api_host="127.0.0.1",
        api_port=free_port(),
        workdir=tmp_path / "demo",
        mqtt=f"mqtt://127.0.0.1:{mqtt_port}",
        store=f"influx+http://127.0.0.1:{influx.port}/akita",
        duration=None,
    )


def _state(running: Running) -> PipelineState:
    assert running.state is not None, "the panel has not been drawn yet"
    return running.state


def test_demo_prepares_fresh_influx_stores_alerts_and_shows_store_down(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    # a private influxd: the test stops it, and the session one must stay up
    (tmp_path / "influx").mkdir()
    with running_influx(tmp_path / "influx") as influx:
        running = Running()
        stop = asyncio.Event()
        opts = _options(tmp_path, mosquitto.port, influx)

        async def scenario() -> None:
            demo = asyncio.create_task(_main(opts, running, stop))
            try:
                await _until(
                    "readings stored and an alert open",
                    lambda: (
                        running.state is not None
                        and running.state.points_total > 0
                        and running.state.alerts_open > 0
                    ),
                    60,
                    running,
                )
                state = _state(running)
                assert state.broker.ok and state.store.ok, state
                stored = influx.query("SELECT count(*) FROM /.*/", db="akita")
                assert stored["results"][0].get("series"), stored
                rps = influx.query('SHOW RETENTION POLICIES ON "akita"')
                assert {"raw", "agg_1m"} <= {v[0] for v in rps["results"][0]["series"][0]["values"]}
                cqs = influx.query("SHOW CONTINUOUS QUERIES")["results"][0]["series"]
                assert any(s["name"] == "akita" and s.get("values") for s in cqs), cqs

                await asyncio.to_thread(influx.stop)
                took = await _until(
                    "the panel to show the store down with a reason",
                    lambda: (
                        _state(running).store.ok is False and bool(_state(running).store.reason)
                    ),
                    5,
                    running,
                )
                state = _state(running)
                print(f"store shown down {took:.1f} s after influxd stopped: {state.store.reason}")
                assert "unreachable" in (state.store.reason or ""), state.store
                assert state.broker.ok, state.broker
                console = Console(record=True, width=100)
                console.print(render(state))
                text = console.export_text()
                assert "store" in text and "down: influxdb" in text and "unreachable" in text
                assert "broker" in text and "readings stored" in text
            finally:
                stop.set()
                await demo

        asyncio.run(scenario())


def test_demo_stops_at_once_with_the_command_to_run(tmp_path: Path, mosquitto: Mosquitto) -> None:
    dead = f"influx+http://127.0.0.1:{free_port()}/akita"
    args = ["demo", "--workdir", str(tmp_path / "d"), "--api-port", str(free_port())]
    args += ["--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}", "--store", dead]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "could not be prepared" in result.output and "unreachable" in result.output
    assert f"AKITA_STORE__URL='{dead}' akita cloud init-db" in result.output

    gone = f"mqtt://127.0.0.1:{free_port()}"
    args = [
        "demo",
        "--workdir",
        str(tmp_path / "e"),
        "--api-port",
        str(free_port()),
        "--mqtt",
        gone,
    ]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "does not answer" in result.output and "--mqtt" in result.output
