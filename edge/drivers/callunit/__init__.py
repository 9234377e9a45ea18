"""Emergency-call units (AKCU line protocol, see README.md) on a serial line or TCP."""
