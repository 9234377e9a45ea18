"""Device simulators for the Akita City telemetry system.

Physics models per device kind (``firmware_sim.models``), the real field protocols the
edge reads (``firmware_sim.servers``: Modbus TCP/RTU, NMEA 0183, the AKCU call-unit line
protocol), seeded fault scenarios with ground-truth labels (``firmware_sim.scenarios``),
a labelled-dataset exporter (``firmware_sim.export``), the city/small fleets with their
generated edge configs (``firmware_sim.fleet``) and the ``akita sim`` CLI.
"""
