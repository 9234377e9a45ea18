"""The procedure guide: YAML sample data, each life event's procedures, documents and
counters, shown with the sample-content notice."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.citizen.catalog import load_procedures
from cloud.citizen.errors import CitizenError


def test_shipped_guide_is_complete_and_marked_as_sample() -> None:
    guide = load_procedures()
    assert "見本" in guide.notice
    ids = {e.id for e in guide.events}
    assert {"tennyu", "tenkyo", "shussei", "shibou", "kekkon"} <= ids
    for ev in guide.events:
        assert ev.procedures, ev.id
        for p in ev.procedures:
            assert p.documents and p.deadline
            # counters are resolved from the table, not left as keys
            assert "（" in p.counter or "センター" in p.counter, (ev.id, p.counter)


def test_page_shows_procedures_of_the_chosen_event(citizen) -> None:  # type: ignore[no-untyped-def]
    page = citizen.client.get("/citizen/procedures", params={"event": "shibou"}).text
    assert "見本データ" in page
    assert "死亡届" in page and "7日以内" in page and "死亡診断書" in page
    assert "市民課（本庁舎1階）" in page
    r = citizen.client.get("/citizen/procedures", params={"event": "<b>x</b>"})
    assert r.status_code == 404 and "一覧から選んでください" in r.text
    assert "<b>x</b>" not in r.text


def test_broken_yaml_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("events:\n  - id: x\n    name: X\n", encoding="utf-8")
    with pytest.raises(CitizenError, match=r"events\[0\] is missing 'procedures'"):
        load_procedures(bad)
