"""Edge gateway benchmark: CPU, RSS and spool throughput (``python -m bench.edge``)."""
