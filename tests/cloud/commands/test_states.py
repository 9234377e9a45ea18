"""The command state machine, every transition allowed and refused."""

from __future__ import annotations

import pytest

from cloud.commands import states
from cloud.commands.states import CloudState as S
from cloud.commands.states import TransitionError
from schemas.commands import CommandState as W


def test_publish_only_before_the_gateway_has_it() -> None:
    assert states.after_publish(S.QUEUED) is S.SENT
    assert states.after_publish(S.SENT) is S.SENT  # a retry, same id
    for st in (S.ACCEPTED, S.DONE, S.FAILED, S.EXPIRED, S.REJECTED, S.CANCELLED):
        with pytest.raises(TransitionError):
            states.after_publish(st)


@pytest.mark.parametrize("start", [S.QUEUED, S.SENT, S.ACCEPTED])
@pytest.mark.parametrize("result", [W.DONE, W.FAILED, W.EXPIRED, W.REJECTED])
def test_any_open_state_takes_a_final_result(start: S, result: W) -> None:
    assert states.after_result(start, result, cloud_final=False) == S(result.value)


def test_accepted_only_while_undelivered() -> None:
    assert states.after_result(S.SENT, W.ACCEPTED, cloud_final=False) is S.ACCEPTED
    assert states.after_result(S.QUEUED, W.ACCEPTED, cloud_final=False) is S.ACCEPTED
    with pytest.raises(TransitionError, match="accepted after accepted"):
        states.after_result(S.ACCEPTED, W.ACCEPTED, cloud_final=False)  # a duplicate


@pytest.mark.parametrize("final", [S.DONE, S.FAILED, S.REJECTED, S.EXPIRED])
def test_a_final_state_is_final(final: S) -> None:
    with pytest.raises(TransitionError, match="already"):
        states.after_result(final, W.DONE, cloud_final=False)
    with pytest.raises(TransitionError):
        states.after_expiry(final)


def test_the_gateways_late_result_corrects_a_cloud_side_expiry_only() -> None:
    assert states.after_result(S.EXPIRED, W.DONE, cloud_final=True) is S.DONE
    assert states.after_result(S.EXPIRED, W.EXPIRED, cloud_final=True) is S.EXPIRED
    with pytest.raises(TransitionError):
        states.after_result(S.EXPIRED, W.ACCEPTED, cloud_final=True)
    with pytest.raises(TransitionError):
        states.after_result(S.DONE, W.FAILED, cloud_final=True)


def test_cancel_only_while_queued_in_the_cloud() -> None:
    assert states.after_cancel(S.QUEUED) is S.CANCELLED
    for st in (S.SENT, S.ACCEPTED, S.DONE, S.FAILED, S.EXPIRED, S.REJECTED, S.CANCELLED):
        with pytest.raises(TransitionError, match="only a command still queued"):
            states.after_cancel(st)
    with pytest.raises(TransitionError):
        states.after_result(S.CANCELLED, W.DONE, cloud_final=False)


@pytest.mark.parametrize("start", [S.QUEUED, S.SENT, S.ACCEPTED])
def test_expiry_of_anything_not_final(start: S) -> None:
    assert states.after_expiry(start) is S.EXPIRED
