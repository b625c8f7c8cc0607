"""The wizard's keys, step by step, against a scripted session (the socket's replies)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from so101d.api import UNPROCESSABLE, ApiError
from so101d.calibration.model import JOINTS
from so101d.cli.calibrate_wizard import Wizard

SWEPT = {
    "raw": 2047,
    "min": 900,
    "position": 2047,
    "max": 3200,
    "range": 2300,
    "sigma": None,
    "crosses_seam": False,
    "too_wide": False,
    "barely_swept": False,
}


class ScriptedSession:
    """Answers like the daemon: each action moves the step on, or is refused once."""

    def __init__(self, refuse_done_once: bool = False) -> None:
        self.step = "homing"
        self.calls: list[str] = []
        self.refuse_done = refuse_done_once

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls.append(method)
        if method == "calibrate.done" and self.refuse_done:
            self.refuse_done = False
            raise ApiError("not swept yet: gripper", code=UNPROCESSABLE, unswept=["gripper"])
        self.step = {
            "calibrate.capture": "sweeping",
            "calibrate.done": "review",
            "calibrate.save": "saved",
            "calibrate.abort": "aborted",
        }.get(method, self.step)
        return self.state()

    def state(self) -> dict[str, Any]:
        review = {"path": "f.json", "joints": {}, "errors": [], "warnings": []}
        return {
            "session": "1",
            "pair": "main",
            "arm": "leader",
            "arm_id": "main_leader",
            "step": self.step,
            "reason": "",
            "active": self.step not in ("saved", "aborted"),
            "full_turn_wrist_roll": True,
            "joints": dict.fromkeys(JOINTS, SWEPT),
            "review": review if self.step in ("review", "saved") else None,
        }


def keys(*pressed: str) -> Iterator[str]:
    yield from pressed
    while True:
        yield ""


def actions(session: ScriptedSession) -> list[str]:
    return [call for call in session.calls if call != "calibrate.state"]


def test_joint_by_joint_enter_moves_to_the_next_joint_then_ends_the_sweep() -> None:
    session = ScriptedSession()
    out = io.StringIO()
    wizard = Wizard(session, out, joint_by_joint=True)
    code = wizard.run(session.state(), keys("\r", *["\r"] * len(JOINTS), "y"))
    assert code == 0
    assert actions(session) == ["calibrate.capture", "calibrate.done", "calibrate.save"]
    assert ">gripper" in out.getvalue()  # the last joint was the one shown as current


def test_a_refused_done_is_shown_and_the_sweep_goes_on() -> None:
    session = ScriptedSession(refuse_done_once=True)
    out = io.StringIO()
    code = Wizard(session, out).run(session.state(), keys("\r", "\r", "\r", "q"))
    assert code == 1
    assert "! not swept yet: gripper" in out.getvalue()
    assert actions(session) == [
        "calibrate.capture",
        "calibrate.done",
        "calibrate.done",
        "calibrate.abort",
    ]
