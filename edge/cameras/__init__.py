"""Flood cameras at the gateway: capture (HTTP snapshot), privacy masking, an on-disk image
spool and an in-order, once-only upload on the gateway's own MQTT prefix (docs/cameras.md)."""
