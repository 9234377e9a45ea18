"""Generate ``schemas/json/*.schema.json`` from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from schemas.alert import Alert
from schemas.clock import SimClock
from schemas.commands import Command, CommandResult
from schemas.wire import (
    Batch,
    DeadLetter,
    DeviceStatus,
    GatewayHealth,
    GatewayMeta,
    GatewayStatus,
    Reading,
)

JSON_DIR = Path(__file__).parent / "json"

MODELS: dict[str, type[BaseModel] | TypeAdapter[Reading]] = {
    "batch": Batch,
    "reading": TypeAdapter(Reading),
    "device_status": DeviceStatus,
    "gateway_status": GatewayStatus,
    "gateway_health": GatewayHealth,
    "gateway_meta": GatewayMeta,
    "dead_letter": DeadLetter,
    "alert": Alert,
    "command": Command,
    "command_result": CommandResult,
    "sim_clock": SimClock,
}


def render() -> dict[str, str]:
    """File name -> JSON text, deterministic so a test can compare with what is committed."""
    out = {}
    for name, model in MODELS.items():
        if isinstance(model, TypeAdapter):
            schema = model.json_schema()
        else:
            schema = model.model_json_schema()
        schema["$id"] = f"https://akita-telemetry.example/schemas/{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return out


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in render().items():
        path = directory / fname
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
