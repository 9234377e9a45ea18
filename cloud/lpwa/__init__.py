"""Meters that reach the city through a LoRaWAN network server's MQTT integration.

The ChirpStack v4 ``up`` events of a network server are decoded by a codec per meter
model (:mod:`cloud.lpwa.codecs`), judged against the registry (the network server must
own the ``devEui``), de-duplicated (:mod:`cloud.lpwa.dedupe`) and written as readings of
the device's kind. ``akita cloud lpwa`` runs the worker (:mod:`cloud.lpwa.worker`);
``docs/lpwa.md`` says why it is a worker of its own.
"""
