"""The committed JSON Schema files equal a fresh export (run `akita schemas export`)."""

from __future__ import annotations

from schemas.export import JSON_DIR, render


def test_committed_json_schemas_are_fresh() -> None:
    fresh = render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.schema.json")}
    assert set(committed) == set(fresh), "schemas/json has extra or missing files"
    stale = [name for name, text in fresh.items() if committed[name] != text]
    assert not stale, f"stale: {stale}; run `akita schemas export` and commit"


def test_units_and_fiware_names_are_in_the_schema() -> None:
    import json

    batch = json.loads(render()["batch.schema.json"])
    flow = batch["$defs"]["WaterBlockValues"]["properties"]["flow"]
    assert flow["unit"] == "m³/h" and flow["unitCode"] == "MQH" and flow["fiware"] == "flow"
