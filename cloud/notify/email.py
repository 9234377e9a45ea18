"""E-mail over SMTP (contract G): STARTTLS and AUTH through :mod:`smtplib`."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from cloud.notify.errors import NotifyError

if TYPE_CHECKING:
    from cloud.notify.channels import Envelope
    from cloud.notify.messages import Message


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit mail. ``starttls`` upgrades the connection before AUTH;
    ``verify_tls=False`` is for a test server with a self-signed certificate only."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "akita-alerts@localhost"
    timeout_s: float = 10.0
    verify_tls: bool = True

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"starttls={self.starttls}, sender={self.sender!r})"
        )


class EmailChannel:
    """Sends one plain-text (optionally multipart with HTML) message per call."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _message(self, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2] or None)
        msg.set_content(text, charset="utf-8")
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8")
        return msg

    def deliver(self, address: str, message: Message, envelope: Envelope) -> None:
        """The dispatcher's call (:class:`cloud.notify.channels.Channel`)."""
        self.send(address, message.subject, message.text)

    def send(self, to: str, subject: str, text: str, *, html: str | None = None) -> None:
        """Submit one message; raises :class:`NotifyError` (``retryable`` set) on failure."""
        s = self.settings
        msg = self._message(to, subject, text, html)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                smtp.ehlo()
                if s.starttls:
                    ctx = ssl.create_default_context()
                    if not s.verify_tls:
                        ctx.check_hostname = False
                        ctx.verify_mode = ssl.CERT_NONE
                    smtp.starttls(context=ctx)
                    smtp.ehlo()
                if s.username is not None:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(
                f"smtp auth refused host={s.host}:{s.port} code={exc.smtp_code}", retryable=False
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifyError("smtp recipient refused", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            # 4xx is a temporary failure per RFC 5321; 5xx is permanent
            raise NotifyError(
                f"smtp error host={s.host}:{s.port} code={exc.smtp_code}",
                retryable=400 <= exc.smtp_code < 500,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(
                f"smtp unreachable host={s.host}:{s.port} reason={type(exc).__name__}"
            ) from exc
        if refused:
            raise NotifyError("smtp recipient refused", retryable=False)
