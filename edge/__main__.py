"""``python -m edge run --config FILE``: the gateway CLI without the rest of ``akita``.

Same commands as ``akita edge``; it imports only the edge side, which keeps the
daemon's memory small on a gateway where the whole project is installed.
"""

from edge.cli import app

if __name__ == "__main__":
    app(prog_name="python -m edge")
