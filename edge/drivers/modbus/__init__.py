"""Modbus TCP, Modbus RTU on a shared serial bus, and RTU over TCP (pymodbus 3.9).

:mod:`.codec` decodes register values, :mod:`.plan` coalesces reads, :mod:`.link`
owns the connections (one per TCP device; one per serial bus or RTU-over-TCP
converter, shared by its slave ids under a lock) and :mod:`.driver` is the
:class:`~edge.drivers.base.PollDriver`.
"""
