"""InfluxDB store over the v1-compatible HTTP API, and its database set-up (``init_db``).

See ``README.md`` beside this file for the layout, auth and a sample configuration.
"""

from cloud.store.influx.store import AGG_RP, KINDS, RAW_RP, InfluxStore, quote_ident, quote_string

__all__ = ["AGG_RP", "KINDS", "RAW_RP", "InfluxStore", "quote_ident", "quote_string"]
