"""The staff API (FastAPI): health, metrics, devices, gateways, series, alerts,
maintenance windows and tokens, behind bearer tokens with viewer/operator/admin roles.

``create_app(service)`` builds the app around a :class:`cloud.service.CloudService`;
routers of other cloud packages (open data, citizen, CAP) are listed in
:mod:`cloud.api.extras`.
"""
