"""Deterministic, stateless noise: the value at (key, index) never depends on call order.

A model evaluated lazily at any time ``t`` (a Modbus read, an export row) must give the
same answer whichever order the reads arrive in, so per-sample noise cannot come from a
stream generator. We hash ``(key, index)`` with splitmix64 instead; the per-device keys
themselves are drawn from the scenario's ``numpy.random.Generator``.

The scalar (Python int) and array (numpy uint64) versions give identical bits.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_INV53 = 1.0 / (1 << 53)


def _mix(z: int) -> int:
    z = (z ^ (z >> 30)) * _M1 & _MASK
    z = (z ^ (z >> 27)) * _M2 & _MASK
    return z ^ (z >> 31)


def uniform(key: int, index: int) -> float:
    """Uniform in [0, 1) for (key, index)."""
    z = (key + (index + 1) * _GOLDEN) & _MASK
    return (_mix(z) >> 11) * _INV53


def normal(key: int, index: int) -> float:
    """Standard normal for (key, index) (Box-Muller on two hashed uniforms)."""
    u1 = uniform(key, 2 * index) or _INV53
    u2 = uniform(key, 2 * index + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def uniform_array(key: int, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Vectorised :func:`uniform` (same bits)."""
    with np.errstate(over="ignore"):
        z = np.uint64(key & _MASK) + (index.astype(np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * _INV53


def normal_array(key: int, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    u1 = uniform_array(key, 2 * index)
    u1 = np.where(u1 == 0.0, _INV53, u1)
    u2 = uniform_array(key, 2 * index + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def smooth(key: int, t: float, period_s: float) -> float:
    """Smooth noise in about [-1, 1]: cosine interpolation between hashed knots."""
    x = t / period_s
    i = math.floor(x)
    f = x - i
    a = 2.0 * uniform(key, i) - 1.0
    b = 2.0 * uniform(key, i + 1) - 1.0
    w = (1.0 - math.cos(math.pi * f)) * 0.5
    return a + (b - a) * w


def child_key(rng: np.random.Generator) -> int:
    """A fresh 64-bit noise key from the scenario generator."""
    return int(rng.integers(0, 1 << 63))
