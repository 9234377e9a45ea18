"""``akita demo``: the whole pipeline on one machine with nothing installed but the package.

simulated devices (Modbus TCP/RTU, NMEA, AKCU) -> edge gateway(s) with their spools ->
MQTT broker (embedded amqtt, or a real Mosquitto with ``--mqtt``) -> cloud ingest ->
store (SQLite, or InfluxDB with ``--store``) -> detectors -> alerts -> staff API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

# the demo composes every extra; importing one of each here makes a gateway with only
# the 'edge' extra say which extra is missing instead of failing mid-start
import amqtt  # noqa: F401
import fastapi  # noqa: F401
import numpy  # noqa: F401
import typer
from rich.console import Console
from rich.live import Live

if TYPE_CHECKING:
    import uvicorn

    from akita.broker import EmbeddedBroker
    from cloud.service import CloudService
    from cloud.settings import CloudSettings
    from edge.agent import Agent
    from firmware_sim.fleet import RunningFleet

from akita.pipeline_state import PipelineState, StoreProbe, broker_reachable, redact_url

app = typer.Typer(
    help=(
        "Run the whole pipeline on this machine: simulated devices -> edge gateway -> MQTT -> "
        "cloud ingest -> store -> detectors -> alerts -> staff API.\n\n"
        "Defaults need nothing installed: an embedded MQTT broker and SQLite. Point it at real "
        "servers with --mqtt mqtt://host:1883 and --store influx+http://host:8086/akita: the "
        "demo creates the InfluxDB database, retention policies and continuous queries as "
        "'akita cloud init-db' does, or stops at once saying what to run. The live panel "
        "shows whether the broker and the store are ok, or down and why.\n\n"
        "Example: akita demo --speed 60   (one simulated hour per real minute)\n\n"
        "Example: akita demo --mqtt mqtt://127.0.0.1:1883 "
        "--store influx+http://127.0.0.1:8086/akita"
    ),
    invoke_without_command=True,
)
console = Console()
log = logging.getLogger("akita.demo")


@dataclass
class DemoOptions:
    scenario: str
    seed: int
    speed: float
    api_host: str
    api_port: int
    workdir: Path
    mqtt: str | None
    store: str | None
    duration: float | None


class DemoStop(Exception):
    """The demo cannot start; the message says why and what to run."""


@dataclass
class Running:
    """Everything the demo started, stopped in reverse order, and what the panel shows."""

    broker: EmbeddedBroker | None = None
    fleet: RunningFleet | None = None
    service: CloudService | None = None
    server: uvicorn.Server | None = None
    probe: StoreProbe | None = None
    agents: list[Agent] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    state: PipelineState | None = None  # the panel's last reading


@app.callback()
def demo(
    scenario: str = typer.Option("demo", help="Simulator scenario (see 'akita sim list')."),
    seed: int = typer.Option(1, help="Scenario seed: the same seed gives the same data."),
    speed: float = typer.Option(60.0, help="Simulated seconds per real second."),
    api_host: str = typer.Option("127.0.0.1", help="Address the staff API listens on."),
    api_port: int = typer.Option(8080, help="Port of the staff API."),
    workdir: Path = typer.Option(Path(".akita/demo"), help="Spools, databases, logs, configs."),
    mqtt: str | None = typer.Option(
        None, help="Use this broker instead of the embedded one, e.g. mqtt://localhost:1883."
    ),
    store: str | None = typer.Option(
        None, help="Time-series store URL, e.g. influx+http://localhost:8086/akita."
    ),
    duration: float | None = typer.Option(
        None, help="Stop by itself after this many seconds (default: run until Ctrl-C)."
    ),
) -> None:
    """Run the demo until Ctrl-C."""
    opts = DemoOptions(scenario, seed, speed, api_host, api_port, workdir, mqtt, store, duration)
    opts.workdir.mkdir(parents=True, exist_ok=True)
    _log_to_file(opts.workdir / "demo.log")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_main(opts))
    except DemoStop as exc:
        console.print(f"[red]cannot start the demo:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print("[bold]demo stopped[/bold]; logs in " + str(opts.workdir / "demo.log"))


def _log_to_file(path: Path) -> None:
    # the terminal shows the live summary; every component's events go to the log file
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


async def _main(
    opts: DemoOptions, running: Running | None = None, stop: asyncio.Event | None = None
) -> None:
    """Start everything, show the panel until ``stop`` (Ctrl-C), stop everything."""
    stop = stop or asyncio.Event()
    running = running or Running()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _start(opts, running, stop)
        await _show(opts, running, stop)
    finally:
        await _shutdown(running, stop)


async def _start(opts: DemoOptions, running: Running, stop: asyncio.Event) -> None:
    from akita.broker import EmbeddedBroker
    from cloud.provisioning import read_device_list
    from cloud.service import CloudService
    from edge.agent import Agent
    from edge.config import load_config
    from firmware_sim.fleet import start_fleet

    host, port = _broker_address(opts.mqtt)
    if opts.mqtt is not None:
        await _check_broker(host, port)
    if opts.store is not None:
        await _prepare_store(opts.store)
        running.probe = StoreProbe(opts.store)
    if opts.mqtt is None:
        broker = EmbeddedBroker()
        await broker.start()
        running.broker = broker
        host, port = broker.host, broker.port
    console.print(f"MQTT broker on {host}:{port}" + (" (embedded)" if opts.mqtt is None else ""))

    # the cloud follows the simulator's clock, so an accelerated scenario is on time
    clock_file = opts.workdir / "sim" / "clock.json"
    clock_file.unlink(missing_ok=True)  # a previous run's clock must not leak in
    service = CloudService(_cloud_settings(opts, host, port, clock_file.resolve()))
    await asyncio.to_thread(service.start)
    running.service = service
    running.server = await _serve_api(opts, service, running)

    fleet = await start_fleet(
        opts.scenario,
        seed=opts.seed,
        scale="small",
        speed=opts.speed,
        workdir=opts.workdir / "sim",
        mqtt_host=host,
        mqtt_port=port,
        spool_dir=opts.workdir / "spool",
    )
    running.fleet = fleet
    for path in fleet.edge_configs:
        # as staff would with `akita cloud device import`: the ingest accepts only the
        # devices provisioned for a gateway
        service.registry.provision(*read_device_list(path))
        agent = Agent(load_config(path))
        running.agents.append(agent)
        running.tasks.append(asyncio.create_task(agent.run(stop)))


async def _check_broker(host: str, port: int) -> None:
    reason = await asyncio.to_thread(broker_reachable, host, port, 3.0)
    if reason is not None:
        raise DemoStop(
            f"the MQTT broker given with --mqtt does not answer ({reason}). Start it "
            "(sudo systemctl start mosquitto), or leave out --mqtt to use the embedded broker."
        )


async def _prepare_store(url: str) -> None:
    """Create what the store needs (InfluxDB: database, retention, continuous queries)
    with the same function as 'akita cloud init-db'; stop at once if that fails."""
    from cloud.errors import CloudError
    from cloud.store import init_db

    try:
        done = await asyncio.to_thread(init_db, url)
    except CloudError as exc:
        raise DemoStop(
            f"the store {redact_url(url)} could not be prepared: {exc}\n"
            "Start the store and run the demo again, or prepare it by hand with:\n"
            f"  AKITA_STORE__URL='{redact_url(url)}' akita cloud init-db"
        ) from exc
    log.info("demo_store_prepared url=%s statements=%d", redact_url(url), len(done))
    if done:
        console.print(f"store prepared: {len(done)} statements (as 'akita cloud init-db')")


def _broker_address(url: str | None) -> tuple[str, int]:
    if url is None:
        return "127.0.0.1", 0
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise typer.BadParameter(f"expected mqtt://host:port, got {url!r}", param_hint="--mqtt")
    return parts.hostname, parts.port or 1883


def _cloud_settings(opts: DemoOptions, host: str, port: int, clock_file: Path) -> CloudSettings:
    from cloud.settings import CloudSettings

    store = opts.store or f"sqlite:///{(opts.workdir / 'telemetry.db').resolve()}"
    return CloudSettings.for_demo(
        mqtt_host=host,
        mqtt_port=port,
        store_url=store,
        database_url=f"sqlite:///{(opts.workdir / 'akita.db').resolve()}",
        api_host=opts.api_host,
        api_port=opts.api_port,
        clock_file=clock_file,
        embedded_broker=opts.mqtt is None,
    )


def _demo_server_class() -> type[uvicorn.Server]:
    import uvicorn

    class DemoServer(uvicorn.Server):
        """The demo owns Ctrl-C; uvicorn must not take over the signal handlers."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return DemoServer


async def _serve_api(opts: DemoOptions, service: CloudService, running: Running) -> uvicorn.Server:
    import uvicorn

    from cloud.api.app import create_app

    _DemoServer = _demo_server_class()
    config = uvicorn.Config(
        create_app(service),
        host=opts.api_host,
        port=opts.api_port,
        log_level="warning",
        lifespan="on",
    )
    server = _DemoServer(config)
    running.tasks.append(asyncio.create_task(server.serve()))
    while not server.started:
        await asyncio.sleep(0.05)
    return server


def _demo_operator(service: CloudService) -> tuple[str, str]:
    """An operator for the staff console, with a fresh random password each run (the
    demo's database may outlive a run; the password printed is always the one that works)."""
    import secrets

    from cloud.console.users import UserError, add_user, set_password
    from cloud.db.console import create_tables

    create_tables(service.engine)  # as `akita cloud user add` does
    name, password = "demo", secrets.token_urlsafe(12)
    try:
        add_user(
            service.sessionmaker,
            name=name,
            role="operator",
            password=password,
            display_name="デモ 担当者",
            actor="akita-demo",
        )
    except UserError:  # a user from an earlier run
        set_password(service.sessionmaker, name, password, actor="akita-demo")
    return name, password


async def _show(opts: DemoOptions, running: Running, stop: asyncio.Event) -> None:
    from akita.pipeline_state import read_state, render
    from cloud.api.auth import create_token

    service = running.service
    assert service is not None, "_start sets the service before _show runs"
    token = await asyncio.to_thread(
        create_token,
        service.sessionmaker,
        name=f"demo-{int(time.time())}",
        role="viewer",
    )
    curl = f"curl -H 'Authorization: Bearer {token}' http://{opts.api_host}:{opts.api_port}/alerts"
    user, password = await asyncio.to_thread(_demo_operator, service)
    # printed outside the live panel too, so it can be copied without line wraps
    console.print(f"[bold]Staff API:[/bold] http://{opts.api_host}:{opts.api_port}/docs")
    console.print(
        f"[bold]Staff console:[/bold] http://{opts.api_host}:{opts.api_port}/console/ "
        f"(user {user}, password {password})",
        soft_wrap=True,
    )
    console.print(f"[bold]Read the alerts:[/bold]\n{curl}", soft_wrap=True)
    started = time.monotonic()
    probe = running.probe or StoreProbe(service.settings.store.url)
    running.probe = probe
    running.state = await asyncio.to_thread(read_state, service, probe, started)
    with Live(render(running.state), console=console, refresh_per_second=2) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            running.state = await asyncio.to_thread(read_state, service, probe, started)
            live.update(render(running.state))
            if opts.duration is not None and time.monotonic() - started >= opts.duration:
                stop.set()
            if any(t.done() and t.exception() for t in running.tasks):
                stop.set()
    for t in running.tasks:
        if t.done() and not t.cancelled() and t.exception():
            console.print(f"[red]component failed:[/red] {t.exception()!r}")
    console.print(curl, soft_wrap=True)


async def _shutdown(running: Running, stop: asyncio.Event) -> None:
    stop.set()
    if running.server is not None:
        running.server.should_exit = True
    for task in running.tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=10)
    if running.fleet is not None:
        await running.fleet.stop()
    if running.service is not None:
        await asyncio.to_thread(running.service.stop)
    if running.broker is not None:
        await running.broker.stop()
    if running.probe is not None:
        running.probe.close()
