"""Detection-limit curve of the leak detector: run it, print the figures, draw the PNG.

    python -m bench.leak_curve [N] [SEED]      # default 300 leaks, seed 1

Writes docs/leak_detection_curve.png (matplotlib, which the 'eval' extra brings with
wntr). The same figures come from ``akita eval --synthetic N --seed S``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cloud.detect.config import DetectConfig
from cloud.detect.synthetic import BANDS, run_curve

OUT = Path(__file__).resolve().parents[1] / "docs" / "leak_detection_curve.png"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    t0 = time.perf_counter()
    curve = run_curve(n, seed, DetectConfig())
    print(f"leaks={n} seed={seed} seconds={time.perf_counter() - t0:.1f}")
    rows = list(curve.rows())
    for r in rows:
        print(
            f"type={r['type']} band={r['band_m3h'][0]}-{r['band_m3h'][1]} leaks={r['leaks']} "
            f"pod_2d={r['pod_2d']:.2f} pod_7d={r['pod_7d']:.2f}"
        )
    found, of = curve.headline()
    print(
        f"headline_abrupt_5plus_2d={found}/{of} fa_per_month_leak_free={curve.free_per_month:.2f}"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mids = [(lo * hi) ** 0.5 for lo, hi in BANDS]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for kind, colour in (("abrupt", "tab:red"), ("incipient", "tab:blue")):
        sel = [r for r in rows if r["type"] == kind]
        ax.plot(mids, [100 * r["pod_2d"] for r in sel], "o-", color=colour,
                label=f"{kind}, within 2 days")  # fmt: skip
        ax.plot(mids, [100 * r["pod_7d"] for r in sel], "s--", color=colour, alpha=0.6,
                label=f"{kind}, within 7 days")  # fmt: skip
    ax.axhline(95, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xticks([0.5, 1, 2, 5, 10, 20], ["0.5", "1", "2", "5", "10", "20"])
    ax.set_xlabel("leak size (m³/h; band geometric mid-points)")
    ax.set_ylabel("probability of detection (%)")
    ax.set_ylim(0, 100)
    ax.set_title(
        f"L-Town synthetic leaks: {n}, seed {seed}; false alarms "
        f"{curve.free_per_month:.2f}/month (leak-free runs)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT)
    print(f"wrote={OUT}")


if __name__ == "__main__":
    main()
