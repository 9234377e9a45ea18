"""Overview page, the map's marker data, and the console's static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from cloud.citizen.catalog import STATUS_LABELS
from cloud.commands.notices import kpi as notice_kpi
from cloud.console.overview import MARKER_LABELS, SEVERITIES, markers, overview
from cloud.console.web import ConsoleRoute, Staff, db, render, service_of, settings_of

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
STATIC = (Path(__file__).resolve().parents[1] / "static").resolve()
_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@router.get("", name="console_root")
def root(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("console_overview").path, status_code=303)


@router.get("/", name="console_overview")
def overview_page(request: Request, staff: Staff) -> HTMLResponse:
    sm = db(request)
    data = overview(sm)
    gateways = service_of(request).registry.gateways().values()
    problems = [m for m in markers(sm) if m["state"] != "online"]
    problems.sort(key=lambda m: (list(MARKER_LABELS).index(m["state"]), m["id"]))
    return render(
        request,
        "overview.html",
        "概況",
        data=data,
        severities=SEVERITIES,
        report_labels=STATUS_LABELS,
        problems=problems[:200],
        problems_total=len(problems),
        marker_labels=MARKER_LABELS,
        tiles=settings_of(request).map_tiles or "",
        gateways_total=len(gateways),
        gateways_offline=sum(1 for g in gateways if g.state == "offline"),
        notice_kpi=notice_kpi(service_of(request).commands.service),
        automation=service_of(request).commands.status(),
    )


@router.get("/map.json", name="console_map_data")
def map_data(request: Request, staff: Staff) -> JSONResponse:
    return JSONResponse(
        {"markers": markers(db(request)), "labels": MARKER_LABELS},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/static/{path:path}", name="console_static")
def static(path: str) -> FileResponse:
    # static files need no session: they hold no data (Leaflet, styles, the map script)
    target = (STATIC / path).resolve()
    if not target.is_file() or STATIC not in target.parents or target.suffix not in _TYPES:
        raise HTTPException(404, detail=f"no static file {path!r}")
    return FileResponse(
        target, media_type=_TYPES[target.suffix], headers={"Cache-Control": "max-age=3600"}
    )
