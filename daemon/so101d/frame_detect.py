"""Which coordinate frame a dataset's joint statistics are in, and how to convert from it.

The statistics are a LeRobot dataset's ``meta/stats.json`` (``observation.state`` or ``action``:
six means and stds in SO-101 motor order) or a JSON object of per-joint ``{"mean", "std"}``.
For every frame, a joint fits when mean ± 2 std lies within that frame's limits
(:func:`so101d.frames.limits`). The most likely frame is the tightest one in which every joint
fits: numbers spread over a frame's travel are explained better by a frame whose limits are
narrower. When no frame fits, it is the frame in which every mean lies within the limits and the
bands leave them the least; when even that fails, there is none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from so101d.calibration.model import JOINTS, ArmCalibration
from so101d.frames import Frame, Limits, convert_joint, limits, needs_calibration

STATS_KEYS = ("observation.state", "action")  # what a LeRobot dataset's stats.json holds
BAND_SIGMAS = 2.0
_TIE = 1e-9  # tightness difference below which two frames explain the stats equally well


class StatsError(ValueError):
    """A statistics file that cannot be read: the message names the file and the key."""


@dataclass(frozen=True)
class JointStats:
    mean: float
    std: float

    @property
    def band(self) -> Limits:
        return self.mean - BAND_SIGMAS * self.std, self.mean + BAND_SIGMAS * self.std


@dataclass(frozen=True)
class JointFit:
    joint: str
    stats: JointStats
    limits: Limits

    @property
    def mean_inside(self) -> bool:
        return self.limits[0] <= self.stats.mean <= self.limits[1]

    @property
    def fits(self) -> bool:
        low, high = self.stats.band
        return self.limits[0] <= low and high <= self.limits[1]

    @property
    def span(self) -> Limits:
        """Where the joint's values lie: the band, within the limits."""
        low, high = self.stats.band
        low, high = max(low, self.limits[0]), min(high, self.limits[1])
        return (low, high) if low < high else self.limits

    @property
    def overshoot(self) -> float:
        """How far the band leaves the limits, as a fraction of the limits' width."""
        low, high = self.stats.band
        outside = max(0.0, self.limits[0] - low) + max(0.0, high - self.limits[1])
        return outside / (self.limits[1] - self.limits[0])


@dataclass(frozen=True)
class FrameFit:
    frame: Frame
    joints: tuple[JointFit, ...]

    @property
    def fits(self) -> bool:
        return all(joint.fits for joint in self.joints)

    @property
    def plausible(self) -> bool:
        return all(joint.mean_inside for joint in self.joints)

    @property
    def overshoot(self) -> float:
        return sum(joint.overshoot for joint in self.joints)

    @property
    def tightness(self) -> float:
        """Log of the volume the limits enclose: smaller is tighter."""
        return sum(math.log(j.limits[1] - j.limits[0]) for j in self.joints)


@dataclass(frozen=True)
class Linear:
    """``target = scale * source + offset`` for one joint."""

    scale: float
    offset: float

    @property
    def sign(self) -> int:
        return 1 if self.scale > 0 else -1


@dataclass(frozen=True)
class Detection:
    frames: tuple[FrameFit, ...]
    likely: Frame | None
    tied: tuple[Frame, ...]  # other frames that explain the stats exactly as well
    target: Frame
    # per joint; None for a joint where the map is not linear (it crosses the encoder's seam)
    conversion: Mapping[str, Linear | None] | None
    conversion_problem: str | None  # why there is no conversion, when there is a likely frame

    @property
    def any_fits(self) -> bool:
        return any(frame.fits for frame in self.frames)


def detect(
    stats: Mapping[str, JointStats],
    target: Frame = Frame.LEROBOT,
    calibration: ArmCalibration | None = None,
) -> Detection:
    fits = tuple(_fit(frame, stats, calibration) for frame in Frame)
    ranked = _ranked(fits)
    if not ranked:
        return Detection(fits, None, (), target, None, None)
    likely = ranked[0]
    tied = tuple(
        fit.frame for fit in ranked[1:] if fit.fits and abs(fit.tightness - likely.tightness) < _TIE
    )
    if needs_calibration(likely.frame, target) and calibration is None:
        problem = f"converting {likely.frame} to {target} needs --calibration FILE"
        return Detection(fits, likely.frame, tied, target, None, problem)
    conversion = {
        fit.joint: linear_map(fit.joint, likely.frame, target, fit.span, calibration)
        for fit in likely.joints
    }
    return Detection(fits, likely.frame, tied, target, conversion, None)


def linear_map(
    joint: str,
    source: Frame,
    target: Frame,
    around: Limits,
    calibration: ArmCalibration | None = None,
) -> Linear | None:
    """The linear map from ``source`` to ``target`` over ``around`` (source values), or None
    where the conversion is not linear there (it crosses the encoder's seam)."""

    def to_target(value: float) -> float:
        return convert_joint(joint, value, source, target, calibration, whole_ticks=False)

    low, high = around
    middle = (low + high) / 2
    scale = (to_target(high) - to_target(low)) / (high - low)
    offset = to_target(low) - scale * low
    expected = scale * middle + offset
    if not math.isclose(to_target(middle), expected, rel_tol=1e-9, abs_tol=1e-9):
        return None
    return Linear(_significant(scale), _significant(offset))


def read_stats(path: Path, key: str | None = None) -> tuple[str, dict[str, JointStats]]:
    """``(what was read, joint -> stats)`` from a LeRobot stats.json or per-joint JSON."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise StatsError(f"{path}: cannot read it ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StatsError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(document, dict):
        raise StatsError(f"{path}: expected a JSON object, found {type(document).__name__}")
    per_joint = {_joint_name(name): entry for name, entry in document.items()}
    if key is None and set(per_joint) & set(JOINTS):
        joints = {n: e for n, e in per_joint.items() if n in JOINTS}
        return "per-joint stats", {n: _joint_stats(path, n, e) for n, e in joints.items()}
    chosen = key or next((k for k in STATS_KEYS if k in document), None)
    if chosen is None or chosen not in document:
        wanted = repr(key) if key else " or ".join(repr(k) for k in STATS_KEYS)
        raise StatsError(
            f"{path}: no {wanted} key and no per-joint entries ({', '.join(JOINTS)}); "
            "pass --key with the feature that holds the joint positions"
        )
    return chosen, _feature_stats(path, chosen, document[chosen])


def _fit(
    frame: Frame, stats: Mapping[str, JointStats], calibration: ArmCalibration | None
) -> FrameFit:
    travel = limits(frame, calibration)
    return FrameFit(frame, tuple(JointFit(j, stats[j], travel[j]) for j in JOINTS if j in stats))


def _ranked(fits: tuple[FrameFit, ...]) -> list[FrameFit]:
    fitting = sorted((f for f in fits if f.fits), key=lambda f: f.tightness)
    if fitting:
        return fitting
    return sorted((f for f in fits if f.plausible), key=lambda f: f.overshoot)


def _feature_stats(path: Path, key: str, entry: object) -> dict[str, JointStats]:
    where = f"{path}: {key!r}"
    if not isinstance(entry, dict) or "mean" not in entry or "std" not in entry:
        raise StatsError(f"{where} has no 'mean' and 'std'")
    means, stds = entry["mean"], entry["std"]
    if not (isinstance(means, list) and isinstance(stds, list)):
        raise StatsError(f"{where}: 'mean' and 'std' must be lists, one value per joint")
    if len(means) != len(JOINTS) or len(stds) != len(JOINTS):
        raise StatsError(
            f"{where}: {len(means)} means and {len(stds)} stds; an SO-101 has {len(JOINTS)} "
            f"joints ({', '.join(JOINTS)})"
        )
    return {
        joint: _joint_stats(path, joint, {"mean": mean, "std": std})
        for joint, mean, std in zip(JOINTS, means, stds, strict=True)
    }


def _joint_stats(path: Path, joint: str, entry: object) -> JointStats:
    if not isinstance(entry, dict):
        raise StatsError(f"{path}: {joint} must be an object with 'mean' and 'std'")
    values = []
    for name in ("mean", "std"):
        value = entry.get(name)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]  # LeRobot writes per-joint stats as one-element lists
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise StatsError(f"{path}: {joint} {name} must be a number, not {value!r}")
        values.append(float(value))
    if values[1] < 0:
        raise StatsError(f"{path}: {joint} std is negative ({values[1]})")
    return JointStats(*values)


def _joint_name(name: str) -> str:
    """``shoulder_pan``, ``shoulder_pan.pos`` (LeRobot's features) and ``main_shoulder_pan``
    (LeRobot before PR #777) all name the same joint."""
    return name.removeprefix("main_").removesuffix(".pos")


def _significant(value: float) -> float:
    """Float error removed: 12 significant digits, and no negative zero."""
    return float(f"{value:.12g}") + 0.0
