"""The cloud side: MQTT ingest, time-series and relational storage, streaming
anomaly detection, the alert lifecycle and notifications, the staff API, open
data (GTFS-Realtime, GeoJSON) and the thin citizen module.

It imports :mod:`schemas` for every wire payload and never imports :mod:`edge`.
"""
