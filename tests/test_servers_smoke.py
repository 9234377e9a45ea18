"""The test servers themselves start and answer (so a broken fixture shows up first)."""

from __future__ import annotations

import socket

from tests.servers import Influx, Mosquitto


def test_mosquitto_accepts_connections(mosquitto: Mosquitto) -> None:
    with socket.create_connection(("127.0.0.1", mosquitto.port), 2):
        pass


def test_influx_answers_influxql(influx: Influx) -> None:
    influx.query("CREATE DATABASE smoke")
    result = influx.query("SHOW DATABASES")
    names = [v[0] for v in result["results"][0]["series"][0]["values"]]
    assert "smoke" in names
