"""Household water meters behind a LoRaWAN network server (ChirpStack v4 ``up`` events).

Each meter counts litres; every ``pack_h`` hours (6) it sends one Class A uplink holding
those hours in the ``akita-hourly-v1`` format (the cloud's codec, ``cloud/lpwa/codecs``,
decodes it; firmware and cloud each have their own side, as in the field). The network
server publishes an ``up`` event under its own prefix some seconds later.

Household use follows the block demand curve of :mod:`firmware_sim.models.water`
(``pattern``) scaled per household, with idle hours at night (nobody draws water), so a
household's 24 h always hold hours below the leak minimum unless a leak adds a constant
flow. Labels: ``leak`` (from ``leak_start_s``), ``heavy`` (three times the use, no
leak), ``dead`` (battery dies at ``dead_at_s``: silent from then on), and for the other
meter detectors (none by default, so the pilot fleets stay as they were): ``burst`` (a
pipe bursts behind the meter: 1-3 m³/h for 2-6 h, the meter's burst bit on meanwhile),
``reverse`` (back-siphonage: 10-60 L/h counted backwards for 1-4 h) and ``tamper`` (a
magnet on the meter from ``tamper_at_s``: its tamper bit stays on).

Battery (:func:`battery_pct`): each meter's level drains linearly by its own rate (1-6 %
a year, a level of 70-98 % on 2026-01-01), sent as an integer % with a +-0.5 % noise
(the meter's estimate); a ``dead`` meter's battery collapses over its last 2-6 days to 0
at ``dead_at_s``, with the low-battery alarm bit from ``LOW_BATTERY_PCT`` down, so it
shows a falling battery and the bit before it falls silent. The parameters come from the
devEui (their own random stream): the households' use is what it was without them.

Transport faults, as the lpwa facts list them: a frame published three times (heard by
three radio gateways on a network server that does not merge them: same fCnt, new
deduplicationId), a QoS 1 redelivery (same deduplicationId), and uplinks held back
``late_s`` (6 h) before they are published.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from firmware_sim.models.water import pattern
from firmware_sim.timebase import HOUR_S, is_weekend, local_hour

PROFILE = "akita-hourly-v1"
PACK_H = 6  # hours per uplink
APPLICATION_ID = "4f0c7b53-9a7e-4d0b-8f0e-2d1c6a3b5e71"


@dataclass(frozen=True)
class Meter:
    dev_eui: str
    block: int
    mean_lpd: float  # litres per day
    leak_lph: float = 0.0
    leak_start_s: float = float("inf")
    dead_at_s: float = float("inf")
    label: str = "normal"  # normal, heavy, leak, dead, burst, reverse, tamper
    # an episode (burst or reverse flow): start, litres per hour, hours
    episode: tuple[float, float, int] = (float("inf"), 0.0, 0)
    tamper_at_s: float = float("inf")

    def in_episode(self, end_s: float) -> float:
        """Litres per hour of this meter's episode in the hour ending at ``end_s``."""
        start, lph, hours = self.episode
        return lph if start < end_s <= start + hours * HOUR_S else 0.0


LOW_BATTERY_PCT = 15  # the meter sets its low-battery bit at or below this level
BATTERY_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00Z: the day the levels are drawn for
YEAR_S = 365.25 * 86_400


@dataclass(frozen=True)
class Battery:
    level0: float  # % at BATTERY_EPOCH_S
    per_year: float  # % drained a year
    fade_s: float  # a dead meter's last days: the battery falls to 0 over these


@lru_cache(maxsize=65_536)
def battery_model(dev_eui: str) -> Battery:
    """A meter's battery parameters, drawn from its devEui alone."""
    rng = random.Random(f"battery:{dev_eui}")
    return Battery(rng.uniform(70, 98), rng.uniform(1.0, 6.0), rng.uniform(2, 6) * 86_400)


def battery_level(m: Meter, t_s: float) -> float:
    """The meter's true battery (%) at ``t_s``."""
    b = battery_model(m.dev_eui)
    level = b.level0 - b.per_year * (t_s - BATTERY_EPOCH_S) / YEAR_S
    if t_s > m.dead_at_s - b.fade_s:  # end of life: the cell collapses, then silence
        level *= max(0.0, (m.dead_at_s - t_s) / b.fade_s)
    return min(100.0, max(0.0, level))


def battery_slope_per_30d(m: Meter) -> float:
    """The simulated drain of a meter that does not die, in % per 30 days (negative)."""
    return -battery_model(m.dev_eui).per_year * 30 * 86_400 / YEAR_S


def battery_pct(m: Meter, t_s: float) -> int:
    """What the meter sends at ``t_s``: its level +-0.5 % (deterministic per meter and
    time), as an integer %."""
    noise = zlib.crc32(f"{m.dev_eui}:{int(t_s)}".encode()) / 2**32 - 0.5
    return min(100, max(0, round(battery_level(m, t_s) + noise)))


def encode_hourly_v1(first_end_s: int, index_l: int, used_l: list[int], reverse_l: int,
                     battery: int, alarms: int) -> bytes:  # fmt: skip
    """The meter's side of ``akita-hourly-v1``: ``used_l`` are the following hours."""
    head = struct.pack(">BIBI", 1, first_end_s, len(used_l) + 1, index_l)
    return (
        head
        + struct.pack(f">{len(used_l)}H", *used_l)
        + struct.pack(">IBB", reverse_l, battery, alarms)
    )


def fleet(n: int, blocks: int, seed: int, *, leaks: float = 0.02, heavy: float = 0.05,
          dead: float = 0.01, start_s: float = 0.0, days: float = 7.0, burst: float = 0.0,
          reverse: float = 0.0, tamper: float = 0.0) -> list[Meter]:  # fmt: skip
    """Households with labels drawn by the shares given (see the module docstring)."""
    for name, share in (("leaks", leaks), ("heavy", heavy), ("dead", dead), ("burst", burst),
                        ("reverse", reverse), ("tamper", tamper)):  # fmt: skip
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"fleet {name}: {share} is not a share between 0 and 1")
    if leaks + heavy + dead + burst + reverse + tamper > 1.0:
        raise ValueError("fleet: the label shares add up to more than 1")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        eui = f"a1{seed % 256:02x}{i:012x}"
        mean = rng.lognormvariate(5.4, 0.35)  # ~220 L/day, a Japanese household's order
        r = rng.random()
        if r < leaks:
            leak_start = start_s + rng.uniform(0.1, 0.5) * days * 86_400
            m = Meter(eui, i % blocks, mean, rng.uniform(4, 30), leak_start, label="leak")
        elif r < leaks + heavy:
            m = Meter(eui, i % blocks, mean * 3, label="heavy")
        elif r < leaks + heavy + dead:
            dead_at = start_s + rng.uniform(0.2, 0.8) * days * 86_400
            m = Meter(eui, i % blocks, mean, dead_at_s=dead_at, label="dead")
        elif r < leaks + heavy + dead + burst + reverse + tamper:
            at = start_s + rng.uniform(0.1, 0.9) * days * 86_400
            m = _episode_meter(rng, eui, i % blocks, mean, r - leaks - heavy - dead,
                               (burst, reverse), at)  # fmt: skip
        else:
            m = Meter(eui, i % blocks, mean)
        out.append(m)
    return out


def _episode_meter(rng: random.Random, eui: str, block: int, mean: float, r: float,
                   shares: tuple[float, float], at_s: float) -> Meter:  # fmt: skip
    """A burst, reverse-flow or tamper household; ``r`` is its draw within those shares."""
    burst, reverse = shares
    if r < burst:
        ep = (at_s, rng.uniform(1000, 3000), rng.randint(2, 6))
        return Meter(eui, block, mean, label="burst", episode=ep)
    if r < burst + reverse:
        ep = (at_s, rng.uniform(10, 60), rng.randint(1, 4))
        return Meter(eui, block, mean, label="reverse", episode=ep)
    return Meter(eui, block, mean, label="tamper", tamper_at_s=at_s)


def hour_use(m: Meter, end_s: float, rng: random.Random) -> int:
    """Litres used in the hour ending at ``end_s``."""
    mid = end_s - HOUR_S / 2
    h = local_hour(mid)
    base = m.mean_lpd / 24 * pattern(h, is_weekend(mid)) * rng.lognormvariate(0, 0.5)
    if 0.5 <= h < 5.5 and rng.random() < 0.8:
        base = 0.0  # asleep: no draw at all most night hours
    leak = m.leak_lph if end_s > m.leak_start_s else 0.0
    burst = m.in_episode(end_s) if m.label == "burst" else 0.0
    return round(base + leak + burst)


def _reverse_l(m: Meter, end_s: float) -> int:
    """Litres counted backwards since installation, at ``end_s``."""
    if m.label != "reverse":
        return 0
    start, lph, hours = m.episode
    return round(lph * min(hours, max(0.0, (end_s - start) / HOUR_S)))


def alarm_byte(m: Meter, ends: list[int], battery: int) -> int:
    """The meter's alarm byte on its newest hour (bits as in ``cloud/lpwa/codecs``)."""
    leak = bool(m.leak_lph) and ends[-1] - m.leak_start_s > 24 * HOUR_S
    burst = m.label == "burst" and any(m.in_episode(e) for e in ends)
    tamper = ends[-1] >= m.tamper_at_s
    low = battery <= LOW_BATTERY_PCT
    return int(leak) | int(burst) << 1 | int(tamper) << 2 | int(low) << 4


@dataclass(frozen=True)
class Event:
    publish_s: float  # when the network server publishes it (sort key)
    topic: str
    payload: bytes


def uplinks(m: Meter, ns: str, start_s: int, days: float, seed: int, *, pack_h: int = PACK_H,
            triple: float = 0.0, redeliver: float = 0.0, late: float = 0.0,
            late_s: float = 6 * HOUR_S,
            truth: dict[str, float] | None = None) -> Iterator[Event]:  # fmt: skip
    """One meter's events from ``start_s`` (on the hour) for ``days``. ``truth`` gets
    the litres the household drew in every hour, also those a dead meter never sends
    (the water still flows: the non-revenue figure must not count it as lost)."""
    rng = random.Random(f"{seed}:{m.dev_eui}")
    index_l = rng.randrange(0, 500_000)
    topic = f"lpwa/{ns}/application/{APPLICATION_ID}/device/{m.dev_eui}/event/up"
    hours = int(days * 24)
    for f_cnt, first in enumerate(range(0, hours - pack_h + 1, pack_h)):
        ends = [start_s + (first + k + 1) * int(HOUR_S) for k in range(pack_h)]
        used = [hour_use(m, e, rng) for e in ends]
        if truth is not None:
            truth[m.dev_eui] = truth.get(m.dev_eui, 0.0) + sum(used)
        index_l += used[0]
        first_index = index_l
        index_l += sum(used[1:])
        sent_s = ends[-1] + rng.uniform(5, 900)
        if sent_s >= m.dead_at_s:
            if truth is None:
                return
            continue  # silent, but the household's use still counts in the truth
        battery = battery_pct(m, ends[-1])
        data = encode_hourly_v1(
            ends[0], first_index, used[1:], _reverse_l(m, ends[-1]), battery,
            alarm_byte(m, ends, battery),
        )  # fmt: skip
        body = _up_json(m, data, f_cnt, sent_s, rng)
        delay = late_s if rng.random() < late else rng.uniform(0.5, 3)
        yield Event(sent_s + delay, topic, body)
        if rng.random() < redeliver:
            yield Event(sent_s + delay + 1, topic, body)
        if rng.random() < triple:
            for g in range(2):
                yield Event(
                    sent_s + delay + 0.1 * (g + 1), topic, _up_json(m, data, f_cnt, sent_s, rng)
                )


def _up_json(m: Meter, data: bytes, f_cnt: int, sent_s: float, rng: random.Random) -> bytes:
    gw = [{"gatewayId": f"{rng.getrandbits(64):016x}", "rssi": rng.randint(-125, -90),
           "snr": round(rng.uniform(-12, 8), 1)} for _ in range(rng.randint(1, 3))]  # fmt: skip
    event = {
        "deduplicationId": str(uuid.UUID(int=rng.getrandbits(128))),
        "time": datetime.fromtimestamp(sent_s, UTC).isoformat().replace("+00:00", "Z"),
        "deviceInfo": {"tenantName": "Akita City", "applicationId": APPLICATION_ID,
                       "applicationName": "water-meters", "deviceProfileName": PROFILE,
                       "deviceName": f"meter-{m.dev_eui[-6:]}", "devEui": m.dev_eui, "tags": {}},
        "devAddr": f"{rng.getrandbits(32):08x}", "adr": True, "dr": 2,
        "fCnt": f_cnt, "fPort": 10, "confirmed": False,
        "data": base64.b64encode(data).decode(),
        "rxInfo": gw, "txInfo": {"frequency": 923200000},
    }  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def all_events(meters: list[Meter], ns: str, start_s: int, days: float, seed: int, *,
               triple: float = 0.0, redeliver: float = 0.0, late: float = 0.0,
               truth: dict[str, float] | None = None) -> list[Event]:  # fmt: skip
    """Every meter's events, in the order the network server publishes them."""
    events = [
        e
        for m in meters
        for e in uplinks(
            m, ns, start_s, days, seed, triple=triple, redeliver=redeliver, late=late, truth=truth
        )
    ]
    events.sort(key=lambda e: e.publish_s)
    return events
