"""The registry of device kinds: every kind declared once, read by every layer.

A kind is a module in this folder (``water_block.py`` ...) or a *plugin package* that
defines ``KIND`` (a :class:`~schemas.kinds.base.Kind`). Plugin packages are named in
the environment variable ``AKITA_KIND_PLUGINS`` (comma-separated) or by an
``akita.kinds`` entry point; they are loaded once, when this package is first imported,
before the wire models are built from the registry.

Each layer adds its own part of a kind by the kind's name, in its own folder
(detectors: ``cloud/detect/kinds/<kind>.py``) or, for a plugin, in the plugin package's
submodule named after the layer (``<plugin>.cloud``, ``<plugin>.sim``,
``<plugin>.dashboards``): :func:`layer_modules` lists those. Adding a kind is one
folder plus a registration, as a Telegraf input or a Home Assistant integration.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType, ModuleType

from schemas.kinds.base import Kind, Offline, Values, Via, quantity

PLUGINS_ENV = "AKITA_KIND_PLUGINS"
ENTRY_POINT_GROUP = "akita.kinds"
_NOT_KINDS = frozenset({"base"})


class UnknownKind(KeyError):
    """A kind name nobody declared; ``str()`` names it and the known ones."""

    def __init__(self, name: object) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown device kind {self.name!r} (known: {', '.join(KINDS)})"


def plugin_packages() -> tuple[str, ...]:
    """The plugin packages, from ``AKITA_KIND_PLUGINS`` and the ``akita.kinds`` entry points."""
    named = [p.strip() for p in os.environ.get(PLUGINS_ENV, "").split(",") if p.strip()]
    named += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return tuple(dict.fromkeys(named))


def _declared(module: ModuleType) -> Kind:
    kind = getattr(module, "KIND", None)
    if not isinstance(kind, Kind):
        raise TypeError(f"{module.__name__}: defines no KIND = schemas.kinds.Kind(...)")
    return kind


def _load() -> dict[str, Kind]:
    found: dict[str, Kind] = {}
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)]
    names = [n for n in sorted(names) if n.rsplit(".", 1)[1] not in _NOT_KINDS]
    for module_name in [*names, *plugin_packages()]:
        kind = _declared(importlib.import_module(module_name))
        if kind.name in found:
            raise ValueError(f"{module_name}: kind {kind.name!r} is declared twice")
        found[kind.name] = kind
    return found


KINDS: Mapping[str, Kind] = MappingProxyType(_load())


def kind(name: str) -> Kind:
    """The kind called ``name``; :class:`UnknownKind` names the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(name) from None


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def layer_modules(layer: str) -> list[str]:
    """``<plugin>.<layer>`` for each plugin package that has that submodule."""
    found = []
    for package in plugin_packages():
        name = f"{package}.{layer}"
        if importlib.util.find_spec(name) is not None:
            found.append(name)
    return found


def load_layer(layer: str) -> list[ModuleType]:
    """Import every plugin's part for ``layer`` (its registrations run on import)."""
    return [importlib.import_module(name) for name in layer_modules(layer)]


__all__ = [
    "KINDS",
    "Kind",
    "Offline",
    "UnknownKind",
    "Values",
    "Via",
    "kind",
    "layer_modules",
    "load_layer",
    "names",
    "plugin_packages",
    "quantity",
]
