"""The downlink contract: commands from the cloud to a gateway's devices, and their results.

A :class:`Command` goes to ``akita/v1/<gateway>/cmd`` (QoS 1, never retained: a retained
command would run again on every reconnect). The gateway answers each state change with
a :class:`CommandResult` on ``akita/v1/<gateway>/cmd/result`` (QoS 1), through its spool,
so a result is never lost to an uplink outage. Both topics sit under the gateway's own
prefix: the broker rule stays "a gateway reads and writes only its own prefix".

States::

    accepted ──> done | failed | expired | rejected
    (rejected and expired may also come first: a command refused on arrival, or one that
    arrived past its expiry, is never accepted)

- ``id`` is chosen by the cloud and reused unchanged on every re-delivery; the gateway
  executes an id at most once and answers a repeat with the state it already has.
- ``expires_at``: a command is never executed after it. Life-safety commands (a siren, a
  notice) are meaningless late, and an old "lamp off" must not undo a newer "lamp on".
- ``params`` is a flat map of scalars, checked against the device's declared actions at
  the edge (bounds, writable registers). The contract bounds sizes only.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, Strict, model_validator

from schemas.wire import INT64_MAX, WIRE_VERSION, DeviceId, GatewayId, UtcDatetime, _Wire

# an hour-long notice is normal; a week is the longest anything may wait for a gateway
MAX_COMMAND_LIFETIME = timedelta(days=7)
ACTION_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
PARAM_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_PARAMS = 16

# bounded like every wire number: no NaN/inf, nothing a register or a database cannot hold;
# bool and int strict, else left-to-right makes 1 and 0 booleans and 80.0 an int
ParamValue = Annotated[
    Annotated[bool, Strict()]
    | Annotated[int, Strict(), Field(ge=-(2**63), le=INT64_MAX)]
    | Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
    | Annotated[str, Field(max_length=400)],
    Field(union_mode="left_to_right"),
]
Params = Annotated[
    dict[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)], ParamValue],
    Field(max_length=MAX_PARAMS),
]


# The call-unit notice (action "notice"), one contract for the cloud's API and the edge's
# check: what the AKCU line can carry. The text travels inside one line frame, so the
# line's separators and control characters cannot appear in it.
NOTICE_ACTION = "notice"
NOTICE_KINDS = ("heat", "disaster")
NOTICE_TEXT_MAX = 60  # characters; UTF-8 on the line, well inside its 512-byte frame
NOTICE_TEXT_FORBIDDEN = r"[,*$\x00-\x1f\x7f]"
NOTICE_LEVEL_MAX = 9  # one digit on the line


class CommandState(StrEnum):
    ACCEPTED = "accepted"  # persisted by the gateway, will run unless it expires
    DONE = "done"  # executed, read back as commanded
    FAILED = "failed"  # executed or tried, and the device did not end as commanded
    EXPIRED = "expired"  # not executed: past expires_at
    REJECTED = "rejected"  # not executed: unknown action, not writable, out of bounds, ...


FINAL_STATES = frozenset(
    {CommandState.DONE, CommandState.FAILED, CommandState.EXPIRED, CommandState.REJECTED}
)


class CommandPriority(StrEnum):
    """Order at the gateway when several commands wait for one bus or line."""

    LIFE_SAFETY = "life_safety"  # sirens, warning lamps, disaster notices
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Command(_Wire):
    """One action on one device, from the cloud."""

    v: Literal[1] = WIRE_VERSION
    id: UUID = Field(description="Chosen by the cloud; the same on every re-delivery")
    gateway_id: GatewayId = Field(description="Must match the topic's gateway")
    device_id: DeviceId
    action: str = Field(pattern=ACTION_PATTERN, description="e.g. lamp, siren, write, notice")
    params: Params = Field(default_factory=dict)
    issued_at: UtcDatetime
    expires_at: UtcDatetime = Field(description="Never executed after this instant")
    priority: CommandPriority = CommandPriority.NORMAL
    issuer: str = Field(
        min_length=1,
        max_length=80,
        description="Who asked: 'user:<name>', 'token:<name>' or 'rule:<rule id>'",
    )

    @model_validator(mode="after")
    def _lifetime(self) -> Command:
        if self.expires_at <= self.issued_at:
            raise ValueError(
                f"expires_at ({self.expires_at.isoformat()}) must be after issued_at "
                f"({self.issued_at.isoformat()})"
            )
        if self.expires_at - self.issued_at > MAX_COMMAND_LIFETIME:
            raise ValueError(
                f"expires_at is {self.expires_at - self.issued_at} after issued_at; "
                f"at most {MAX_COMMAND_LIFETIME}"
            )
        return self


class CommandResult(_Wire):
    """One state change of a command, from the gateway."""

    v: Literal[1] = WIRE_VERSION
    id: UUID
    gateway_id: GatewayId
    device_id: DeviceId
    state: CommandState
    ts: UtcDatetime = Field(description="When the gateway reached this state")
    reason: str | None = Field(
        default=None, max_length=500, description="Why rejected or failed; what was done"
    )
    readback: Params | None = Field(
        default=None, description="Values read back from the device after executing"
    )
