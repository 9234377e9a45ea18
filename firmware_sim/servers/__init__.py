"""Protocol servers that expose the physics models the way real devices do.

Modbus TCP (pymodbus listeners, many unit ids each), Modbus RTU on pty pairs, NMEA 0183
streams (pty or TCP) and the AKCU call-unit line protocol (pty or TCP). Register values
are computed from the model at the simulated time of each request.
"""
