"""What the dashboard reads from the daemon: each arm's calibration file state
(``calibration.files``: ok, missing, invalid with the validator's reason) and the last
precheck's checks in ``status``."""

from __future__ import annotations

import json
from pathlib import Path

from so101d.calibration.locate import calibration_path
from so101d.calibration.model import DEFAULT_MOTOR_MAP, Role
from so101d.checking import ArmFiles, arm_file_state
from so101d.sim.calibration_files import save_matching_calibration
from tests.daemon_harness import PairSetup, StartDaemon
from tests.waiting import wait_for

FOLLOWER = ArmFiles(Role.FOLLOWER, "main_follower", DEFAULT_MOTOR_MAP)


def test_an_arm_file_is_ok_missing_or_invalid_with_the_reason(pair: PairSetup, work: Path) -> None:
    root = work / "calibration"
    path = calibration_path(root, Role.FOLLOWER, "main_follower")
    ok = arm_file_state(root, FOLLOWER)
    assert (ok["state"], ok["path"], ok["errors"]) == ("ok", str(path), [])
    assert ok["modified"].endswith("+00:00")
    data = json.loads(path.read_bytes())
    data["elbow_flex"]["range_max"] = data["elbow_flex"]["range_min"]
    path.write_text(json.dumps(data, indent=4))
    invalid = arm_file_state(root, FOLLOWER)
    assert invalid["state"] == "invalid"
    assert any("elbow_flex" in error for error in invalid["errors"]), invalid
    path.unlink()
    missing = arm_file_state(root, FOLLOWER)
    assert (missing["state"], missing["path"], missing["modified"]) == ("missing", str(path), None)


def test_the_daemon_serves_file_states_and_the_last_precheck(
    pair: PairSetup, start_daemon: StartDaemon, work: Path
) -> None:
    daemon = start_daemon(pair)
    status = daemon.wait_state("teleop")
    checks = {check["check"]: check for check in status["precheck"]["checks"]}
    assert checks["motors answer"]["follower"]["text"] == "6/6"
    assert status["precheck"]["ok"] is True
    files = daemon.call("calibration.files")
    assert {role: arm["state"] for role, arm in files["main"].items()} == {
        "leader": "ok",
        "follower": "ok",
    }
    root = work / "calibration"
    calibration_path(root, Role.FOLLOWER, "main_follower").unlink()
    wait_for(lambda: daemon.call("calibration.files")["main"]["follower"]["state"] == "missing")
    save_matching_calibration(pair.follower, root, "main_follower")
    assert daemon.call("calibration.files")["main"]["follower"]["state"] == "ok"
