"""Commands to devices, notices to call units, automatic actions (docs/commands.md).

Reads need a viewer token; sending, cancelling and arming need an operator. Every change
is recorded under the token's name (``token:<name>``) in the command's audit trail or
in ``command_audit``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, status

from cloud.api.auth import CurrentUser, RequireOperator, ServiceDep, User
from cloud.api.routes.command_models import (
    ArmRequest,
    AutomationPublic,
    CancelRequest,
    CommandCreate,
    CommandDetailPublic,
    CommandEventPublic,
    CommandPublic,
    KillSwitchRequest,
    KpiPublic,
    NoticeCreate,
    NoticePublic,
    NoticeSummaryPublic,
    RulePublic,
)
from cloud.commands import notices
from cloud.commands.geo import GeoJsonError
from cloud.commands.records import CommandRecord
from cloud.commands.rules import KILL_SWITCH
from cloud.commands.service import CommandError, CommandNotFound
from cloud.commands.states import CloudState, TransitionError
from cloud.service import CloudService

router = APIRouter(tags=["commands"])

CommandIdPath = Annotated[UUID, Path(description="Command id (UUID)")]
NoticeIdPath = Annotated[UUID, Path(description="Notice id (UUID)")]
RuleIdPath = Annotated[str, Path(min_length=1, max_length=40, description="Rule id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown"},
    409: {"description": "Not allowed from the command's state"},
}


def issuer(user: User) -> str:
    return f"token:{user.name}"


def _public(r: CommandRecord) -> CommandPublic:
    return CommandPublic(**asdict(r))


def _unprocessable(field: str | None, message: str, value: object) -> HTTPException:
    loc = ["body", *field.split(".")] if field else ["body"]
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": loc, "msg": message, "type": "value_error", "input": str(value)}],
    )


def _notice_public(service: CloudService, notice_id: str) -> NoticePublic:
    svc = service.commands.service
    n = notices.get_notice(svc, notice_id)
    s = notices.summary(svc, notice_id)
    summary = NoticeSummaryPublic(**{k: v for k, v in asdict(s).items() if k != "notice_id"})
    return NoticePublic(
        id=n.id,
        kind=n.kind,
        level=n.level,
        text=n.text,
        issuer=n.issuer,
        created_at=n.created_at,
        expires_at=n.expires_at,
        targets=n.targets,
        summary=summary,
    )


# -- commands ------------------------------------------------------------------------------


@router.post(
    "/commands",
    response_model=CommandPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Send an action to one device, through its owning gateway (operator)",
)
def send_command(service: ServiceDep, user: RequireOperator, body: CommandCreate) -> CommandPublic:
    try:
        record = service.commands.service.issue(
            body.device_id,
            body.action,
            dict(body.params),
            issuer=issuer(user),
            priority=body.priority,
            ttl_s=body.ttl_s,
        )
    except CommandError as exc:
        raise _unprocessable(exc.field, str(exc), exc.value) from exc
    return _public(record)


@router.get("/commands", response_model=list[CommandPublic], summary="Commands, newest first")
def list_commands(
    service: ServiceDep,
    _user: CurrentUser,
    state: CloudState | None = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    issuer: Annotated[str | None, Query(max_length=80, description="token:ops, rule:x")] = None,
    notice: UUID | None = None,
    rule: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[CommandPublic]:
    records = service.commands.service.query(
        state=state,
        device_id=device,
        gateway_id=gateway,
        issuer=issuer,
        notice_id=str(notice) if notice else None,
        rule_id=rule,
        limit=limit,
        offset=offset,
    )
    return [_public(r) for r in records]


@router.get(
    "/commands/{command_id}",
    response_model=CommandDetailPublic,
    summary="One command with its audit trail",
    responses={404: _ERRORS[404]},
)
def get_command(
    service: ServiceDep, _user: CurrentUser, command_id: CommandIdPath
) -> CommandDetailPublic:
    svc = service.commands.service
    try:
        record, events = svc.get(str(command_id)), svc.events(str(command_id))
    except CommandNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return CommandDetailPublic(
        **asdict(record), events=[CommandEventPublic(**asdict(e)) for e in events]
    )


@router.post(
    "/commands/{command_id}/cancel",
    response_model=CommandPublic,
    summary="Cancel a command still queued in the cloud (operator)",
    responses=_ERRORS,
)
def cancel_command(
    service: ServiceDep,
    user: RequireOperator,
    command_id: CommandIdPath,
    body: CancelRequest | None = None,
) -> CommandPublic:
    try:
        record = service.commands.service.cancel(
            str(command_id), issuer(user), body.note if body else None
        )
    except CommandNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except TransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return _public(record)


# -- notices -------------------------------------------------------------------------------


@router.post(
    "/notices",
    response_model=NoticePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Send a notice to call units by device, district, polygon or all (operator)",
)
def send_notice(service: ServiceDep, user: RequireOperator, body: NoticeCreate) -> NoticePublic:
    t = body.targets
    targets = notices.Targets(
        devices=t.devices, districts=t.districts, polygon=t.polygon, all=t.all
    )
    try:
        notice = notices.send_notice(
            service.commands.service,
            kind=body.kind,
            text=body.text,
            targets=targets,
            issuer=issuer(user),
            level=body.level,
            ttl_s=body.ttl_s,
        )
    except GeoJsonError as exc:
        raise _unprocessable("targets.polygon", str(exc), "polygon") from exc
    except CommandError as exc:
        raise _unprocessable(exc.field, str(exc), exc.value) from exc
    return _notice_public(service, notice.id)


@router.get("/notices", response_model=list[NoticePublic], summary="Notices, newest first")
def list_notices(
    service: ServiceDep,
    _user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[NoticePublic]:
    found = notices.list_notices(service.commands.service, limit, offset)
    return [_notice_public(service, n.id) for n in found]


@router.get(
    "/notices/kpi",
    response_model=KpiPublic,
    summary="Residents whose units have the notice function; notices received and seen a month",
)
def notice_kpi(service: ServiceDep, _user: CurrentUser) -> KpiPublic:
    return KpiPublic.model_validate(asdict(notices.kpi(service.commands.service)))


@router.get(
    "/notices/{notice_id}",
    response_model=NoticePublic,
    summary="One notice: units targeted, delivered, seen, failed, expired",
    responses={404: _ERRORS[404]},
)
def get_notice(service: ServiceDep, _user: CurrentUser, notice_id: NoticeIdPath) -> NoticePublic:
    try:
        return _notice_public(service, str(notice_id))
    except notices.NoticeNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc


# -- automatic actions ---------------------------------------------------------------------


def _automation(service: CloudService) -> AutomationPublic:
    commands = service.commands
    configs = {r.id: r for r in commands.rules.rules}
    rules = [
        RulePublic(
            id=s.rule_id,
            type=s.type,
            armed=s.armed,
            changed_by=s.changed_by,
            changed_at=s.changed_at,
            config=configs[s.rule_id].model_dump(mode="json"),
        )
        for s in commands.rules.states()
    ]
    return AutomationPublic(
        **commands.status(), hold_s=commands.service.settings.hold_s, rules=rules
    )


@router.get("/automation", response_model=AutomationPublic, summary="Rules, armed or not")
def automation(service: ServiceDep, _user: CurrentUser) -> AutomationPublic:
    return _automation(service)


@router.put(
    "/automation/rules/{rule_id}",
    response_model=AutomationPublic,
    summary="Arm or disarm one rule (operator)",
    responses={404: _ERRORS[404]},
)
def arm_rule(
    service: ServiceDep, user: RequireOperator, rule_id: RuleIdPath, body: ArmRequest
) -> AutomationPublic:
    if service.commands.service.settings.rule(rule_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"rule {rule_id!r} not found")
    service.commands.rules.set_armed(rule_id, body.armed, issuer(user), body.reason)
    return _automation(service)


@router.put(
    "/automation/kill-switch",
    response_model=AutomationPublic,
    summary="Engage (every rule disarmed) or release the kill switch (operator)",
)
def kill_switch(
    service: ServiceDep, user: RequireOperator, body: KillSwitchRequest
) -> AutomationPublic:
    service.commands.rules.set_armed(KILL_SWITCH, not body.engaged, issuer(user), body.reason)
    return _automation(service)
