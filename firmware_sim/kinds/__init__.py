"""One module per device kind, named after it: its simulator part (:mod:`firmware_sim.parts`)."""
