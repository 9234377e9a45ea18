"""A tiny HTTP server that answers the few Grafana API calls ``push`` makes and records
them. No Grafana runs here, so this is the one boundary where a stand-in is used; it
keeps state (data sources, folders, dashboards by uid) so idempotency is observable."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    path: str
    auth: str | None
    body: Any


@dataclass
class GrafanaState:
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: GrafanaState

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        s = self.state
        s.calls.append(Call(method, self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != "Bearer test-token":
            return self._reply(401, {"message": "Unauthorized"})
        p = self.path.split("?")[0]
        if method == "GET" and p.startswith("/api/datasources/uid/"):
            uid = p.rsplit("/", 1)[1]
            if uid in s.datasources:
                return self._reply(200, s.datasources[uid])
            return self._reply(404, {"message": "Data source not found"})
        if method == "POST" and p == "/api/datasources":
            if body["uid"] in s.datasources:
                return self._reply(409, {"message": "data source with the same uid exists"})
            s.datasources[body["uid"]] = body
            return self._reply(200, {"id": 1, "message": "Datasource added"})
        if method == "PUT" and p.startswith("/api/datasources/uid/"):
            uid = p.rsplit("/", 1)[1]
            if uid not in s.datasources:
                return self._reply(404, {"message": "Data source not found"})
            s.datasources[uid] = body
            return self._reply(200, {"message": "Datasource updated"})
        if method == "GET" and p.startswith("/api/folders/"):
            uid = p.rsplit("/", 1)[1]
            if uid in s.folders:
                return self._reply(200, s.folders[uid])
            return self._reply(404, {"message": "folder not found"})
        if method == "POST" and p == "/api/folders":
            s.folders[body["uid"]] = body
            return self._reply(200, body)
        if method == "POST" and p == "/api/dashboards/db":
            dash = body["dashboard"]
            if dash["uid"] in s.dashboards and not body.get("overwrite"):
                return self._reply(412, {"status": "name-exists"})
            s.dashboards[dash["uid"]] = body
            return self._reply(200, {"status": "success", "uid": dash["uid"]})
        return self._reply(404, {"message": f"unexpected {method} {p}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


class GrafanaRecorder:
    def __init__(self) -> None:
        self.state = GrafanaState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> GrafanaRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
