"""The one place listing routers that other cloud packages contribute to the app."""

from __future__ import annotations

import importlib
import logging

from fastapi import APIRouter

log = logging.getLogger(__name__)

# "module:attribute"; a module that is not there (not built, not installed) is skipped.
EXTRA_ROUTERS: tuple[str, ...] = (
    "cloud.opendata.routes:router",
    "cloud.api.routes.service_alerts:router",
    "cloud.citizen.routes:router",
    "cloud.citizen.flood_images:router",
    "cloud.citizen.staff:router",
    "cloud.notify.cap:router",
    "cloud.api.routes.images:router",
)


def load_extra_routers(targets: tuple[str, ...] = EXTRA_ROUTERS) -> list[APIRouter]:
    routers = []
    for target in targets:
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                log.info("router_absent target=%s", target)
                continue
            raise
        routers.append(getattr(module, attr))
    return routers
