"""The shoulder carries the arm: swept with the elbow folded, reported as too heavy, or found
with the little torque its servo is capped at.

On the simulator's 5 V leaders (servos rated 7.4 V) the shoulder cannot lift the arm with the
forearm stretched out within the current limit; folded, it needs a few per cent. These arms
(``arm_seed`` 1, 6 and 9) are the ones whose shoulders were not found before the elbow was
folded. The run is on a virtual clock (``tests.autocal_runs``); the simulator's ground truth is
read after every sample.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from so101d.calibrate.auto import AutoCalibration
from tests.autocal_runs import AutoRun, virtual_clock_arm

HEAVY_LEADERS = (1, 6, 9)
NEAR_A_STOP = 0.1  # of the joint's travel
FOLDED = 0.9  # the elbow's fraction of its travel towards its folded stop, at least


def fractions_while_sweeping(run: AutoRun) -> list[tuple[str | None, float, float]]:
    """The whole run; after every sample: the joint being calibrated, and how far along
    their travel the shoulder and the elbow truly are."""
    seen: list[tuple[str | None, float, float]] = []

    def sleep_and_look(seconds: float) -> None:
        run.clock.sleep(seconds)
        truth = {str(t["joint"]): float(t["fraction"]) for t in run.arm.ground_truth()}  # type: ignore[arg-type]
        current = run.engine.progress()["current_motor"]
        seen.append((current, truth["shoulder_lift"], truth["elbow_flex"]))

    run.engine.sleep = sleep_and_look
    run.engine.run()
    return seen


@pytest.mark.parametrize("arm_seed", HEAVY_LEADERS)
def test_the_shoulder_is_swept_with_the_elbow_folded_then_the_elbow_returns_to_its_middle(
    tmp_path: Path, arm_seed: int
) -> None:
    with virtual_clock_arm(tmp_path, "leader", arm_seed) as run:
        seen = fractions_while_sweeping(run)
        outcomes = run.engine.outcomes
        run.guard.release()
    assert outcomes["shoulder_lift"].ok and outcomes["elbow_flex"].ok, outcomes
    lifting = [(lift, elbow) for joint, lift, elbow in seen if joint == "shoulder_lift"]
    assert min(lift for lift, _ in lifting) < 0.01 and max(lift for lift, _ in lifting) > 0.99
    near_a_stop = [elbow for lift, elbow in lifting if not NEAR_A_STOP < lift < 1 - NEAR_A_STOP]
    assert near_a_stop and min(near_a_stop) > FOLDED, near_a_stop
    # Back where it held at its middle before the fold (its weight holds it a little short of
    # the goal at 5 V), before the wrist moves.
    _, _, elbow_before = next(s for s in seen if s[0] == "shoulder_lift")
    _, _, elbow_after = next(s for s in seen if s[0] == "wrist_flex")
    assert abs(elbow_before - 0.5) < 0.03 and abs(elbow_after - elbow_before) < 0.005


@pytest.mark.parametrize("arm_seed", HEAVY_LEADERS[:2])
def test_a_shoulder_too_heavy_with_the_elbow_stretched_out_is_reported_not_saved(
    tmp_path: Path, arm_seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The elbow left where it rests (as when it could not be found): the stronger pushes
    stop short of the current limit, and the shoulder is reported, not saved as a stop."""
    monkeypatch.setattr(AutoCalibration, "_fold_elbow", lambda self: None)
    with virtual_clock_arm(tmp_path, "leader", arm_seed) as run:
        outcomes = run.engine.run()
        run.guard.release()
        currents = [sample["current_ma"] for sample in run.telemetry]
    lift = outcomes["shoulder_lift"]
    assert lift.low is None and lift.high is None, lift
    assert lift.failure is not None and ("gravity" in lift.failure or "heavy" in lift.failure)
    assert [j for j, o in outcomes.items() if not o.ok] == ["shoulder_lift"]
    assert max(currents) < run.engine.settings.max_current_ma


@pytest.mark.parametrize("cap", [40, 120])
def test_a_shoulder_capped_by_its_max_torque_limit_finds_its_true_stops(
    tmp_path: Path, cap: int
) -> None:
    """Max_Torque_Limit (EEPROM) below the asked 30 %: the stall is judged against the torque
    the servo can give, and no stronger push is tried."""
    with virtual_clock_arm(tmp_path, "follower", 0) as run:
        run.arm.servo(2).set("Max_Torque_Limit", cap)
        lift = run.engine.run()["shoulder_lift"]
        run.guard.release()
        low, high = next(t for t in run.arm.ground_truth() if t["joint"] == "shoulder_lift")[
            "encoder_stops"
        ]  # type: ignore[misc]
        loads = [abs(s["load"]) for s in run.telemetry if s["joint"] == "shoulder_lift"]
    assert lift.low is not None and lift.high is not None, lift
    for found, true in ((lift.low, low), (lift.high, high)):
        assert abs((found - true + 2048) % 4096 - 2048) <= 50, (lift, low, high)
    assert max(loads) <= cap
