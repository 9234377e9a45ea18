"""The cloud's view of a command's life: the wire states plus what happens before the
gateway has it.

::

    queued ──publish──> sent ──result──> accepted ──result──> done | failed | expired | rejected
      │                  │  (re-published with the same id until a result or expiry)
      │                  └──result──> done | failed | expired | rejected
      ├──staff──> cancelled         (only while queued: never published)
      └──clock──> expired           (queued, sent or accepted past expires_at: by the cloud)

A final state set by the cloud (``expired`` with no word from the gateway) is the
cloud's inference; the gateway's own later result wins, because the gateway never
executes past ``expires_at`` and its spool delivers results after an outage: a ``done``
that arrives late says what the device really did.
"""

from __future__ import annotations

from enum import StrEnum

from cloud.errors import CloudError
from schemas.commands import CommandState


class CloudState(StrEnum):
    QUEUED = "queued"  # in the cloud only: the gateway is offline, or not yet published
    SENT = "sent"  # published (QoS 1); no result yet
    ACCEPTED = CommandState.ACCEPTED.value
    DONE = CommandState.DONE.value
    FAILED = CommandState.FAILED.value
    EXPIRED = CommandState.EXPIRED.value
    REJECTED = CommandState.REJECTED.value
    CANCELLED = "cancelled"  # by staff before it was ever published


FINAL = frozenset(
    {
        CloudState.DONE,
        CloudState.FAILED,
        CloudState.EXPIRED,
        CloudState.REJECTED,
        CloudState.CANCELLED,
    }
)
# states in which the command may still reach the gateway (re-published on a birth)
UNDELIVERED = frozenset({CloudState.QUEUED, CloudState.SENT})


class TransitionError(CloudError):
    """A change the state machine does not allow (the API's 409)."""


def after_publish(state: CloudState) -> CloudState:
    if state not in UNDELIVERED:
        raise TransitionError(f"a command in state {state} is not published again")
    return CloudState.SENT


def after_result(state: CloudState, result: CommandState, *, cloud_final: bool) -> CloudState:
    """The state after a gateway's result. ``cloud_final``: the current final state was
    set by the cloud (its expiry), which a gateway's result may correct."""
    new = CloudState(result.value)
    if state in FINAL and not (cloud_final and state is CloudState.EXPIRED):
        raise TransitionError(f"command already {state}; result {result} ignored")
    if state is CloudState.CANCELLED:
        raise TransitionError("command was cancelled before it was published")
    if new is CloudState.ACCEPTED and state not in UNDELIVERED:
        raise TransitionError(f"accepted after {state} ignored (results may arrive late)")
    return new


def after_cancel(state: CloudState) -> CloudState:
    if state is not CloudState.QUEUED:
        raise TransitionError(
            f"cannot cancel a command in state {state}: only a command still queued in the "
            "cloud (never published) can be cancelled; once published the gateway may "
            "already hold it"
        )
    return CloudState.CANCELLED


def after_expiry(state: CloudState) -> CloudState:
    if state in FINAL:
        raise TransitionError(f"command already {state}")
    return CloudState.EXPIRED
