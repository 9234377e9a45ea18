"""What production refuses in the settings: placeholder and short secrets, and which
environment a settings file without ``environment`` runs in.

Secrets are the settings whose name holds one of :data:`SECRET_WORDS` and the password
part of every ``*url`` setting (``postgresql+psycopg://akita:PASSWORD@db/akita``).

- A **placeholder** is what documentation and samples put where a secret goes: empty,
  ``...``, anything with ``<`` or ``>`` (``<secret>``), ``${VAR}`` left unexpanded,
  ``CHANGE-ME`` in any spelling, ``example``, ``xxx``, one character repeated, or a word
  from :data:`PLACEHOLDER_WORDS`. Refused outside development.
- A secret shorter than :data:`MIN_SECRET_LENGTH` (16) characters is refused in
  production: 16 characters of ``openssl rand -base64 24`` carry about 96 bits, beyond
  any online or offline guessing, while 8-12 characters are typical of human-chosen
  passwords, which word lists and GPU cracking find.
- **Missing environment**: a settings file that does not set ``environment`` (nor
  ``AKITA_ENVIRONMENT``) runs as **production** unless the file lies inside the source
  checkout the program runs from (the directory with ``pyproject.toml`` above the
  ``cloud`` package): a copy in /etc is meant for production and must not start with
  development's relaxed checks by omission.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "salt")
MIN_SECRET_LENGTH = 16
PLACEHOLDER_WORDS = frozenset(
    {"changeme", "secret", "password", "passwd", "admin", "example", "xxx", "todo", "fixme",
     "dummy", "placeholder", "default", "test", "none", "null", "redacted", "your-secret"}
    | {"akita"}  # shipped defaults (e.g. notify.recipient_salt) are public, hence placeholders
)  # fmt: skip
_PLACEHOLDER_PARTS = re.compile(
    r"\.\.\.|…|<|>|\$\{|^\$[A-Z_]+$|change[-_ ]?me|example|placeholder|your[-_ ]|xxxx|^\*+$",
    re.I,
)
# the checkout this program runs from (None when installed as a package)
_ROOT = Path(__file__).resolve().parents[1]
CHECKOUT: Path | None = _ROOT if (_ROOT / "pyproject.toml").is_file() else None


def is_secret_name(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return any(w in leaf for w in SECRET_WORDS)


def url_password(name: str, value: str) -> str | None:
    """The password inside a ``*url`` setting's value, if it has one."""
    if not name.rsplit(".", 1)[-1].lower().endswith("url") or "@" not in value:
        return None
    try:
        return urlsplit(value).password
    except ValueError:
        return None


def is_placeholder(value: str) -> bool:
    text = value.strip()
    plain = text.lower().replace("_", "-")
    if not text or plain in PLACEHOLDER_WORDS or plain.replace("-", "") in PLACEHOLDER_WORDS:
        return True
    if len(set(text)) == 1:
        return True
    return bool(_PLACEHOLDER_PARTS.search(text))


def secret_problem(name: str, value: str, *, production: bool) -> str | None:
    """Why ``value`` cannot be the secret ``name`` (None: acceptable)."""
    if is_placeholder(value):
        return (
            f"setting {name} holds a placeholder secret; set a real value, e.g. the output "
            "of `openssl rand -base64 24`"
        )
    if production and len(value) < MIN_SECRET_LENGTH:
        return (
            f"setting {name} is too short for a secret ({len(value)} characters; production "
            f"needs at least {MIN_SECRET_LENGTH}, e.g. `openssl rand -base64 24`)"
        )
    return None


def default_environment(config: Path) -> str:
    """``production`` for a settings file outside the checkout, else ``development``."""
    if CHECKOUT is None:
        return "production"
    try:
        config.resolve().relative_to(CHECKOUT)
    except ValueError:
        return "production"
    return "development"
