"""Alert latency benchmark: device event -> SMTP, and ingest arrival -> alert (see __main__)."""
