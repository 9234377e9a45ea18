"""Physics models, one module per device kind.

Every model answers ``sample(t)`` with the values the edge would read at simulated Unix
time ``t`` (fields of ``schemas.devices.*Values``, quantised as the device's registers
quantise them) and ``online(t)``. Closed-form models (water block, vehicles, call unit)
are free to evaluate at any ``t``; stateful ones (pump station, flood sensor) integrate
on a fixed grid and must be asked in non-decreasing ``t``.
"""
