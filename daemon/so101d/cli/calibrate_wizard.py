"""The terminal wizard of ``so101d calibrate``: a live table redrawn in place, keys per step.

It polls the session's state (10 Hz) through any client with ``call(method, **params)``
(the daemon's control socket, or the in-process sessions when no daemon runs), so a
wizard that is killed and started again re-attaches to the step the session is in.
Keys: Enter does the step's action (capture, done or, with ``--joint-by-joint``, the next
joint), ``y`` saves after the review, ``q`` or Ctrl-C aborts.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import Any, Protocol, TextIO

from so101d.api import ApiError

POLL_S = 0.1
REDRAW = "\x1b[H\x1b[J"  # cursor home, clear to the end: the table redraws in place
ENTER = ("\r", "\n")

_HELP = {
    "starting": "pausing the pair and opening the arm...",
    "homing": "Move every joint to the middle of its range, then press Enter to capture.",
    "sweeping": "Move every joint from end stop to end stop, then press Enter (done).",
    "review": "Press y to save to the file(s) and the servos, q to abort.",
    "saving": "saving...",
}


class Sessions(Protocol):
    def call(self, method: str, **params: Any) -> Any: ...


class Wizard:
    def __init__(self, sessions: Sessions, out: TextIO, *, joint_by_joint: bool = False) -> None:
        self.sessions, self.out, self.joint_by_joint = sessions, out, joint_by_joint
        self.focus = 0  # the joint being swept, joint by joint
        self.notice = ""  # the last refusal, shown under the table

    def run(self, state: dict[str, Any], keys: Iterator[str]) -> int:
        """Until the session ends: 0 when saved, 1 when aborted."""
        while state["active"]:
            self._draw(state)
            key = next(keys)
            if key:
                self._on_key(key, state)
            state = self.sessions.call("calibrate.state", session=state["session"])
        self._draw(state)
        return 0 if state["step"] == "saved" else 1

    def abort(self, session: str) -> None:
        with contextlib.suppress(ApiError):
            ended = self.sessions.call("calibrate.abort", session=session)
            self.out.write(f"\r\naborted: {ended['reason']}\r\n")

    def _on_key(self, key: str, state: dict[str, Any]) -> None:
        step, session = state["step"], state["session"]
        action = None
        if key == "q":
            action = "calibrate.abort"
        elif step == "homing" and key in ENTER:
            action = "calibrate.capture"
        elif step == "sweeping" and key in ENTER:
            action = self._next_joint(state)
        elif step == "review" and key == "y":
            action = "calibrate.save"
        if action is None:
            return
        try:
            self.sessions.call(action, session=session)
            self.notice = ""
        except ApiError as exc:
            self.notice = str(exc)

    def _next_joint(self, state: dict[str, Any]) -> str | None:
        if not self.joint_by_joint or self.focus >= len(state["joints"]) - 1:
            return "calibrate.done"
        self.focus += 1
        return None

    # -- drawing ---------------------------------------------------------------------------

    def _draw(self, state: dict[str, Any]) -> None:
        lines = [
            f"so101d calibrate: session {state['session']}, pair {state['pair']}, "
            f"{state['arm']} '{state['arm_id']}'",
            f"step: {state['step']} - {state['reason']}",
            "",
        ]
        if state["step"] in ("review", "saving", "saved") and state["review"]:
            lines += _review_lines(state["review"])
        else:
            lines += self._table(state)
        lines += ["", _HELP.get(state["step"], "")]
        if self.notice:
            lines.append(f"! {self.notice}")
        self.out.write(REDRAW + "\r\n".join(lines) + "\r\n")
        self.out.flush()

    def _table(self, state: dict[str, Any]) -> list[str]:
        joints = state["joints"]
        if state["step"] == "homing" or not any("min" in j for j in joints.values()):
            return ["joint            raw"] + [f"{n:<14} {j['raw']:>5}" for n, j in joints.items()]
        rows = ["joint            min    POS    max  range  sigma"]
        for index, (name, j) in enumerate(joints.items()):
            marker = ">" if self.joint_by_joint and index == self.focus else " "
            sigma = "" if j["sigma"] is None else f"{j['sigma']:+.1f}"
            rows.append(
                f"{marker}{name:<14}{j['min']:>5}  {j['position']:>5}  {j['max']:>5}  "
                f"{j['range']:>5}  {sigma:>5}  {_flags(name, j, state)}"
            )
        return rows


def _flags(name: str, joint: dict[str, Any], state: dict[str, Any]) -> str:
    if name == "wrist_roll" and state["full_turn_wrist_roll"]:
        return "full turn (0..4095)"
    flags = []
    if joint["too_wide"]:
        flags.append("WIDER THAN THIS JOINT CAN TURN")
    if joint["crosses_seam"]:
        flags.append("crosses the encoder seam: re-centred at done")
    if joint["barely_swept"]:
        flags.append("not swept yet")
    return "; ".join(flags)


def _review_lines(review: dict[str, Any]) -> list[str]:
    lines = [f"file: {review['path']}", "joint           homing_offset    range_min    range_max"]
    for name, entry in review["joints"].items():
        old, new = entry["old"] or {}, entry["new"]
        cells = [
            f"{old.get(key, '-'):>5} -> {new[key]:<5}"
            for key in ("homing_offset", "range_min", "range_max")
        ]
        lines.append(f"{name:<14} " + "  ".join(cells))
    lines += [f"error: {message}" for message in review["errors"]]
    lines += [f"warning: {message}" for message in review["warnings"]]
    if not review["errors"] and not review["warnings"]:
        lines.append("validator: ok")
    return lines


@contextlib.contextmanager
def terminal_keys(stdin: TextIO) -> Iterator[Iterator[str]]:
    """Single keys from the terminal without Enter or echo (Ctrl-C still interrupts); each
    next() waits up to POLL_S and gives "" when no key came."""
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def keys() -> Iterator[str]:
        while True:
            ready, _, _ = select.select([fd], [], [], POLL_S)
            yield os.read(fd, 1).decode(errors="replace") if ready else ""

    try:
        yield keys()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f} s"
