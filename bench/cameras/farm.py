"""N simulated cameras (``firmware_sim.camera``) over real HTTP, in their own process so
their drawing is not counted in the gateway's CPU. Prints the ports as one JSON line,
then serves until stdin closes. Run: ``python -m bench.cameras.farm N``."""

from __future__ import annotations

import functools
import json
import math
import sys
import time

from firmware_sim.camera.server import CameraServer


def main(n: int) -> None:
    t0 = time.monotonic()

    def depth(i: int) -> float:  # below 注意 (10 cm): the gateway stays at its normal cadence
        return 4.0 + 3.0 * math.sin((time.monotonic() - t0) / 30.0 + i)

    cams = [CameraServer(functools.partial(depth, i)).start() for i in range(n)]
    print(json.dumps([c.port for c in cams]), flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    for c in cams:
        c.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
