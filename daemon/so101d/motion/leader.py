"""Leader readings to follower targets, in a way that cannot jump.

Leader positions are tracked as continuous angles: crossing the encoder seam (raw 4095 -> 0,
normal on wrist_roll, whose range is the full turn) continues past the end instead of
jumping to the other end, so the follower saturates at its range end and holds. A reading
no hand could produce (out of 0..4095, a move faster than a hand can turn a joint, or a
servo reporting an angle-sensor fault) holds that joint's last position and counts as a
glitch. If the "implausible" position persists over consecutive consistent readings, the
joint really is there (it moved while readings were lost): tracking re-anchors on it and
the guard's speed limit brings the follower over at its top speed, not in one jump.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from so101d.calibration.model import ArmCalibration
from so101d.calibration.normalize import joint_norm_modes, normalize, unnormalize
from so101d.feetech import ServoFault
from so101d.feetech.registers import ENCODER_RESOLUTION, MAX_POSITION
from so101d.motion.guard import degrees_to_ticks

# A hand back-driving a leader joint through its gears: well above the STS3215's own no-load
# speed (0.222 s per 60° at 12 V, about 270 °/s) and below anything a hand can reach.
LEADER_MAX_DPS = 720.0
_NOISE_TICKS = 8  # encoder jitter allowed on top of the speed bound
_READINGS_TO_REANCHOR = 3
_HALF_TURN = ENCODER_RESOLUTION // 2
_NO_FAULTS = ServoFault(0)


def seam_delta(new: int, old: int) -> int:
    """The shortest signed distance from ``old`` to ``new`` on the encoder circle."""
    return (new - old + _HALF_TURN) % ENCODER_RESOLUTION - _HALF_TURN


@dataclass(frozen=True)
class Glitch:
    joint: str
    reading: int
    previous: int
    why: str

    def describe(self) -> str:
        return f"leader {self.joint} read {self.reading} after {self.previous}: {self.why}"


@dataclass
class _Track:
    raw: int  # the last accepted reading
    position: int  # continuous ticks: raw plus whole turns crossed
    time: float
    suspects: list[tuple[int, float]] = field(default_factory=list)


class LeaderTracker:
    """Continuous, plausibility-checked leader positions, joint by joint."""

    def __init__(self, clock: Callable[[], float], max_dps: float = LEADER_MAX_DPS) -> None:
        self.clock = clock
        self.max_dps = max_dps
        self.glitches = 0
        self.last_glitch: Glitch | None = None
        self._tracks: dict[str, _Track] = {}

    def update(
        self, readings: Mapping[str, int], faults: Mapping[str, ServoFault]
    ) -> dict[str, int]:
        """Continuous positions of every tracked joint after this cycle's readings."""
        now = self.clock()
        for joint, raw in readings.items():
            track = self._tracks.get(joint)
            glitch = _implausible_value(joint, raw, faults.get(joint, _NO_FAULTS), track)
            if track is None and glitch is None:
                self._tracks[joint] = _Track(raw, raw, now)
            elif track is not None and glitch is None:
                self._follow(joint, track, raw, now)
            elif glitch is not None:
                self._count(glitch)
        return {joint: track.position for joint, track in self._tracks.items()}

    def _follow(self, joint: str, track: _Track, raw: int, now: float) -> None:
        delta = seam_delta(raw, track.raw)
        if abs(delta) <= self._allowed(now - track.time):
            self._accept(track, raw, delta, now)
            return
        if track.suspects and not self._consistent(track.suspects[-1], raw, now):
            track.suspects.clear()
        track.suspects.append((raw, now))
        if len(track.suspects) >= _READINGS_TO_REANCHOR:
            self._accept(track, raw, delta, now)
            return
        speed = abs(delta) / degrees_to_ticks(1) / max(now - track.time, 1e-6)
        self._count(Glitch(joint, raw, track.raw, f"a move at {speed:.0f} °/s; held"))

    def _accept(self, track: _Track, raw: int, delta: int, now: float) -> None:
        track.raw, track.position, track.time = raw, track.position + delta, now
        track.suspects.clear()

    def _consistent(self, suspect: tuple[int, float], raw: int, now: float) -> bool:
        previous, when = suspect
        return abs(seam_delta(raw, previous)) <= self._allowed(now - when)

    def _allowed(self, dt: float) -> float:
        return degrees_to_ticks(self.max_dps * max(dt, 0.0)) + _NOISE_TICKS

    def _count(self, glitch: Glitch) -> None:
        self.glitches += 1
        self.last_glitch = glitch


def _implausible_value(
    joint: str, raw: int, faults: ServoFault, track: _Track | None
) -> Glitch | None:
    previous = track.raw if track else raw
    if faults and ServoFault.ANGLE_SENSOR in faults:
        return Glitch(joint, raw, previous, "the servo reports an angle sensor fault; held")
    if not 0 <= raw <= MAX_POSITION:
        return Glitch(joint, raw, previous, "outside the encoder's 0..4095; held")
    return None


class LeaderMapping:
    """Continuous leader ticks to follower ticks through LeRobot's normalization.

    Degrees for the body joints (unclamped, so a wrist past the seam maps past the
    follower's range end, where the guard clamps it), 0..100 for the gripper. Each joint's
    map is computed once per encoder position, with LeRobot's own arithmetic and truncation
    (a shortcut like an affine map would round differently at some positions), and then
    looked up.
    """

    def __init__(self, leader: ArmCalibration, follower: ArmCalibration) -> None:
        self.leader, self.follower = leader, follower
        self.modes = joint_norm_modes(use_degrees=True)
        self._known: dict[str, dict[int, float]] = {joint: {} for joint in leader}

    def targets(self, positions: Mapping[str, int]) -> dict[str, float]:
        goals = {}
        for joint, ticks in positions.items():
            known = self._known[joint]
            goal = known.get(ticks)
            if goal is None:
                goal = self.target(joint, ticks)
                if 0 <= ticks <= MAX_POSITION:  # past the seam: rare, and without bound
                    known[ticks] = goal
            goals[joint] = goal
        return goals

    def target(self, joint: str, ticks: int) -> float:
        """One joint's follower target, computed as LeRobot does."""
        mode = self.modes[joint]
        value = normalize(ticks, self.leader[joint], mode)
        return float(unnormalize(value, self.follower[joint], mode))
