"""A person's hand on an arm: smooth, human-speed trajectories for each joint.

A plan gives the angle (ticks from the joint's middle) the hand puts a joint at, at any time,
or None where the hand does not touch the joint. Every plan starts where the joint is, so the
hand never teleports a joint; the end stops clamp whatever the hand attempts beyond them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from so101d.sim.joints import JointGeometry

MOTIONS = ("wave", "sweep")

_HOLD_SPEED = 1500.0  # ticks/s, average speed of a hand moving a joint to a held pose
_SWEEP_SPEED = 2000.0  # ticks/s, average speed of a calibration sweep
_SWEEP_OVERSHOOT = 0.03  # of the travel: the hand pushes this far into each end stop
_SWEEP_PAUSE = 0.4  # seconds the hand rests against each end stop (recorders sample slowly)
_SHORTEST_MOVE = 0.3  # seconds
_WAVE_BLEND = 4.0  # seconds to ease from the joint's pose into the wave
_WAVE_SPAN = 0.35  # of the travel each side of the middle: the wave stays in 15 %..85 %
_WAVE_COMPONENTS = ((0.7, 0.05, 0.15), (0.3, 0.15, 0.3))  # (share, lowest Hz, highest Hz)


class HandPlan(Protocol):
    def angle_at(self, t: float) -> float | None: ...

    def finished_at(self, t: float) -> bool:
        """True once the hand no longer changes what it does with the joint."""
        ...


def min_jerk(u: float) -> float:
    """The minimum-jerk profile from 0 to 1 as ``u`` goes from 0 to 1 (clamped outside)."""
    u = min(max(u, 0.0), 1.0)
    return u * u * u * (10 - 15 * u + 6 * u * u)


@dataclass(frozen=True)
class Path:
    """Minimum-jerk moves through ``(time, angle)`` waypoints; held, or let go, at the end."""

    waypoints: tuple[tuple[float, float], ...]
    let_go_at_end: bool = False

    def angle_at(self, t: float) -> float | None:
        if t <= self.waypoints[0][0]:
            return self.waypoints[0][1]
        for (t0, a0), (t1, a1) in pairwise(self.waypoints):
            if t < t1:
                return a0 + (a1 - a0) * min_jerk((t - t0) / (t1 - t0))
        return None if self.let_go_at_end else self.waypoints[-1][1]

    @property
    def end_time(self) -> float:
        return self.waypoints[-1][0]

    def finished_at(self, t: float) -> bool:
        return t >= self.end_time


@dataclass(frozen=True)
class Wave:
    """Slow sines around the middle of the travel, eased in from where the joint was."""

    geometry: JointGeometry
    start_angle: float
    start_time: float
    components: tuple[tuple[float, float, float], ...]  # (share, Hz, phase)

    def angle_at(self, t: float) -> float | None:
        elapsed = t - self.start_time
        swing = sum(
            share * math.sin(2 * math.pi * hz * elapsed + phase)
            for share, hz, phase in self.components
        )
        target = self.geometry.angle_at(0.5 + _WAVE_SPAN * swing)
        return self.start_angle + (target - self.start_angle) * min_jerk(elapsed / _WAVE_BLEND)

    def finished_at(self, t: float) -> bool:
        return False


def _move_time(distance: float, speed: float) -> float:
    return max(_SHORTEST_MOVE, abs(distance) / speed)


def hold(geometry: JointGeometry, angle: float, fraction: float, now: float) -> Path:
    """Move a joint from ``angle`` to a fraction of its travel, then keep it there."""
    return move_to(angle, geometry.angle_at(fraction), now)


def move_to(angle: float, target: float, now: float, speed: float | None = None) -> Path:
    """Move a joint from ``angle`` to ``target`` at ``speed`` ticks/s on average (a hand's
    pace by default), then keep it there."""
    duration = _move_time(target - angle, speed or _HOLD_SPEED)
    return Path(((now, angle), (now + duration, target)))


def wave(
    geometries: Sequence[JointGeometry], angles: Sequence[float], now: float, seed: str
) -> list[HandPlan]:
    rng = random.Random(f"so101d.sim/wave/{seed}")
    return [
        Wave(
            geometry,
            angle,
            now,
            tuple(
                (share, rng.uniform(low, high), rng.uniform(0, 2 * math.pi))
                for share, low, high in _WAVE_COMPONENTS
            ),
        )
        for geometry, angle in zip(geometries, angles, strict=True)
    ]


def sweep(geometries: Sequence[JointGeometry], angles: Sequence[float], now: float) -> list[Path]:
    """A calibration sweep: joint by joint, middle, lower stop, upper stop, middle again.

    The hand holds every joint from the start (where it is) to the end of the whole pass, so
    nothing moves except the joint whose turn it is; then it lets go of all of them.
    """
    t = now
    routes: list[list[tuple[float, float]]] = []
    for geometry, angle in zip(geometries, angles, strict=True):
        reach = _SWEEP_OVERSHOOT * geometry.travel
        route = [(now, angle), (t, angle)]
        for target, pause in (
            (0.0, 0.0),
            (geometry.lower_stop - reach, _SWEEP_PAUSE),
            (geometry.upper_stop + reach, _SWEEP_PAUSE),
            (0.0, 0.0),
        ):
            t += _move_time(target - route[-1][1], _SWEEP_SPEED)
            route.append((t, target))
            if pause:
                t += pause
                route.append((t, target))
        routes.append(route)
    end = t + _SHORTEST_MOVE
    return [Path(_increasing([*route, (end, 0.0)]), let_go_at_end=True) for route in routes]


def _increasing(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Drop waypoints that do not advance in time (a joint whose turn is first)."""
    kept = [points[0]]
    for point in points[1:]:
        if point[0] > kept[-1][0]:
            kept.append(point)
    return tuple(kept)
