"""The leader to follower loop: engage ramp, mirroring, timing, stats.

Each cycle reads the leader, turns the readings into follower targets that cannot jump
(:mod:`so101d.motion.leader`), hands them to the follower's guard (clamp, °/s limit, gate)
and samples the follower's health. A failed leader read writes nothing, so the follower
holds its last goal: a glitch never becomes a jump.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from so101d.arm import Arm, Telemetry
from so101d.config import PairConfig
from so101d.faults import PairFault
from so101d.feetech import BusTimeout, CorruptReply, PortGone, ServoError, ServoFault
from so101d.health import FollowerHealth
from so101d.motion import ArmGuard, LeaderMapping, LeaderTracker, degrees_to_ticks

log = logging.getLogger(__name__)

_MISSED_READS_BEFORE_FAULT_S = 0.2  # how long the leader may stay silent before we give up
_GLITCH_LOG_INTERVAL_S = 5.0


class Ticker:
    """Drift-free periodic timing: deadlines at start + k·period, missed ticks skipped."""

    def __init__(self, rate_hz: float) -> None:
        self.period = 1 / rate_hz
        self._next = time.monotonic()
        self.overruns = 0

    def wait(self) -> None:
        self._next += self.period
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -self.period:
            self.overruns += 1
            self._next = time.monotonic()

    def remaining(self) -> float:
        """Seconds left before the next deadline."""
        return self._next + self.period - time.monotonic()


@dataclass
class CycleStats:
    """Cycle durations and errors over a sliding window, for status and the stats line.

    The window is also kept sorted as it slides (one insertion and one removal per cycle),
    so a snapshot, however often status is asked for, sorts nothing."""

    window: int = 1000
    durations: deque[float] = field(default_factory=deque)
    starts: deque[float] = field(default_factory=deque)
    errors: int = 0
    cycles: int = 0
    _ordered: list[float] = field(default_factory=list, repr=False)

    def record(self, started: float, duration: float) -> None:
        self.cycles += 1
        self.durations.append(duration)
        self.starts.append(started)
        bisect.insort(self._ordered, duration)
        if len(self.durations) > self.window:
            del self._ordered[bisect.bisect_left(self._ordered, self.durations.popleft())]
            self.starts.popleft()

    def snapshot(self) -> dict[str, float | int]:
        ordered = self._ordered
        span = self.starts[-1] - self.starts[0] if len(self.starts) > 1 else 0.0
        return {
            "rate_hz": round((len(self.starts) - 1) / span, 1) if span > 0 else 0.0,
            "cycle_p50_ms": round(_percentile(ordered, 0.50) * 1000, 3),
            "cycle_p99_ms": round(_percentile(ordered, 0.99) * 1000, 3),
            "errors": self.errors,
            "cycles": self.cycles,
        }


class SilenceCounter:
    """Consecutive failed reads of one arm; too many in a row end the session."""

    def __init__(self, arm: str, rate_hz: float) -> None:
        self.arm = arm
        self.allowed = max(3, round(_MISSED_READS_BEFORE_FAULT_S * rate_hz))
        self.missed = 0

    def answered(self) -> None:
        self.missed = 0

    def missed_one(self, why: str) -> None:
        self.missed += 1
        if self.missed >= self.allowed:
            raise PairFault(f"{self.arm} stopped answering for {self.missed} cycles: {why}")


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.floor(fraction * len(ordered)))]


class TeleopLoop:
    """Engages the follower and mirrors the leader until told to stop or a fault occurs.

    ``keep_going()`` is asked once per cycle; ``on_cycle()`` is called after each cycle (the
    supervisor's progress heartbeat). Every follower write goes through ``guard``.
    """

    def __init__(
        self,
        leader: Arm,
        guard: ArmGuard,
        config: PairConfig,
        keep_going: Callable[[], bool],
        on_cycle: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leader, self.guard, self.config = leader, guard, config
        self.clock = clock
        self.tracker = LeaderTracker(clock)
        self.mapping = LeaderMapping(leader.calibration, guard.arm.calibration)
        self.health = FollowerHealth(guard, config, clock)
        self.keep_going, self.on_cycle = keep_going, on_cycle
        self.stats = CycleStats()
        self._leader_silence = SilenceCounter("leader", config.rate_hz)
        self.leader_positions: dict[str, int] = {}  # the latest reading, raw
        self._logged_glitches = 0
        self._next_glitch_log = 0.0

    @property
    def telemetry(self) -> dict[str, Telemetry]:
        return dict(self.health.telemetry)

    # -- engaging --------------------------------------------------------------------------

    def engage(self) -> bool:
        """Torque on where the follower is, then close the gap to the leader's pose.

        The follower moves with the leader's own motion and, on top of that, closes the
        initial offset at engage speed, all under the guard's speed limit. Returns False if
        told to stop first.
        """
        self.guard.torque_on_holding()
        tolerance = degrees_to_ticks(self.config.max_speed_dps / self.config.rate_hz)
        previous: dict[str, float] = {}
        ticker = Ticker(self.config.rate_hz)
        while self.keep_going():
            target = self._cycle(ticker, lambda t: self._engage_speeds(t, previous, ticker))
            if target is None:
                continue
            previous.clear()
            previous.update(target)
            commanded = self._still_torqued()
            if all(abs(commanded[j] - self.guard.clamp(j, target[j])) <= tolerance for j in target):
                return True
        return False

    def _still_torqued(self) -> dict[str, float]:
        """The guard's goals; an e-stop from another thread may have released it meanwhile."""
        commanded = self.guard.commanded
        if not commanded:
            self.guard.gate.check("follower motion")
            raise PairFault("follower torque went off while engaging")
        return commanded

    def _engage_speeds(
        self, target: Mapping[str, float], previous: Mapping[str, float], ticker: Ticker
    ) -> dict[str, float]:
        """Engage speed plus however fast the leader itself moves each joint."""
        per_second = 1 / (degrees_to_ticks(1) * ticker.period)
        return {
            joint: self.config.engage_speed_dps
            + abs(value - previous.get(joint, value)) * per_second
            for joint, value in target.items()
        }

    def move_to(self, pose: Mapping[str, float], timeout_s: float) -> bool:
        """Ramp the follower to ``pose`` (ticks) at engage speed; True once it is there.

        The stop policy's move: a pause allows it, an emergency stop ends it (MotionRefused),
        and the telemetry limits and bus errors raise as in teleop.
        """
        speeds = dict.fromkeys(pose, self.config.engage_speed_dps)
        ticker = Ticker(self.config.rate_hz)
        deadline = self.clock() + timeout_s
        while self.clock() < deadline:
            ticker.wait()
            commanded = self.guard.command(pose, speeds, stop_move=True)
            self.health.sample()
            self.on_cycle()
            if all(abs(commanded[j] - self.guard.clamp(j, pose[j])) < 1 for j in pose):
                return True
        return False

    # -- mirroring -------------------------------------------------------------------------

    def run(self) -> None:
        """Mirror the leader until ``keep_going()`` turns False; faults raise PairFault."""
        ticker = Ticker(self.config.rate_hz)
        while self.keep_going():
            self._cycle(ticker, None)

    def _cycle(
        self, ticker: Ticker, speeds: Callable[[Mapping[str, float]], Mapping[str, float]] | None
    ) -> dict[str, float] | None:
        """One period: read the leader, command the follower through the guard, sample health."""
        ticker.wait()
        started = time.monotonic()
        target = None
        reading = self._read_leader(ticker)
        if reading is not None:
            self.leader_positions = reading[0]
            target = self.mapping.targets(self.tracker.update(*reading))
            self.guard.command(target, speeds(target) if speeds else None)
            self._log_glitches()
        self.health.sample()
        self.stats.record(started, time.monotonic() - started)
        self.on_cycle()
        return target

    def _read_leader(self, ticker: Ticker) -> tuple[dict[str, int], dict[str, ServoFault]] | None:
        """Leader positions and error bits, retried within the cycle; None when none came."""
        while True:
            faults: dict[str, ServoFault] = {}
            try:
                positions = self.leader.read_positions()
            except ServoError as exc:  # the data arrived; its error bits are judged per joint
                positions = {self.leader.joint_of(m): v for m, v in exc.values.items()}
                faults = {self.leader.joint_of(m): bits for m, bits in exc.faults.items()}
            except (BusTimeout, CorruptReply) as exc:
                self.stats.errors += 1
                if ticker.remaining() > ticker.period / 2:
                    continue
                self._leader_silence.missed_one(exc.detail)
                return None
            except PortGone as exc:
                raise PairFault(f"leader board disconnected ({exc.port})") from exc
            if len(positions) == len(self.leader.ids):
                self._leader_silence.answered()
                return positions, faults
            self._leader_silence.missed_one("incomplete reads")
            return None

    def _log_glitches(self) -> None:
        """Say why the follower held, at most once per interval, with a count."""
        count, glitch = self.tracker.glitches, self.tracker.last_glitch
        if count == self._logged_glitches or glitch is None or self.clock() < self._next_glitch_log:
            return
        log.warning(
            "ignored %d implausible leader reading(s); last: %s",
            count - self._logged_glitches,
            glitch.describe(),
        )
        self._logged_glitches = count
        self._next_glitch_log = self.clock() + _GLITCH_LOG_INTERVAL_S
