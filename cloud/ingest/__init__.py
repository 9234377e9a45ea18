"""MQTT -> store ingest: shared-subscription workers that acknowledge a message only
after its readings are durably written, dead-letter what fails validation, and hold
the stream (backpressure) while the store is down.

``IngestWorker(settings, store, registry, metrics=..., on_batch=...)`` with
``start()``/``stop()``/``health()``; ``python -m cloud.ingest --help`` runs one.
"""

from cloud.ingest.settings import IngestSettings
from cloud.ingest.worker import BatchCallback, IngestHealth, IngestWorker

__all__ = ["BatchCallback", "IngestHealth", "IngestSettings", "IngestWorker"]
