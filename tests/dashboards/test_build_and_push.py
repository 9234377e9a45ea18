"""The committed JSON is what the sources build; provisioning matches the data source
definition; ``push`` creates then updates through grafana-client, idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dashboards.build import JSON_DIR, dashboards, models, render
from dashboards.cli import app
from dashboards.datasource import datasource_model
from dashboards.influxql import DATASOURCE_UID
from dashboards.parts import parts
from dashboards.push import FOLDER_UID, PushError, push
from tests.dashboards.grafana_recorder import GrafanaRecorder

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def test_committed_json_equals_a_fresh_build() -> None:
    fresh = render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.json")}
    assert committed == fresh, "run 'akita dashboards build' and commit dashboards/json"


def test_build_check_command_detects_a_stale_file(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["build", "--out", str(tmp_path)]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in dashboards())
    assert runner.invoke(app, ["build", "--check", "--out", str(tmp_path)]).exit_code == 0
    stale = tmp_path / "flood.json"
    stale.write_text(stale.read_text().replace("Flood", "Flod"))
    result = runner.invoke(app, ["build", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "flood.json" in result.output


def test_dashboards_have_unique_uids_panel_ids_and_kind_variables() -> None:
    ms = models()
    uids = [m["uid"] for m in ms.values()]
    # one per kind with a dashboard part, plus system health
    assert len(set(uids)) == len(uids) == len(parts()) + 1
    for name, m in ms.items():
        ids = [p["id"] for p in m["panels"]] + [
            q["id"] for p in m["panels"] for q in p.get("panels", [])
        ]
        assert len(set(ids)) == len(ids), name
        for p in m["panels"]:
            for q in [p, *p.get("panels", [])]:
                for t in q.get("targets", []):
                    assert t["datasource"]["uid"] == DATASOURCE_UID
                    assert t["rawQuery"] is True
                    # every query names its retention policy: the DBRP/3.x mapping relies on it
                    assert '"raw".' in t["query"] or '"agg_1m".' in t["query"], q["title"]
    # long ranges read the downsampled policy
    long_rows = [p for m in ms.values() for p in m["panels"] if p["type"] == "row"]
    assert long_rows and all(
        '"agg_1m".' in t["query"] for r in long_rows for q in r["panels"] for t in q["targets"]
    )


def test_provisioning_matches_the_datasource_definition() -> None:
    ds_yaml = yaml.safe_load((PROVISIONING / "datasources" / "akita-influxdb.yaml").read_text())
    (ds,) = ds_yaml["datasources"]
    model = datasource_model("http://influx:8086", token="t")
    for key in ("uid", "name", "type", "access"):
        assert ds[key] == model[key], key
    assert ds["jsonData"] == model["jsonData"]
    assert ds["secureJsonData"]["httpHeaderValue1"].startswith("Token ")
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "akita.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    assert provider["folderUid"] == FOLDER_UID


def test_push_creates_then_updates_idempotently() -> None:
    dashboards = models()
    with GrafanaRecorder() as grafana:
        first = push(
            grafana.url,
            "test-token",
            dashboards=dashboards,
            influx_url="http://influx:8086",
            influx_token="secret",
        )
        assert first.datasource == "created"
        assert first.folder == "created"
        state = grafana.state
        assert set(state.datasources) == {DATASOURCE_UID}
        ds = state.datasources[DATASOURCE_UID]
        assert ds["jsonData"]["dbName"] == "akita" and ds["jsonData"]["version"] == "InfluxQL"
        assert ds["secureJsonData"] == {"httpHeaderValue1": "Token secret"}
        assert set(state.dashboards) == {m["uid"] for m in dashboards.values()}
        assert all(
            b["folderUid"] == FOLDER_UID and b["overwrite"] for b in state.dashboards.values()
        )
        calls_after_first = len(state.calls)

        second = push(
            grafana.url,
            "test-token",
            dashboards=dashboards,
            influx_url="http://influx2:8086",
        )
        assert second.datasource == "updated" and second.folder == "exists"
        assert len(state.datasources) == 1 and len(state.dashboards) == len(dashboards)
        assert state.datasources[DATASOURCE_UID]["url"] == "http://influx2:8086"
        second_calls = [(c.method, c.path.split("?")[0]) for c in state.calls[calls_after_first:]]
        assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in second_calls
        assert ("POST", "/api/datasources") not in second_calls
        assert all(c.auth == "Bearer test-token" for c in state.calls)
        pushed = state.dashboards[dashboards["flood"]["uid"]]["dashboard"]
        assert pushed["panels"] == dashboards["flood"]["panels"]


def test_push_reports_a_refused_token() -> None:
    with GrafanaRecorder() as grafana:
        with pytest.raises(PushError, match="data source"):
            push(grafana.url, "wrong", dashboards=models(), influx_url="http://i:8086")
        assert grafana.state.dashboards == {}


def test_push_command() -> None:
    with GrafanaRecorder() as grafana:
        result = CliRunner().invoke(
            app,
            ["push", "--url", grafana.url, "--influx-url", "http://influx:8086"],
            env={"GRAFANA_TOKEN": "test-token"},
        )
        assert result.exit_code == 0, result.output
        assert "data source created" in result.output
        assert len(grafana.state.dashboards) == len(models())
        assert json.dumps(grafana.state.datasources[DATASOURCE_UID]).count("influx:8086") == 1
