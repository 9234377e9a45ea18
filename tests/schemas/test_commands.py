"""The downlink contract: commands and results, their bounds and topics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas import topics
from schemas.commands import (
    FINAL_STATES,
    Command,
    CommandPriority,
    CommandResult,
    CommandState,
)

NOW = datetime(2026, 8, 1, 6, 0, tzinfo=UTC)


def command(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "gateway_id": "gw-araya-01",
        "device_id": "ws-araya-underpass",
        "action": "lamp",
        "params": {"on": True, "pattern": "flash"},
        "issued_at": NOW.isoformat(),
        "expires_at": (NOW + timedelta(minutes=10)).isoformat(),
        "priority": "life_safety",
        "issuer": "rule:flood-lamp",
    }
    body.update(over)
    return body


def test_a_command_round_trips_through_json() -> None:
    cmd = Command.model_validate_json(json.dumps(command()))
    assert cmd.priority is CommandPriority.LIFE_SAFETY
    assert cmd.params == {"on": True, "pattern": "flash"}
    again = Command.model_validate_json(cmd.model_dump_json())
    assert again == cmd
    # scalars keep their JSON type: a bool is not read as 1, an int not as a float
    typed = Command.model_validate(command(params={"on": True, "register": 3, "level": 1.5}))
    assert [type(v) for v in typed.params.values()] == [bool, int, float]


@pytest.mark.parametrize(
    ("over", "field", "value"),
    [
        ({"expires_at": NOW.isoformat()}, "expires_at", "must be after issued_at"),
        (
            {"expires_at": (NOW + timedelta(days=8)).isoformat()},
            "expires_at",
            "at most 7 days",
        ),
        ({"action": "Lamp On"}, "action", "Lamp On"),
        ({"gateway_id": "gw/a"}, "gateway_id", "gw/a"),
        ({"id": "not-a-uuid"}, "id", "not-a-uuid"),
        ({"params": {f"p{i}": i for i in range(17)}}, "params", "at most 16"),
        ({"params": {"on": [1, 2]}}, "params", "[1, 2]"),
        ({"params": {"level": float("inf")}}, "params", "inf"),
        ({"issuer": ""}, "issuer", "at least 1"),
        ({"priority": "urgent"}, "priority", "urgent"),
        ({"issued_at": "2026-08-01T06:00:00"}, "issued_at", "timezone"),
    ],
)
def test_a_bad_command_is_refused_naming_the_field(over: dict, field: str, value: str) -> None:
    with pytest.raises(ValidationError) as err:
        Command.model_validate(command(**over))
    text = str(err.value)
    assert field in text and value in text, text


def test_a_result_carries_state_reason_and_readback() -> None:
    result = CommandResult(
        id=uuid.uuid4(),
        gateway_id="gw-araya-01",
        device_id="ws-araya-underpass",
        state=CommandState.DONE,
        ts=NOW,
        readback={"lamp_current": 0.42, "lamp_on": True},
    )
    assert CommandResult.model_validate_json(result.model_dump_json()) == result
    assert CommandState.ACCEPTED not in FINAL_STATES
    assert set(CommandState) - {CommandState.ACCEPTED} == FINAL_STATES


def test_command_topics_sit_under_the_gateways_own_prefix() -> None:
    assert topics.command("gw-a") == "akita/v1/gw-a/cmd"
    assert topics.command_result("gw-a") == "akita/v1/gw-a/cmd/result"
    assert topics.parse("akita/v1/gw-a/cmd") == ("gw-a", topics.Channel.CMD)
    assert topics.parse("akita/v1/gw-a/cmd/result") == ("gw-a", topics.Channel.CMD_RESULT)
    assert topics.parse("akita/v1/gw-a/cmd/other") is None
    assert topics.parse("akita/v1/deadletter/cmd") is None
    with pytest.raises(ValueError, match="not allowed"):
        topics.command("alerts")


def test_param_numbers_keep_their_type() -> None:
    """1 and 0 stay integers (not true/false) and 80.0 stays a float: a register write of
    0 must not arrive as a coil's false."""
    params = {"one": 1, "zero": 0, "f": 80.0, "b": True, "s": "x"}
    for cmd in (
        Command.model_validate(command(params=params)),
        Command.model_validate_json(json.dumps(command(params=params))),
    ):
        assert cmd.params == params
        assert [type(v) for v in cmd.params.values()] == [int, int, float, bool, str]
