"""Synthetic L-Town leaks for the detection-limit curve (``akita eval --synthetic N``).

Why synthetic: the question a waterworks asks is "what is the smallest leak you find
within 2 days?", and 14 labelled leaks a year cannot answer it. Here hundreds of labelled
leaks (random pipe, start time, season, size 0.5–20 m³/h, abrupt or incipient) are
written as flows at the real sensors (``p227``, ``p235``, ``PUMP_1``, 5-minute samples)
and replayed through the same detector engine the cloud runs.

How the flows are made, cheaply enough for CI (a WNTR run per leak would take minutes):

* Demand: the median 2018 daily profile of the block balance (288 slots), scaled by a
  seasonal cosine, a weekday factor and a per-day random factor whose size is the real
  2018 night-to-night variation of the minimum night flow, plus 5-minute sample noise.
  All constants come from :func:`calibrate` on the 2018 January–June flows and are
  shipped in ``cloud/data/ltown/noise_2018.json`` (see that file's ``derivation``): the
  level net of the season, and the per-day factors scaled in a closed loop until the
  generator's own flows over those days, measured as the real ones were, give the real
  night-to-night and day-to-day sigmas.
* Where a leak shows: ``cloud/data/ltown/leak_response.csv`` (WNTR snapshots, see
  :mod:`cloud.detect.ltown_response`) gives, per pipe, the shares of its flow seen at
  ``p227``, ``p235`` and drawn from tank T1.
* The tank zone: T1 (16 m diameter, pump on below 2.4 m and off above 3.9 m, as in
  ``L-TOWN.inp``) is simulated step by step, so a leak there shows only as a longer pump
  duty, as in the real network.

Limits: leaks are fixed flows (no pressure dependence); the daily profile has one shape
all year; demand noise is independent from day to day beyond the calibrated variation;
the network's response is linear. The curve is a model's answer, checked against the
real 2018 leaks by ``akita eval --battledim``.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.detect.battledim import zones_of
from cloud.detect.config import DetectConfig
from cloud.detect.dataset import DatasetError
from cloud.detect.leak_scoring import ABRUPT_BUDGET, Alarm, Leak, onset_window, score
from cloud.detect.ltown_response import Response

DATA = Path(__file__).resolve().parents[1] / "data" / "ltown"
CALIBRATION = DATA / "noise_2018.json"
SLOTS = 288  # 5-minute samples per day
STEP = timedelta(minutes=5)
TANK_AREA_M2 = math.pi * 8.0**2  # T1: 16 m diameter
TANK_LOW_M, TANK_HIGH_M = 2.4, 3.9  # PUMP_1 controls in L-TOWN.inp
PUMP_M3H = 44.0
SIZE_MIN, SIZE_MAX = 0.5, 20.0
BANDS = ((0.5, 1.0), (1.0, 2.0), (2.0, 5.0), (5.0, 10.0), (10.0, 20.0))
WARMUP_DAYS = 28
EPISODE_DAYS = 16  # leak on day 0..~10, then leak-free nights to settle
EPISODES_PER_RUN = 20
WITHIN_7D = timedelta(days=7)
# an alarm this soon before a leak's start, in its zone, may be holding a (false) leak open
# that the new one then passes as the growth of: the curve names such misses apart
PRIOR_LOOKBACK = timedelta(days=3)


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` measured on real flows (see ``derivation``)."""

    profile: list[float]  # balance flow / its daily mean, per 5-minute slot
    split_p227: list[float]  # p227's share of p227 + p235, per slot
    mean_flow: float  # median daily mean of the balance, m³/h
    weekday: list[float]  # minimum-night-flow factor, Monday first
    night_sigma_rel: float  # night-to-night variation of the MNF, relative
    sample_sigma: float  # 5-minute noise around the hourly mean at night, m³/h
    season_amp: float  # relative amplitude of the yearly cosine
    season_peak_doy: float  # day of year of its maximum
    tank_mean: float  # median demand of the tank zone per pump cycle, m³/h
    # the per-day factors are Student-t with this many degrees of freedom (heavier tails
    # than a normal, as the real nights have), scaled to their MAD-based sigma
    night_df: float = math.inf
    # the day (07:00-24:00) has its own weekday factors and its own per-day factor,
    # independent of the night's (real 2018: the two hardly correlate); empty / NaN: the
    # night's factor for the whole day
    weekday_day: list[float] = field(default_factory=list)
    day_sigma_rel: float = math.nan
    derivation: str = ""

    @classmethod
    def load(cls, path: Path = CALIBRATION) -> Calibration:
        try:
            consts = json.loads(path.read_text(encoding="utf-8"))
            consts.pop("measured", None)  # the figures behind the constants, for people
            return cls(**consts)
        except (OSError, ValueError, TypeError) as exc:
            raise DatasetError(f"calibration {path}: {exc}") from exc


@dataclass(frozen=True)
class SynthLeak:
    leak: Leak
    shares: tuple[float, float, float]

    @property
    def zone(self) -> str:
        return "tank" if self.shares[2] > 0.5 else "block"


@dataclass
class Run:
    start: datetime
    days: int
    leaks: list[SynthLeak] = field(default_factory=list)


# ---- calibration (run once on the real 2018 flows; constants shipped) ---------------------
NIGHT = slice(2 * 12, 5 * 12)  # 02:00-05:00: the detector's night window (LeakConfig)
NIGHT_DF = 4.0  # per-day factor's tails: Student-t, see calibrate
CAL_NIGHTS = 4000  # Monte Carlo nights used to split the night variation (fixed seed)
CAL_RUNS = 200  # generator runs over the calibration days per closed-loop round
CAL_ROUNDS = 4


def _mad_sigma(x: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def _diff_sigma(x: np.ndarray) -> float:
    """Night-to-night sigma: robust sigma of consecutive differences / sqrt 2 (a leak's
    start or repair touches one difference, not the MAD)."""
    return _mad_sigma(np.diff(x)) / math.sqrt(2.0)


def _t_unit(df: float) -> float:
    """MAD-based sigma of a Student-t(df) (1 for a normal)."""
    from scipy.stats import t as student_t

    return 1.0 if not math.isfinite(df) else float(student_t.ppf(0.75, df)) / 0.67449


def sample_noise(n: int, cal: Calibration, rng: np.random.Generator) -> np.ndarray:
    """5-minute noise, independent from sample to sample (see calibrate on why)."""
    return cal.sample_sigma * rng.standard_normal(n)


def _deviations(days: int, sigma: float, cal: Calibration, rng: np.random.Generator) -> np.ndarray:
    """Per-day relative deviations with MAD-based sigma ``sigma`` (Student-t tails)."""
    if math.isfinite(cal.night_df):
        return sigma * rng.standard_t(cal.night_df, days) / _t_unit(cal.night_df)
    return sigma * rng.standard_normal(days)


def night_weight() -> np.ndarray:
    """Per 5-minute slot, how much the night's factor (not the day's) sets the demand:
    1 from 01:00 to 06:00, ramps over the hour either side, 0 from 07:00."""
    h = np.arange(SLOTS) / 12.0
    return np.clip(np.minimum(h, 7.0 - h), 0.0, 1.0)


def demand_factor(dows: np.ndarray, cal: Calibration, rng: np.random.Generator) -> np.ndarray:
    """(days, slots) factor on the mean profile: weekday x (1 + the day's deviation),
    the night's and the day's blended by :func:`night_weight`."""
    night_dev = _deviations(len(dows), cal.night_sigma_rel, cal, rng)
    night = np.array(cal.weekday)[dows] * (1.0 + night_dev)
    if not cal.weekday_day or not math.isfinite(cal.day_sigma_rel):
        return np.repeat(night[:, None], SLOTS, axis=1)
    day_dev = _deviations(len(dows), cal.day_sigma_rel, cal, rng)
    day = np.array(cal.weekday_day)[dows] * (1.0 + day_dev)
    w = night_weight()
    return night[:, None] * w[None, :] + day[:, None] * (1.0 - w[None, :])


def _season(doy: np.ndarray, amp: float, peak_doy: float) -> np.ndarray:
    """The yearly factor on the mean flow for each day of the year (1 on average over a
    year: ``mean_flow`` and ``tank_mean`` are net of it)."""
    return 1.0 + amp * np.cos(2 * math.pi * (doy - peak_doy) / 365.25)


def _factor_sigma(target: float, measure: Callable[[float], float]) -> float:
    """Bisection for the per-day sigma whose simulated figure ``measure`` is ``target``."""
    if measure(0.0) >= target:
        return 0.0
    lo, hi = 0.0, 0.2
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if measure(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def _simulated(cal: Calibration, statistic: Callable[[np.ndarray], np.ndarray]) -> float:
    """Night-to-night sigma of ``statistic`` (per day, m³/h) of the generator's demand,
    drawn as :func:`flows` draws it, with no season and no weekday (fixed seed)."""
    rng = np.random.default_rng(0)
    ones = [1.0] * 7
    flat = dataclasses.replace(cal, weekday=ones, weekday_day=ones if cal.weekday_day else [])
    mult = demand_factor(np.zeros(CAL_NIGHTS, dtype=int), flat, rng)
    demand = cal.mean_flow * mult * np.array(cal.profile)[None, :]
    demand += sample_noise(demand.size, cal, rng).reshape(demand.shape)
    return _diff_sigma(statistic(demand))


def _night_median(x: np.ndarray) -> np.ndarray:
    return np.median(x[:, NIGHT], axis=1)


def _day_mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1)


@dataclass(frozen=True)
class _Measured:
    """What :func:`calibrate` reads off whole days of flows (real, or the generator's)."""

    bal: np.ndarray  # (days, slots) block balance
    dow: np.ndarray
    doy: np.ndarray
    med: np.ndarray  # the night median per day
    weekday: np.ndarray
    weekday_day: np.ndarray
    level: float  # the weekday-corrected night median's median
    night_sd: float  # its night-to-night sigma, m³/h
    day_sd: float  # the weekday-corrected 24-hour mean's day-to-day sigma, m³/h
    day_level: float  # the weekday-corrected 24-hour mean's median
    rank_corr: float  # of the night's and the day's differences

    @property
    def daily(self) -> np.ndarray:
        return self.bal.mean(axis=1)


def _weekday(x: np.ndarray, dow: np.ndarray) -> np.ndarray:
    """Weekday factors of a daily series against a centred weekly median (which follows
    leaks and seasons alike), mean 1."""
    trend = np.array([np.median(x[max(0, d - 3) : d + 4]) for d in range(len(x))])
    f = np.array([np.median((x / trend)[dow == k]) for k in range(7)])
    return f / f.mean()


def _measure(start: datetime, cols: dict[str, np.ndarray], n: int) -> _Measured:
    """The figures of the first ``n`` samples (whole days from ``start``), the same code
    for the real flows and for the generator's (see :func:`_closed_loop`)."""
    bal = (cols["p227"][:n] + cols["p235"][:n] - cols["PUMP_1"][:n]).reshape(-1, SLOTS)
    days = bal.shape[0]
    dates = [start + timedelta(days=d) for d in range(days)]
    dow = np.array([d.weekday() for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates])
    med = np.median(bal[:, NIGHT], axis=1)
    weekday = _weekday(med, dow)
    corrected = med / weekday[dow]
    daily = bal.mean(axis=1)
    full = daily / _weekday(daily, dow)[dow]
    # the day (07:00-24:00, where the night's factor has no weight): its own weekday factors
    day_part = bal[:, 7 * 12 :].mean(axis=1)
    weekday_day = _weekday(day_part, dow)
    d_night, d_day = np.diff(corrected), np.diff(day_part / weekday_day[dow])
    ranks = [np.argsort(np.argsort(x)) for x in (d_night, d_day)]
    rank_corr = float(np.corrcoef(ranks[0], ranks[1])[0, 1])
    return _Measured(bal, dow, doy, med, weekday, weekday_day, float(np.median(corrected)),
                     _diff_sigma(corrected), _diff_sigma(full), float(np.median(full)),
                     rank_corr)  # fmt: skip


def _spread(x: list[float]) -> list[float]:
    """Mean and standard deviation, rounded for the shipped file."""
    return [round(float(np.mean(x)), 3), round(float(np.std(x)), 3)]


def _closed_loop(cal: Calibration, real: _Measured, start: datetime) -> Calibration:
    """Scale the per-day factors until the generator's own flows over the calibration
    days, measured as the real ones were, give the real sigmas (mean of ``CAL_RUNS``
    runs, fixed seeds). Why: the open solve (:func:`_simulated`) has no season and knows
    the weekday factors, the real measure has both; they differ by 5-10 %."""
    days = real.bal.shape[0]
    for _ in range(CAL_ROUNDS):
        sims = [_measure(start, flows(Run(start, days), cal, seed)[1], days * SLOTS)
                for seed in range(CAL_RUNS)]  # fmt: skip
        night = float(np.mean([m.night_sd for m in sims]))
        day = float(np.mean([m.day_sd for m in sims]))
        cal = dataclasses.replace(
            cal,
            night_sigma_rel=cal.night_sigma_rel * real.night_sd / night,
            day_sigma_rel=cal.day_sigma_rel * real.day_sd / day,
        )
    return cal


def calibrate(times: Sequence[datetime], cols: dict[str, np.ndarray], until: datetime) -> dict:
    """Measure the generator's constants on whole days of real flows before ``until``.

    The night figures are measured on the statistic the detector judges: the median of
    the balance's samples 02:00-05:00, weekday-corrected."""
    n = sum(t < until for t in times) // SLOTS * SLOTS
    if n < 28 * SLOTS:
        raise DatasetError(f"calibration needs 28 whole days before {until:%Y-%m-%d}, got {n}")
    real = _measure(times[0], cols, n)
    bal, daily, days = real.bal, real.daily, real.bal.shape[0]
    pump = cols["PUMP_1"][:n]
    inflow = cols["p227"][:n] + cols["p235"][:n]
    profile = np.median(bal / daily[:, None], axis=0)
    split = np.median((cols["p227"][:n] / np.maximum(inflow, 1e-9)).reshape(-1, SLOTS), axis=0)
    night, med = bal[:, NIGHT], real.med
    # within-night noise: samples around the night's median times the usual night shape.
    # They are autocorrelated (about 0.2 up to an hour apart), yet an AR(1) noise fitted to
    # that makes the night medians vary more from night to night than the real ones do:
    # the real within-night pattern repeats (PUMP_1 switching, the night's shape), it is
    # not fresh noise each night. The generator keeps independent samples and puts the
    # rest of the measured night-to-night variation in the per-day factor; hour-level
    # evidence within a night is therefore not something this generator can measure.
    shape = np.median(night / med[:, None], axis=0)
    res = night - med[:, None] * shape
    sample_sigma = _mad_sigma(res.ravel())
    ac = [float(np.mean([np.corrcoef(r[:-k], r[k:])[0, 1] for r in res])) for k in (1, 3, 6, 12)]
    # the generator's nights sit at mean_flow x the night profile (the mean flow holds
    # 2018's leaks, so above the real demand-only night): match the absolute variation
    base = Calibration(profile.tolist(), [], float(np.median(daily)), [1.0] * 7, 0.0,
                       sample_sigma, 0.0, 0.0, 0.0, NIGHT_DF, [1.0] * 7, 0.0)  # fmt: skip

    def night_sd(sig: float) -> float:
        return _simulated(dataclasses.replace(base, night_sigma_rel=sig), _night_median)

    night_sigma = _factor_sigma(real.night_sd, night_sd)
    base = dataclasses.replace(base, night_sigma_rel=night_sigma)

    def day_sd(sig: float) -> float:
        return _simulated(dataclasses.replace(base, day_sigma_rel=sig), _day_mean)

    day_sigma = _factor_sigma(real.day_sd, day_sd)
    doy = real.doy
    a = 2 * math.pi * doy / 365.25
    design = np.column_stack([np.ones(days), np.cos(a), np.sin(a)])
    coef, *_ = np.linalg.lstsq(design, np.log(daily), rcond=None)
    amp = float(math.hypot(coef[1], coef[2]))
    peak = float(math.atan2(coef[2], coef[1]) * 365.25 / (2 * math.pi))
    # the generator multiplies its mean flow by the season, so the shipped levels are
    # net of it: over the calibration days the generator's median then is the real
    # median (the plain median, shipped before, counted January-June's season twice:
    # +10 % of flow, and of the relative noise with it)
    sea = _season(doy, amp, peak)
    on = pump > 1.0
    stops = np.flatnonzero(on[:-1] & ~on[1:])
    cyc = [pump[a + 1 : b + 1].sum() / (b - a) for a, b in itertools.pairwise(stops)]
    cyc_sea = sea[np.minimum(stops[1:] // SLOTS, days - 1)]
    cal = Calibration(
        profile=np.round(profile, 5).tolist(),
        split_p227=np.round(split, 5).tolist(),
        mean_flow=round(float(np.median(daily) / np.median(sea)), 3),
        weekday=np.round(real.weekday, 5).tolist(),
        night_sigma_rel=night_sigma,
        sample_sigma=round(sample_sigma, 4),
        season_amp=round(amp, 5),
        season_peak_doy=round(peak, 1),
        tank_mean=round(float(np.median(cyc) / np.median(cyc_sea)), 3),
        night_df=NIGHT_DF,
        weekday_day=np.round(real.weekday_day, 5).tolist(),
        day_sigma_rel=day_sigma,
    )
    open_night, open_day = night_sigma, day_sigma
    cal = _closed_loop(cal, real, times[0])
    # checked on other seeds than the loop's own
    check = [_measure(times[0], flows(Run(times[0], days), cal, CAL_RUNS + s)[1], n)
             for s in range(CAL_RUNS)]  # fmt: skip
    consts = {k: v for k, v in asdict(cal).items() if k != "derivation"}
    consts["night_sigma_rel"] = round(cal.night_sigma_rel, 5)
    consts["day_sigma_rel"] = round(cal.day_sigma_rel, 5)
    return {
        **consts,
        "measured": {
            "night_median_m3h": round(real.level, 2),
            "generator_night_median_m3h": round(float(np.mean([m.level for m in check])), 2),
            "night_to_night_sigma_m3h": round(real.night_sd, 3),
            "generator_night_to_night_sigma_m3h": _spread([m.night_sd for m in check]),
            "night_to_night_sigma_rel": round(real.night_sd / real.level, 5),
            "night_to_night_sigma_without_weekday_m3h": round(_diff_sigma(med), 3),
            "daily_mean_m3h": round(real.day_level, 2),
            "generator_daily_mean_m3h": round(float(np.mean([m.day_level for m in check])), 2),
            "daily_mean_day_to_day_sigma_m3h": round(real.day_sd, 3),
            "generator_daily_mean_day_to_day_sigma_m3h": _spread([m.day_sd for m in check]),
            "open_solve_night_day_sigma_rel": [round(open_night, 5), round(open_day, 5)],
            "night_vs_day_rank_correlation_of_differences": round(real.rank_corr, 3),
            "within_night_autocorrelation_lag_1_3_6_12": [round(x, 3) for x in ac],
        },
        "derivation": (
            f"cloud.detect.synthetic.calibrate on {days} whole days of the BattLeDIM 2018 "
            f"SCADA flows from {times[0]:%Y-%m-%d} (before {until:%Y-%m-%d}): balance = "
            "p227 + p235 - PUMP_1; profile = median of each day's samples over its mean; "
            "night = median of the samples 02:00-05:00 (the detector's statistic); weekday "
            "= median night over a centred 7-night median per weekday; the night-to-night "
            "sigma = 1.4826 MAD of consecutive-night differences of the weekday-corrected "
            "night / sqrt 2 (measured: see 'measured'); sample_sigma = 1.4826 MAD of the "
            "night samples around the night's median times the median within-night shape "
            "(drawn independent; their measured autocorrelation is in 'measured'); "
            "night_sigma_rel = the per-day "
            f"factor's sigma (Student-t, {NIGHT_DF:g} degrees of freedom, MAD-scaled) that, "
            f"with that sample noise, gives the measured night-to-night sigma in m³/h "
            f"(first solved on {CAL_NIGHTS} simulated nights with no season, seed 0; then "
            f"{CAL_ROUNDS} closed-loop rounds: the generator's own flows over the same days, "
            f"{CAL_RUNS} runs, measured exactly as the real ones, the factor scaled by real "
            "over generated; 'measured' holds both solves and a check on other seeds); "
            "weekday_day = the same for the 07:00-24:00 mean; day_sigma_rel = the day's own "
            "per-day factor (independent of the night's: their differences hardly "
            "correlate, see 'measured') that gives the measured day-to-day sigma of the "
            "weekday-corrected 24-hour mean, solved the same two ways; the night's factor "
            "weighs 1 from 01:00 to 06:00, ramping over the hour either side; season = "
            "least squares of log daily mean on a yearly cosine (half a year: amplitude "
            "loosely determined); mean_flow = the median daily mean over the median season "
            "factor of the same days, tank_mean = median PUMP_1 volume per pump cycle / "
            "cycle length, over the same, so that the generator's median over those days is "
            "the real one. The real flows hold leaks (2018 has some from 8 January), so the "
            "mean flow includes them."
        ),
    }


# ---- generation ------------------------------------------------------------------------
def plan(n_leaks: int, seed: int, response: Response) -> list[Run]:
    """Random leaks, ``EPISODES_PER_RUN`` per run after a leak-free warm-up, one at a time."""
    rng = np.random.default_rng(seed)
    runs: list[Run] = []
    for k in range(n_leaks):
        if k % EPISODES_PER_RUN == 0:
            start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 365)))
            left = min(EPISODES_PER_RUN, n_leaks - k)
            runs.append(Run(start, WARMUP_DAYS + left * EPISODE_DAYS))
        run = runs[-1]
        ep = run.start + timedelta(days=WARMUP_DAYS + (k % EPISODES_PER_RUN) * EPISODE_DAYS)
        t0 = ep + timedelta(minutes=5 * int(rng.integers(0, SLOTS)))
        size = float(math.exp(rng.uniform(math.log(SIZE_MIN), math.log(SIZE_MAX))))
        kind = "abrupt" if rng.random() < 0.5 else "incipient"
        peak = t0 if kind == "abrupt" else t0 + timedelta(days=float(rng.uniform(3, 9)))
        end = t0 + timedelta(days=float(rng.uniform(9.5, 10.5)))
        i = int(rng.integers(0, len(response.links)))
        shares = tuple(float(x) for x in response.shares[i])
        leak = Leak(response.links[i], t0, end, kind, peak, round(size, 3), zones_of(shares))
        run.leaks.append(SynthLeak(leak, (shares[0], shares[1], shares[2])))
    return runs


def _leak_flow(lk: Leak, t: np.ndarray) -> np.ndarray:
    """Leak flow (m³/h) at epoch seconds ``t``: a step, or a ramp to its peak."""
    s, p, e = lk.start.timestamp(), lk.peak.timestamp(), lk.end.timestamp()
    size = lk.size_m3h or 0.0
    grow = np.ones_like(t) if p <= s else np.clip((t - s) / (p - s), 0.0, 1.0)
    return np.where((t >= s) & (t < e), size * grow, 0.0)


def flows(run: Run, cal: Calibration, seed: int) -> tuple[list[datetime], dict[str, np.ndarray]]:
    """5-minute p227, p235 and PUMP_1 for one run, as the real SCADA file has them."""
    rng = np.random.default_rng(seed)
    n = run.days * SLOTS
    t = run.start.timestamp() + 300.0 * np.arange(n)
    slot = np.arange(n) % SLOTS
    dates = [run.start + timedelta(days=d) for d in range(run.days)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    dows = np.array([d.weekday() for d in dates])
    season = _season(doy, cal.season_amp, cal.season_peak_doy)
    mult = (season[:, None] * demand_factor(dows, cal, rng)).ravel()
    profile = np.array(cal.profile)
    demand = cal.mean_flow * mult * profile[slot]
    demand += sample_noise(n, cal, rng)
    to227 = np.zeros(n)
    to235 = np.zeros(n)
    to_tank = np.zeros(n)
    for sl in run.leaks:
        q = _leak_flow(sl.leak, t)
        to227 += q * sl.shares[0]
        to235 += q * sl.shares[1]
        to_tank += q * sl.shares[2]
    tank_demand = cal.tank_mean * mult * profile[slot] / profile.mean() + to_tank
    pump = _pump(tank_demand, rng)
    split = np.array(cal.split_p227)[slot]
    supplied = demand + pump
    cols = {
        "p227": np.round(supplied * split + to227, 2),
        "p235": np.round(supplied * (1.0 - split) + to235, 2),
        "PUMP_1": np.round(pump, 2),
    }
    return [run.start + i * STEP for i in range(n)], cols


def _pump(tank_demand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulate T1 and its level controls; return the pump flow per step."""
    level = float(rng.uniform(TANK_LOW_M, TANK_HIGH_M))
    on = False
    out = np.zeros(len(tank_demand))
    dt_h = 5.0 / 60.0
    for i, d in enumerate(tank_demand.tolist()):
        if level < TANK_LOW_M:
            on = True
        elif level > TANK_HIGH_M:
            on = False
        q = PUMP_M3H if on else 0.0
        out[i] = q
        level += (q - d) * dt_h / TANK_AREA_M2
    return out


def write_run(run: Run, cal: Calibration, seed: int, out_dir: Path, name: str) -> None:
    """Write a run as a BattLeDIM-format directory (flows CSV + leak labels)."""
    times, cols = flows(run, cal, seed)
    d = out_dir / name
    d.mkdir(parents=True, exist_ok=True)
    with (d / f"{name}_SCADA_Flows.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["Timestamp", *cols])
        rows = zip(*(c.tolist() for c in cols.values()), strict=True)
        for ts, row in zip(times, rows, strict=True):
            w.writerow([f"{ts:%Y-%m-%d %H:%M:%S}", *row])
    with (d / f"leaks_{name}.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["link_id", "start_time", "end_time", "leak_type", "peak_time", "size_m3h"])
        f = "%Y-%m-%d %H:%M"
        for sl in run.leaks:
            lk = sl.leak
            w.writerow(
                [
                    lk.link_id,
                    f"{lk.start:{f}}",
                    f"{lk.end:{f}}",
                    lk.kind,
                    f"{lk.peak:{f}}",
                    lk.size_m3h,
                ]
            )


# ---- the curve --------------------------------------------------------------------------
def wilson(found: int, of: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (``z`` = 1.96: 95 %); (nan, nan) for none."""
    if of <= 0:
        return math.nan, math.nan
    p = found / of
    centre = (p + z * z / (2 * of)) / (1 + z * z / of)
    half = z * math.sqrt(p * (1 - p) / of + z * z / (4 * of * of)) / (1 + z * z / of)
    return max(0.0, centre - half), min(1.0, centre + half)


def prior_alarm(
    leak: Leak, alarms: Sequence[Alarm], lookback: timedelta = PRIOR_LOOKBACK
) -> timedelta | None:
    """How long before ``leak`` started the last alarm in its zone was raised, if within
    ``lookback``. Why it matters: the detector may still hold that alarm's leak open, and a
    leak that starts while one is open is followed as its growth (an update, no new alarm),
    so a miss after such an alarm is a different fault from a leak found late."""
    start = leak.start
    seen = [a.ts for a in alarms if leak.seen_by(a.device_id) and start - lookback <= a.ts < start]
    return start - max(seen) if seen else None


@dataclass(frozen=True)
class Outcome:
    leak: SynthLeak
    found_at: datetime | None
    size_at_alarm: float | None
    alarm_before: timedelta | None = None  # see prior_alarm

    def within(self, budget: timedelta) -> bool:
        return self.found_at is not None and self.found_at - self.leak.leak.start <= budget


@dataclass
class Curve:
    outcomes: list[Outcome]
    false_alarms: int  # in the leak runs, outside every leak's window
    repeats: int
    leak_run_months: float
    free_false_alarms: int  # in the leak-free runs
    free_months: float
    seconds: float = 0.0

    def band(self, lo: float, hi: float, kind: str, zone: str | None = None) -> list[Outcome]:
        return [
            o
            for o in self.outcomes
            if o.leak.leak.kind == kind
            and lo <= (o.leak.leak.size_m3h or 0.0) < hi + (1e-9 if hi == SIZE_MAX else 0.0)
            and (zone is None or o.leak.zone == zone)
        ]

    def pod(self, rows: list[Outcome], budget: timedelta) -> float:
        return sum(o.within(budget) for o in rows) / len(rows) if rows else math.nan

    def headline(self, zone: str | None = None) -> tuple[int, int]:
        """Abrupt leaks of at least 5 m³/h found within 2 days: (found, of)."""
        rows = self.band(5.0, SIZE_MAX, "abrupt", zone)
        return sum(o.within(ABRUPT_BUDGET) for o in rows), len(rows)

    def misses(self) -> list[Outcome]:
        """The headline's leaks not found within 2 days, largest first."""
        rows = [o for o in self.band(5.0, SIZE_MAX, "abrupt") if not o.within(ABRUPT_BUDGET)]
        return sorted(rows, key=lambda o: -(o.leak.leak.size_m3h or 0.0))

    def headline_interval(self, zone: str | None = None) -> tuple[float, float]:
        """95 % Wilson interval of the headline rate: with ~60 leaks a seed, a few leaks
        either way move it by 5 points, so no single figure should be read alone."""
        return wilson(*self.headline(zone))

    @property
    def free_per_month(self) -> float:
        return self.free_false_alarms / self.free_months if self.free_months else 0.0

    def rows(self) -> Iterator[dict]:
        for kind in ("abrupt", "incipient"):
            for lo, hi in BANDS:
                sel = self.band(lo, hi, kind)
                yield {
                    "type": kind,
                    "band_m3h": [lo, hi],
                    "leaks": len(sel),
                    "pod_2d": self.pod(sel, ABRUPT_BUDGET),
                    "pod_7d": self.pod(sel, WITHIN_7D),
                    "pod_2d_block_zone": self.pod(
                        [o for o in sel if o.leak.zone == "block"], ABRUPT_BUDGET
                    ),
                }

    def to_json(self) -> dict:
        found, of = self.headline()
        return {
            "bands": list(self.rows()),
            "headline_abrupt_5plus_within_2d": [found, of],
            "headline_block_zone": list(self.headline("block")),
            "headline_95ci": list(self.headline_interval()),
            "false_alarms_per_month_leak_free": self.free_per_month,
            "false_alarms_leak_runs": self.false_alarms,
            "repeats_leak_runs": self.repeats,
            "leak_run_months": self.leak_run_months,
            "leak_free_months": self.free_months,
            "seconds": self.seconds,
            "leaks": [
                {
                    **{k: v for k, v in asdict(o.leak.leak).items() if k in ("link_id", "kind")},
                    "size_m3h": o.leak.leak.size_m3h,
                    "zone": o.leak.zone,
                    "start": o.leak.leak.start.isoformat(),
                    "found_at": o.found_at.isoformat() if o.found_at else None,
                    "estimated_m3h": o.size_at_alarm,
                    "alarm_before_h": (
                        o.alarm_before.total_seconds() / 3600.0
                        if o.alarm_before is not None
                        else None
                    ),
                }
                for o in self.outcomes
            ],
        }


def series_for_detector(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the detector is fed: the same zones as the BattLeDIM replay."""
    from cloud.detect.battledim import Series

    return Series([], cols).zones()


def _replay_run(job: tuple[Run, Calibration, int, DetectConfig]) -> list[Alarm]:
    """Generate one run's flows and replay them (a process-pool job: top level, picklable)."""
    from cloud.detect.battledim import replay

    run, cal, seed, config = job
    times, cols = flows(run, cal, seed)
    return replay(times, series_for_detector(cols), config)


def run_curve(
    n_leaks: int,
    seed: int,
    config: DetectConfig,
    *,
    free_runs: int = 2,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Curve:
    """Generate, replay and score ``n_leaks`` leaks and ``free_runs`` leak-free years.

    Runs are independent (each has its own seed), so they are replayed on up to
    ``workers`` processes (default: 2, or 1 on a single core); the figures do not depend
    on how many."""
    started = time.perf_counter()
    cal, resp = Calibration.load(), Response.load()
    runs = plan(n_leaks, seed, resp)
    rng = np.random.default_rng(seed + 1)
    for _ in range(free_runs):
        day0 = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 365)))
        runs.append(Run(day0, 365))
    outcomes: list[Outcome] = []
    fa = rep = free_fa = 0
    leak_months = free_months = 0.0
    jobs = [(run, cal, seed * 1000 + k, config) for k, run in enumerate(runs)]
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    with ProcessPoolExecutor(n_workers) if n_workers > 1 else nullcontext() as pool:
        results = pool.map(_replay_run, jobs) if pool is not None else map(_replay_run, jobs)
        for k, (run, alarms) in enumerate(zip(runs, results, strict=True)):
            last = run.start + (run.days * SLOTS - 1) * STEP
            res = score("onset", alarms, [sl.leak for sl in run.leaks], run.start, last,
                        onset_window())  # fmt: skip
            by_leak = {id(m.leak): m for m in res.leaks}
            sizes = {a.ts: a.size_m3h for a, v in res.verdicts if v == "credited"}
            for sl in run.leaks:
                m = by_leak[id(sl.leak)]
                found = m.found_at
                before = prior_alarm(sl.leak, alarms)
                outcomes.append(Outcome(sl, found, sizes.get(found) if found else None, before))
            if run.leaks:
                fa += res.false_positives
                rep += res.repeats
                leak_months += res.months
            else:
                free_fa += res.false_positives
                free_months += res.months
            if progress is not None:
                progress(f"run {k + 1}/{len(runs)}: {len(run.leaks)} leaks, {len(alarms)} alarms")
    return Curve(outcomes, fa, rep, leak_months, free_fa, free_months,
                 time.perf_counter() - started)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m cloud.detect.synthetic calibrate DIR``: rewrite the shipped constants."""
    import sys

    from cloud.detect.battledim import find_files, read_flows

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "calibrate":
        raise SystemExit("usage: python -m cloud.detect.synthetic calibrate BATTLEDIM_2018_DIR")
    flows_path, _ = find_files(Path(args[1]))
    s = read_flows(flows_path)
    until = datetime(s.times[0].year, 7, 1, tzinfo=UTC)  # January–June only: H2 is held out
    consts = calibrate(s.times, s.columns, until)
    CALIBRATION.write_text(json.dumps(consts, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {CALIBRATION}")


if __name__ == "__main__":
    main()
