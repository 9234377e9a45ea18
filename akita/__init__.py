"""The ``akita`` command: the one place that composes edge, cloud and simulators.

``edge`` and ``cloud`` never import each other; only this composition root (the
CLI and the all-in-one demo) sees both. Sub-commands are imported lazily so a
gateway with only ``pip install .[edge]`` can run ``akita edge`` without the cloud
stack installed.
"""
