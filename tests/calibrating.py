"""Helpers for calibration-session tests: a hand that poses and sweeps a virtual arm, the
session's steps over the control socket, and checks of what a session saved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from so101d.api import ApiError
from so101d.calibration.files import serialize_calibration
from so101d.calibration.locate import Layout, calibration_path
from so101d.calibration.model import JOINTS, MotorCalibration, Role
from so101d.calibration.store import backups
from so101d.feetech.registers import HALF_TURN
from so101d.sim import VirtualArm
from tests.daemon_harness import Daemon
from tests.waiting import wait_for

TRAVEL_TOLERANCE = 10  # ticks: saved range ends against the virtual joints' true end stops
HOMING_TOLERANCE = 4  # ticks: the neutral pose is held by a simulated hand
SWEEP_TIMEOUT_S = 120.0
MIDDLE = dict.fromkeys(JOINTS, 0.5)


def pose(arm: VirtualArm, fractions: Mapping[str, float]) -> None:
    """The hand holds these joints at these fractions of their travel, and lets them settle."""
    arm.set_motion(None)
    arm.hold(fractions)
    wait_for(
        lambda: all(abs(arm.joint_fractions()[j] - f) < 0.002 for j, f in fractions.items()),
        timeout=30,
    )


def sweep(arm: VirtualArm) -> None:
    """Every joint from end stop to end stop, one after the other, then let go."""
    arm.set_motion("sweep")
    wait_for(arm.sweep_done, timeout=SWEEP_TIMEOUT_S, interval=0.1)


def state(daemon: Daemon) -> dict[str, Any]:
    result: dict[str, Any] = daemon.call("calibrate.state")
    return result


def wait_step(daemon: Daemon, step: str, timeout: float = 30.0) -> dict[str, Any]:
    try:
        return wait_for(lambda: (s := state(daemon))["step"] == step and s, timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"session never reached {step}: {state(daemon)}\n--- log ---\n{daemon.log}"
        ) from None


def start_sweeping(daemon: Daemon, arm: str) -> None:
    """A session on ``arm``, its neutral pose captured where the arm is."""
    daemon.call("calibrate.start", arm=arm)
    wait_step(daemon, "homing")
    daemon.call("calibrate.capture")


def refused(daemon: Daemon, method: str, **params: Any) -> ApiError:
    try:
        daemon.call(method, **params)
    except ApiError as exc:
        return exc
    raise AssertionError(f"{method} {params} was not refused")


def box_in_the_way(arm: VirtualArm, joint: str) -> None:
    """An obstacle near the joint, on its way to the farther stop."""
    truth = next(t for t in arm.ground_truth() if t["joint"] == joint)
    (low, high), at = truth["stops"], truth["position"]
    arm.place_obstacle(joint, at - 200 if at - low > high - at else at + 200)


def straddle_the_seam(arm: VirtualArm, joint: str) -> None:
    """Set the joint's Homing_Offset (EEPROM) so its readings cross 4095 -> 0 mid-travel:
    the middle of its travel reads 4000 (reading = (actual - offset) mod 4096)."""
    motor = JOINTS.index(joint) + 1
    actual_middle = (arm.expected_calibration()[joint]["homing_offset"] + HALF_TURN) % 4096
    offset = (actual_middle - 4000 + 2048) % 4096 - 2048
    arm.servo(motor).set("Homing_Offset", max(offset, -HALF_TURN))


def assert_saved_true_travel(path: Path, arm: VirtualArm) -> dict[str, dict[str, int]]:
    """The file is LeRobot's bytes and holds the virtual joints' true travel."""
    data = path.read_bytes()
    saved = json.loads(data)
    calibration = {joint: MotorCalibration(**values) for joint, values in saved.items()}
    assert data == serialize_calibration(calibration)  # indent 4, key order, no newline
    assert list(saved) == list(JOINTS)
    expected = arm.expected_calibration()
    for joint in JOINTS:
        got, want = saved[joint], expected[joint]
        assert (got["id"], got["drive_mode"]) == (want["id"], 0), joint
        assert abs(got["homing_offset"] - want["homing_offset"]) <= HOMING_TOLERANCE, (
            joint,
            got,
            want,
        )
        for end in ("range_min", "range_max"):
            assert abs(got[end] - want[end]) <= TRAVEL_TOLERANCE, (joint, end, got, want)
    return saved


def assert_eeprom_holds(arm: VirtualArm, saved: Mapping[str, Mapping[str, int]]) -> None:
    for joint, values in saved.items():
        servo = arm.servo(values["id"])
        on_servo = (
            servo.get("Homing_Offset"),
            servo.get("Min_Position_Limit"),
            servo.get("Max_Position_Limit"),
        )
        assert on_servo == (values["homing_offset"], values["range_min"], values["range_max"]), (
            joint
        )


def assert_backup_and_sibling(root: Path, role: Role, arm_id: str) -> None:
    path = calibration_path(root, role, arm_id)
    assert backups(path), f"no backup of {path}"
    sibling = calibration_path(root, role, arm_id, Layout.SO101)
    assert sibling.read_bytes() == path.read_bytes()
    assert backups(sibling), f"no backup of {sibling}"
