"""One module per device kind, named after it: its dashboard part (:mod:`dashboards.parts`)."""
