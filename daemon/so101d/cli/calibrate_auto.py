"""``so101d calibrate --auto``: the plan and a confirmation, a progress bar, then the review.

Nothing moves before the person has read what will move and for how long and said yes (or
passed ``--yes``). Without a terminal it moves only with ``--yes``, prints the progress as
lines, and saves a review the validator finds no error in; a joint left to sweep by hand
then ends the run (there is nobody to sweep it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from so101d.api import ApiError
from so101d.cli.calibrate_wizard import POLL_S, Sessions, Wizard, terminal_keys

NO_TERMINAL_NO_YES = (
    "so101d calibrate --auto: refusing to move the arm: there is no terminal to confirm on. "
    "Clear the space around the arm, then run it again with --yes."
)
BAR_WIDTH = 24


def run_auto(
    sessions: Sessions, state: dict[str, Any], *, yes: bool, terminal: bool, out: TextIO
) -> int:
    """From ``confirming`` to the end of the session: 0 when saved."""
    session = state["session"]
    state = _wait_while(sessions, state, ("starting",))
    if state["step"] == "confirming":
        plan = state["auto"]["plan"]
        out.write(f"{plan['message']}\n")
        out.flush()
        if not yes and not _confirmed(out):
            sessions.call("calibrate.abort", session=session)
            out.write("aborted: nothing moved\n")
            return 1
        sessions.call("calibrate.confirm", session=session)
        state = _follow_progress(sessions, session, out, terminal=terminal)
    if not state["active"]:
        out.write(f"\n{state['step']}: {state['reason']}\n")
        return 1
    if terminal:
        with terminal_keys(sys.stdin) as keys:
            return Wizard(sessions, out).run(state, keys)
    return _save_unattended(sessions, state, out)


def save_telemetry(sessions: Sessions, session: str, path: Path) -> int:
    samples = sessions.call("calibrate.telemetry", session=session)["samples"]
    path.write_text(json.dumps(samples, indent=1), encoding="utf-8")
    return len(samples)


def progress_line(progress: dict[str, Any]) -> str:
    """``[#####.......] 3/6 motors  shoulder_lift  23.5 s, ~35.2 s left  max 31 °C``."""
    done, total = (int(n) for n in progress["progress"].split()[0].split("/"))
    filled = round(BAR_WIDTH * done / max(total, 1))
    hottest = max(progress["temperatures"].values(), default=0)
    status = "" if progress["status"] == "calibrating" else f"  {progress['status'].upper()}"
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress['progress']}  "
        f"{progress['current_motor'] or '':<13}  {progress['time_elapsed']:.1f} s, "
        f"~{progress['estimated_remaining']:.1f} s left  max {hottest} °C{status}"
    )


def _confirmed(out: TextIO) -> bool:
    out.write("Move the arm now? [y/N] ")
    out.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _wait_while(sessions: Sessions, state: dict[str, Any], steps: tuple[str, ...]) -> Any:
    while state["active"] and state["step"] in steps:
        time.sleep(POLL_S)
        state = sessions.call("calibrate.state", session=state["session"])
    return state


def _follow_progress(
    sessions: Sessions, session: str, out: TextIO, *, terminal: bool
) -> dict[str, Any]:
    shown = ""
    while True:
        state: dict[str, Any] = sessions.call("calibrate.state", session=session)
        progress = state["auto"]["progress"]
        line = progress_line(progress) if progress else "starting..."
        if not state["active"] or state["step"] not in ("confirming", "calibrating"):
            out.write(f"\r\x1b[K{line}\n" if terminal else f"{line}\n")
            return state
        if terminal:
            out.write(f"\r\x1b[K{line}")
        elif line != shown:
            out.write(f"{line}\n")
        shown = line
        out.flush()
        time.sleep(POLL_S if terminal else 1.0)


def _save_unattended(sessions: Sessions, state: dict[str, Any], out: TextIO) -> int:
    session = state["session"]
    if state["step"] != "review":
        out.write(f"{state['reason']}\nno terminal to sweep by hand: aborting\n")
        sessions.call("calibrate.abort", session=session)
        return 1
    errors = state["review"]["errors"]
    for message in state["review"]["warnings"]:
        out.write(f"warning: {message}\n")
    if errors:
        out.write("".join(f"error: {message}\n" for message in errors))
        sessions.call("calibrate.abort", session=session)
        return 1
    try:
        sessions.call("calibrate.save", session=session)
    except ApiError as exc:
        out.write(f"not saved: {exc}\n")
        return 1
    state = _wait_while(sessions, sessions.call("calibrate.state", session=session), ("saving",))
    out.write(f"{state['step']}: {state['reason']}\n")
    return 0 if state["step"] == "saved" else 1
