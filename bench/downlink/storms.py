"""Alert opened -> lamp read back on, over many storms at one underpass.

    python -m bench.downlink.storms [--storms 50]

The whole path is real: the depth sensor and the warning sign simulated on a pty RTU bus
at 9600 baud, the gateway from ``deploy/edge/warning_sign.toml`` (polls every 0.5 s),
Mosquitto, and the cloud (CloudService: ingest, flood detector, alert lifecycle, rules,
command service) in this process (tests/cloud/commands/storm_rig.py). Each storm raises
the water to 25 cm (警戒) and, once the lamp is on, lowers it to 0 and waits for the
lamp's off. Prints, per storm, the time from the 警戒 alert opening in the cloud to the
lamp command's ``done`` (the gateway's read-back of the coil) arriving in the cloud,
p50/p99 (target p99 <= 2 s), and the time from the depth changing at the sensor (which
includes waiting for the next poll), with the machine's load average.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.downlink.__main__ import pct
from cloud.commands.records import CommandRecord
from cloud.commands.states import CloudState
from tests.cloud.commands.storm_rig import StormSite, storm_site
from tests.servers import running_mosquitto, wait_for

LAMP_RULE = "araya-lamp"


class Marks:
    """When the 警戒 alert opened and when the lamp's read-back arrived (monotonic)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.alert: float | None = None
        self.lamp_on: float | None = None

    def reset(self) -> None:
        with self.lock:
            self.alert = self.lamp_on = None

    def on_alert(self, change: Any) -> None:
        stage = (getattr(change, "extra", None) or {}).get("stage")  # as the rules read it
        with self.lock:
            if change.alert.kind == "flood_stage" and stage == "warning" and self.alert is None:
                self.alert = time.monotonic()

    def on_result(self, record: CommandRecord) -> None:
        on = (record.readback or {}).get("lamp_on") is True
        with self.lock:
            if record.rule_id == LAMP_RULE and record.state is CloudState.DONE and on:
                self.lamp_on = self.lamp_on or time.monotonic()


def one_storm(s: StormSite, marks: Marks) -> tuple[float, float]:
    marks.reset()
    started = time.monotonic()
    s.depth_cm(25)
    wait_for("lamp read back on", lambda: marks.lamp_on is not None and marks.alert is not None)
    assert marks.lamp_on is not None and marks.alert is not None
    opened, lit = marks.alert, marks.lamp_on
    s.depth_cm(0)
    wait_for("lamp off", lambda: _lamp_off_done(s))
    return lit - opened, lit - started


def _lamp_off_done(s: StormSite) -> bool:
    last = s.commands(LAMP_RULE)[-1:]
    return bool(last) and last[0].params == {"value": False} and last[0].state is CloudState.DONE


def run(storms: int, tmp: Path, port: int) -> None:
    with storm_site(tmp, port, f"bench-{uuid.uuid4().hex[:8]}") as s:
        marks = Marks()
        s.cloud.alerts.subscribe(marks.on_alert)
        s.cloud.commands.service.result_listeners.append(marks.on_result)
        wait_for("the gateway online", lambda: s.cloud.commands.service.online("gw-flood-araya-02"))
        wait_for("the sign polled", lambda: s.latest("lamp_on") is not None)
        lat = [one_storm(s, marks) for _ in range(storms)]
    opened = [a * 1000 for a, _ in lat]
    depth = [b * 1000 for _, b in lat]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"storms: {storms}, load average {load} ({os.cpu_count()} cores)")
    print(
        f"  alert opened -> lamp read-back on: p50 {statistics.median(opened):.0f} ms, "
        f"p99 {pct(opened, 0.99):.0f} ms (target <= 2000 ms), max {max(opened):.0f} ms"
    )
    print(
        f"  depth at the sensor -> lamp read-back on (incl. the 0.5 s poll): "
        f"p50 {statistics.median(depth):.0f} ms, p99 {pct(depth, 0.99):.0f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storms", type=int, default=50)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "mosquitto").mkdir()
        with running_mosquitto(tmp / "mosquitto") as broker:
            run(args.storms, tmp, broker.port)


if __name__ == "__main__":
    main()
