"""SMS through an HTTP SMS gateway: a small provider interface
(:class:`~cloud.notify.sms.base.SmsProvider`), a generic JSON-webhook provider and a
provider with the REST shape of the widely used Twilio Messages API.
"""

from __future__ import annotations

from cloud.notify.sms.base import SmsChannel, SmsProvider, SmsSettings, create_provider

__all__ = ["SmsChannel", "SmsProvider", "SmsSettings", "create_provider"]
