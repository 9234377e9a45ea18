"""One module per device kind, named after it: its detector part (:mod:`cloud.detect.parts`)."""
