"""The call-unit notice channel: a short text to the call units an address names
(``device:<id>``, ``district:<name>``, ``area:<name>`` or ``all``), sent as one notice
through the command service (docs/commands.md). The text comes from the ``notice``
template (a unit's screen is small, and the staff message's ack link means nothing to a
resident)."""

from __future__ import annotations

from collections.abc import Callable

from cloud.notify.channels import Envelope
from cloud.notify.messages import Message, render_blocks
from cloud.notify.routing import by_prefix

# address, text, notice kind (heat | disaster); raises NotifyError on failure. The
# sender fits the text to what a unit can show (cloud.commands.notices.line_text).
NoticeSender = Callable[[str, str, str], None]
_KINDS = {"heat": "heat", "flood": "disaster"}


class NoticeChannel:
    name = "notice"

    def __init__(self, send: NoticeSender) -> None:
        self._send = send

    def deliver(self, address: str, message: Message, envelope: Envelope) -> None:
        context = {"alert": envelope.alert, "stage": envelope.stage, "action": envelope.action}
        text = render_blocks("notice", envelope.lang, context)["text"]
        # a unit shows heatstroke and disaster notices only; anything else is a disaster
        kind = by_prefix(envelope.alert.kind, _KINDS) or "disaster"
        self._send(address.strip(), text, str(kind))
