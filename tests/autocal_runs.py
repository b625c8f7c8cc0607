"""The automatic calibration on a virtual arm whose physics runs on a virtual clock.

The arm is a real simulator behind a real pty, spoken to by our real driver (the wire codec
and the bus as in the daemon); only time is virtual: the simulated arm and the calibration
share one clock, which advances when the calibration sleeps. A run of a minute of simulated
time then costs what its wire transactions cost, not a minute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from so101d.arm import Arm
from so101d.calibrate.auto import AutoCalibration, AutoSettings, JointOutcome, as_sweep
from so101d.calibrate.sweep import joint_calibration
from so101d.calibration.files import serialize_calibration
from so101d.calibration.model import DEFAULT_MOTOR_MAP, ArmCalibration, Role
from so101d.motion import ArmGuard, MotionGate, MotionLimits, setting_changes
from so101d.sim import VirtualArm
from tests.arms import bus_on

LIMITS = MotionLimits(margin_deg=2.0, max_speed_dps=180.0, max_dt_s=2 / 60)


class VirtualClock:
    """Monotonic seconds that pass only when someone sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


@dataclass
class AutoRun:
    arm: VirtualArm
    guard: ArmGuard
    clock: VirtualClock
    engine: AutoCalibration
    telemetry: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def virtual_clock_arm(
    directory: Path, role: str, arm_seed: int, settings: AutoSettings | None = None
) -> Iterator[AutoRun]:
    """An arm (``--arm-seed``) on a pty, our driver on it, a guard and an engine."""
    clock = VirtualClock()
    link = directory / f"{role}-{arm_seed}"
    with (
        VirtualArm(role, link, arm_seed=arm_seed, clock=clock) as sim,
        bus_on(sim.link) as bus,
    ):
        arm = Arm(Role(role), sim.link, DEFAULT_MOTOR_MAP, {}, bus=bus)
        guard = ArmGuard(arm, MotionGate(), LIMITS, clock=clock)
        guard.release()
        guard.apply_settings(setting_changes(arm))  # as the daemon's precheck leaves it
        telemetry: list[dict[str, Any]] = []
        engine = AutoCalibration(
            guard,
            settings or AutoSettings(),
            clock=clock,
            sleep=clock.sleep,
            telemetry=telemetry,
        )
        yield AutoRun(sim, guard, clock, engine, telemetry)


def saved_calibration(outcomes: dict[str, JointOutcome], full_turn: bool = True) -> ArmCalibration:
    """What the session saves from the engine's outcomes (every joint must be ok)."""
    return {
        joint: joint_calibration(
            joint, DEFAULT_MOTOR_MAP[joint], as_sweep(outcome), full_turn=full_turn
        )
        for joint, outcome in outcomes.items()
    }


@dataclass
class ArmResult:
    """One arm's automatic calibration, measured against the simulator's ground truth."""

    role: str
    arm_seed: int
    outcomes: dict[str, JointOutcome]
    sim_seconds: float
    peak_rise_c: int
    errors: dict[str, int] = field(default_factory=dict)  # ticks: found and saved stops
    path: Path | None = None  # the saved file, when every joint was found

    @property
    def failed(self) -> dict[str, str]:
        return {j: o.failure for j, o in self.outcomes.items() if o.failure is not None}


def calibrate_virtual_arm(directory: Path, role: str, arm_seed: int) -> ArmResult:
    """The whole run on a virtual clock; when every joint was found, the file saved (and the
    servos' EEPROM written) and each stop compared with the arm's true one."""
    with virtual_clock_arm(directory, role, arm_seed) as run:
        began = run.clock()
        outcomes = run.engine.run()
        run.guard.release()
        result = ArmResult(role, arm_seed, outcomes, run.clock() - began, run.engine.peak_rise_c)
        for truth in run.arm.ground_truth():
            outcome = outcomes[str(truth["joint"])]
            if outcome.low is not None and outcome.high is not None:
                low, high = truth["encoder_stops"]  # type: ignore[misc]
                result.errors[outcome.joint] = max(
                    _on_the_turn(outcome.low - low), _on_the_turn(outcome.high - high)
                )
        if result.failed:
            return result
        calibration = saved_calibration(outcomes)
        run.guard.write_calibration(calibration)
        for truth in run.arm.ground_truth():
            joint = str(truth["joint"])
            if outcomes[joint].full_turn:
                continue
            low, high = truth["stops"]  # type: ignore[misc]
            saved = calibration[joint]
            error = max(abs(saved.range_min - low), abs(saved.range_max - high))
            result.errors[joint] = max(result.errors[joint], error)
        result.path = directory / f"{role}-{arm_seed}.json"
        result.path.write_bytes(serialize_calibration(calibration))
        return result


def _on_the_turn(difference: int) -> int:
    """The distance of two encoder readings, across the seam where that is shorter."""
    return abs((difference + 2048) % 4096 - 2048)
