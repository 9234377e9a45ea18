"""Rendering of the message templates (``cloud/notify/templates/<lang>/<name>.j2``).

Each template defines blocks (``subject``, ``body``, ``sms`` for messages; ``event``,
``headline``, ``description``, ``instruction``, ``area_desc`` for CAP). Japanese is the
default; English is the alternate. Wording lives in the templates, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from cloud.notify.errors import NotifyConfigError

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANGS = ("ja", "en")


@lru_cache(maxsize=4)
def environment(directory: Path = TEMPLATE_DIR) -> Environment:
    # plain text, not HTML: no autoescape; StrictUndefined turns a template typo into an error
    return Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=False,
    )


def render_blocks(name: str, lang: str, context: dict[str, Any]) -> dict[str, str]:
    """Every block of ``<lang>/<name>.j2`` rendered with ``context``, stripped."""
    lang = lang if lang in LANGS else LANGS[0]
    env = environment()
    try:
        template = env.get_template(f"{lang}/{name}.j2")
    except TemplateNotFound as exc:
        raise NotifyConfigError(f"template {lang}/{name}.j2 not found in {TEMPLATE_DIR}") from exc
    # blocks rendered one by one do not see the template's top-level {% set %}s (labels,
    # advice): evaluate the template once as a module and hand its exports to each block
    module = template.make_module(dict(context))
    exported = {k: v for k, v in vars(module).items() if not k.startswith("_")}
    ctx = template.new_context({**context, **exported})
    return {block: "".join(fn(ctx)).strip() for block, fn in template.blocks.items()}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    sms: str


def render_message(name: str, lang: str, context: dict[str, Any]) -> Message:
    blocks = render_blocks(name, lang, context)
    return Message(subject=blocks["subject"], text=blocks["body"] + "\n", sms=blocks["sms"])


def local_time(at: datetime, tz: str = "Asia/Tokyo") -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def map_url(lat: float | None, lon: float | None) -> str | None:
    """A GSI (国土地理院) web map link at street zoom."""
    if lat is None or lon is None:
        return None
    return f"https://maps.gsi.go.jp/#17/{lat:.6f}/{lon:.6f}/"
