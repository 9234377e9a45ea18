"""Importing a gateway's TOML provisions its cameras as ``flood_camera`` devices (issue 18):
the registry, not the gateway's meta, says which gateway owns which camera."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.errors import CloudError
from cloud.provisioning import read_device_list

SAMPLE = Path(__file__).parents[2] / "deploy" / "edge" / "flood_camera.toml"


def test_the_cameras_of_an_edge_toml_are_devices_of_its_gateway() -> None:
    gateway, infos = read_device_list(SAMPLE)
    assert gateway == "gw-flood-araya-01"
    cam = next(i for i in infos if i.device_id == "cam-araya-underpass")
    assert (cam.kind.value, cam.site, cam.poll_interval_s) == (
        "flood_camera",
        "新屋アンダーパス",
        600.0,
    )


def test_a_camera_without_an_id_is_refused_naming_it(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace('id = "cam-araya-underpass"\n', "")
    bad = tmp_path / "edge.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(CloudError, match=r"cameras\.cameras\[0\]: device_id"):
        read_device_list(bad)
