"""Per-machine random streams, drawn from numpy in blocks and handed out one float at a time.

Each machine owns its streams, seeded from (seed, crc32(machine id), purpose), so what one machine
does never depends on how many other machines exist or in which order they are stepped.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

BLOCK = 2048  # draws per refill: numpy's per-call overhead is paid once per block


def machine_rng(seed: int, machine_id: str, purpose: int = 0) -> np.random.Generator:
    """The numpy Generator of one machine for one purpose (0 physics, 1 faults)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(machine_id.encode()), purpose])


class Draws:
    """Buffered standard normals and uniforms from one Generator (deterministic order)."""

    __slots__ = ("_rng", "_normals", "_ni", "_uniforms", "_ui")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._normals: list[float] = []
        self._ni = 0
        self._uniforms: list[float] = []
        self._ui = 0

    def normal(self) -> float:
        if self._ni >= len(self._normals):
            self._normals = self._rng.standard_normal(BLOCK).tolist()
            self._ni = 0
        v = self._normals[self._ni]
        self._ni += 1
        return v

    def normals(self, k: int) -> list[float]:
        if self._ni + k > len(self._normals):
            self._normals = self._rng.standard_normal(max(BLOCK, k)).tolist()
            self._ni = 0
        out = self._normals[self._ni : self._ni + k]
        self._ni += k
        return out

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        if self._ui >= len(self._uniforms):
            self._uniforms = self._rng.random(BLOCK).tolist()
            self._ui = 0
        v = self._uniforms[self._ui]
        self._ui += 1
        return lo + (hi - lo) * v

    def exponential(self, mean: float) -> float:
        # 1 - u lies in (0, 1], so the log is finite
        return -mean * math.log(1.0 - self.uniform())
