"""The field gateway: poll field devices, spool every reading durably, forward over MQTT.

Parts: :mod:`edge.config` (the TOML config), :mod:`edge.drivers` (field protocols),
:mod:`edge.spool` (SQLite store-and-forward), :mod:`edge.uplink` (MQTT),
:mod:`edge.agent` (the daemon that ties them together) and :mod:`edge.cli`.
"""
