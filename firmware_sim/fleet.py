"""Run a scenario's fleet behind real protocol servers, in one process.

``start_fleet`` builds the scenario, writes the sim clock (contract B), the labels, the
device list and one edge config per gateway, then serves every device over the
transport its kind's simulator part declares (:class:`firmware_sim.parts.Transport`):

- ``modbus_tcp`` (water blocks, pump stations): one listener per gateway, a unit id per device;
- ``modbus_rtu`` (flood sensors): one RTU bus (a pty pair) per gateway, a unit id per device;
- ``nmea`` (vehicles): one stream per device: a pty at small scale, a TCP port at city scale;
- ``akcu`` (call units): one concentrator line per gateway: a pty (small) or TCP port (city).

Example (what ``akita demo`` does)::

    fleet = await start_fleet("demo", speed=60, workdir=Path("run"), mqtt_port=1883)
    ...  # start one edge agent per fleet.edge_configs
    await fleet.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.drivers.callunit.spec import NAME as CALL_UNIT
from edge.drivers.modbus.spec import RTU as MODBUS_RTU
from edge.drivers.modbus.spec import TCP as MODBUS_TCP
from edge.drivers.nmea.spec import NAME as NMEA
from firmware_sim.edgeconf import Endpoint, build_config, write_config
from firmware_sim.export import devices_json
from firmware_sim.models.callunit import CallUnitModel
from firmware_sim.models.vehicle import VehicleModel
from firmware_sim.parts import Transport, poll_s, register_map, transport
from firmware_sim.plan import SimDevice
from firmware_sim.registers import RegisterMap
from firmware_sim.scenarios import Run, build, days_to_recent
from firmware_sim.servers.akcu import AkcuLine
from firmware_sim.servers.endpoints import PtyEndpoint, TcpEndpoint
from firmware_sim.servers.modbus import LazySlaveContext, RtuPtyBus, TcpListener
from firmware_sim.servers.nmea import fix_sentences
from schemas.clock import SimClock

log = logging.getLogger(__name__)
NMEA_REPORT_S = 10.0  # simulated seconds between fixes (bus trackers: 10-30 s)
# ... but no faster than this on the wall clock (1,300 city streams would swamp a core)
NMEA_MIN_REAL_S = {"small": 0.25, "city": 1.0}
STREAM_SILENCE_FACTOR = 2.5  # edge poll interval of a vehicle >= this many fix periods
TICK_REAL_S = 0.25


@dataclass
class DeviceSummary:
    device_id: str
    kind: str
    gateway: str
    endpoint: str


@dataclass
class RunningFleet:
    run: Run
    clock: SimClock
    clock_path: Path
    labels_path: Path
    devices_path: Path
    edge_configs: list[Path]
    devices: list[DeviceSummary]
    listeners: list[TcpListener] = field(default_factory=list)
    rtu_buses: list[RtuPtyBus] = field(default_factory=list)
    streams: list[tuple[VehicleModel, PtyEndpoint | TcpEndpoint]] = field(default_factory=list)
    lines: list[AkcuLine] = field(default_factory=list)
    contexts: list[LazySlaveContext] = field(default_factory=list)
    nmea_every_real_s: float = 0.5
    _task: asyncio.Task[None] | None = None

    @property
    def scenario(self) -> str:
        return self.run.scenario.name

    def modbus_reads(self) -> int:
        return sum(c.reads for c in self.contexts)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for lis in self.listeners:
            await lis.stop()
        for bus in self.rtu_buses:
            await bus.stop()
        for _, ep in self.streams:
            await ep.stop()
        for line in self.lines:
            await line.endpoint.stop()
        log.info("fleet_stopped scenario=%s", self.scenario)

    async def __aenter__(self) -> RunningFleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _pump(self) -> None:
        """Drive the line protocols: NMEA fixes and call-unit messages, in simulated time."""
        nmea_every = self.nmea_every_real_s
        next_nmea = time.monotonic()
        while True:
            try:
                now = self.clock.now_ts()
                for line in self.lines:
                    line.tick(now)
                if time.monotonic() >= next_nmea:
                    next_nmea += nmea_every
                    for model, ep in self.streams:
                        if ep.has_listener and model.online(now):
                            ep.write(fix_sentences(model, now).encode("ascii"))
            except Exception:  # the loop must survive one bad device; log why
                log.exception("fleet_tick_failed scenario=%s", self.scenario)
            await asyncio.sleep(TICK_REAL_S)


async def start_fleet(
    scenario: str,
    *,
    seed: int = 1,
    scale: str = "small",
    speed: float = 1.0,
    workdir: Path,
    host: str = "127.0.0.1",
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    spool_dir: Path | None = None,
    days: float | None = None,
    sim_offset_s: float = 0.0,
    streams: str | None = None,
    calendar: str = "recent",
) -> RunningFleet:
    """Build ``scenario`` and serve its fleet; see the module docstring.

    ``sim_offset_s`` starts the clock that far into the scenario (to jump to a fault).
    ``streams`` is ``"pty"`` or ``"tcp"`` for the NMEA and call-unit lines (default:
    pty at small scale, TCP at city scale, where thousands of ptys would not do).
    ``calendar="recent"`` (default) moves the scenario by whole days to start at the
    latest 00:00 JST before now, so readings carry recent timestamps (an ingest refuses
    data older than its retention); ``"scenario"`` keeps the scenario's own date, as
    exports do. At ``speed`` > 1 simulated time overtakes the wall clock after
    (time since that midnight) / (speed - 1).
    """
    if calendar not in ("recent", "scenario"):
        raise ValueError(f"calendar must be 'recent' or 'scenario' (got {calendar!r})")
    if streams not in (None, "pty", "tcp"):
        raise ValueError(f"streams must be 'pty' or 'tcp' (got {streams!r})")
    shift = days_to_recent(scenario, time.time()) if calendar == "recent" else 0
    run = build(scenario, seed=seed, scale=scale, days=days, shift_days=shift)
    plan = run.plan
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    spool = (spool_dir or workdir / "spool").resolve()
    clock = SimClock(origin_real=time.time(), origin_sim=plan.start + sim_offset_s, speed=speed)
    clock_path = workdir / "clock.json"
    clock.write(clock_path)
    now = clock.now_ts
    use_tcp = streams == "tcp" if streams is not None else scale == "city"

    nmea_every = max(NMEA_REPORT_S / speed, NMEA_MIN_REAL_S[scale])
    fleet = RunningFleet(
        run=run,
        clock=clock,
        clock_path=clock_path,
        labels_path=workdir / "labels.json",
        devices_path=workdir / "devices.json",
        edge_configs=[],
        devices=[],
        nmea_every_real_s=nmea_every,
    )
    try:
        for gw, members in sorted(plan.gateways().items()):
            site = _Gateway(gw, host, now, use_tcp, STREAM_SILENCE_FACTOR * nmea_every * speed)
            buses: dict[str, str] = {}
            placed = await _place(fleet, site, members, buses)
            cfg = build_config(
                gw,
                placed,
                buses,
                clock_file=clock_path,
                spool_dir=spool,
                mqtt_host=mqtt_host,
                mqtt_port=mqtt_port,
            )
            fleet.edge_configs.append(write_config(cfg, workdir / "edge" / f"{gw}.toml"))
            for d, ep_ in placed:
                fleet.devices.append(DeviceSummary(d.id, d.kind.value, gw, ep_.describe()))
    except BaseException:
        await fleet.stop()
        raise
    fleet.labels_path.write_text(_dumps(run.labels_json()), encoding="utf-8")
    fleet.devices_path.write_text(_dumps(devices_json(run)), encoding="utf-8")
    fleet._task = asyncio.create_task(fleet._pump(), name=f"fleet-{scenario}")
    log.info(
        "fleet_started scenario=%s scale=%s devices=%d gateways=%d speed=%s",
        scenario,
        scale,
        len(fleet.devices),
        len(fleet.edge_configs),
        speed,
    )
    return fleet


@dataclass(frozen=True)
class _Gateway:
    """What a transport needs to serve one gateway's devices."""

    name: str
    host: str
    now: Callable[[], float]
    use_tcp: bool  # line protocols on TCP ports rather than ptys
    # the edge counts a stream silent for one poll interval as a failed poll: leave room
    stream_poll_s: float


Placed = list[tuple[SimDevice, Endpoint]]
_Serve = Callable[[RunningFleet, _Gateway, list[SimDevice], dict[str, str]], Awaitable[Placed]]


async def _place(
    fleet: RunningFleet, gw: _Gateway, members: list[SimDevice], buses: dict[str, str]
) -> Placed:
    """Serve a gateway's devices, transport by transport in :class:`Transport` order."""
    by_transport = {t: [d for d in members if transport(d.kind) is t] for t in Transport}
    placed: Placed = []
    for t, devices in by_transport.items():
        if devices:
            placed += await _SERVE[t](fleet, gw, devices, buses)
    return placed


async def _serve_modbus_tcp(
    fleet: RunningFleet, gw: _Gateway, units: list[SimDevice], buses: dict[str, str]
) -> Placed:
    ctxs = {i: LazySlaveContext(d.model, _served(d), gw.now) for i, d in enumerate(units, 1)}
    lis = TcpListener(f"{gw.name}-modbus", gw.host, ctxs)
    port = await lis.start()
    fleet.listeners.append(lis)
    fleet.contexts.extend(ctxs.values())
    return [
        (d, Endpoint(MODBUS_TCP, host=gw.host, port=port, unit_id=i))
        for i, d in enumerate(units, 1)
    ]


async def _serve_modbus_rtu(
    fleet: RunningFleet, gw: _Gateway, units: list[SimDevice], buses: dict[str, str]
) -> Placed:
    ctxs = {i: LazySlaveContext(d.model, _served(d), gw.now) for i, d in enumerate(units, 1)}
    bus = RtuPtyBus(f"{gw.name}-rtu", ctxs)
    buses[bus.name] = await bus.start()
    fleet.rtu_buses.append(bus)
    fleet.contexts.extend(ctxs.values())
    return [(d, Endpoint(MODBUS_RTU, unit_id=i, bus=bus.name)) for i, d in enumerate(units, 1)]


async def _serve_nmea(
    fleet: RunningFleet, gw: _Gateway, devices: list[SimDevice], buses: dict[str, str]
) -> Placed:
    placed: Placed = []
    for d in devices:
        assert isinstance(d.model, VehicleModel)  # the model NMEA fixes are drawn from
        every = max(poll_s(d.kind), gw.stream_poll_s)
        if gw.use_tcp:
            tep = TcpEndpoint(d.id, gw.host)
            await tep.start()
            fleet.streams.append((d.model, tep))
            placed.append((d, Endpoint(NMEA, host=gw.host, port=tep.port, poll_s=every)))
        else:
            pep = PtyEndpoint(d.id)
            await pep.start()
            fleet.streams.append((d.model, pep))
            placed.append((d, Endpoint(NMEA, serial_port=pep.path, poll_s=every)))
    return placed


async def _serve_akcu(
    fleet: RunningFleet, gw: _Gateway, units: list[SimDevice], buses: dict[str, str]
) -> Placed:
    models: dict[int, CallUnitModel] = {}
    for d in units:
        assert isinstance(d.model, CallUnitModel)  # the model the AKCU line speaks for
        unit = int(d.id.rsplit("-", 1)[1])  # cu-0123 -> unit 123, city-unique
        d.model.unit_id = unit
        d.facts["unit_id"] = unit
        models[unit] = d.model
    ep: PtyEndpoint | TcpEndpoint
    if gw.use_tcp:
        ep = TcpEndpoint(f"{gw.name}-akcu", gw.host)
        await ep.start()
        where = {"host": gw.host, "port": ep.port}
    else:
        ep = PtyEndpoint(f"{gw.name}-akcu")
        await ep.start()
        where = {"serial_port": ep.path}
    fleet.lines.append(AkcuLine(f"{gw.name}-akcu", ep, models))
    return [
        (d, Endpoint(CALL_UNIT, unit_id=d.facts["unit_id"], **where))  # type: ignore[arg-type]
        for d in units
    ]


_SERVE: dict[Transport, _Serve] = {
    Transport.MODBUS_TCP: _serve_modbus_tcp,
    Transport.MODBUS_RTU: _serve_modbus_rtu,
    Transport.NMEA: _serve_nmea,
    Transport.AKCU: _serve_akcu,
}


def _served(device: SimDevice) -> RegisterMap:
    regmap = register_map(device.kind)
    if regmap is None:
        raise ValueError(f"{device.id}: kind {device.kind.value} has no register map to serve")
    return regmap


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"
