"""Calibration sessions as control-socket methods: one session at a time across the daemon.

Methods (params in parentheses; every reply is the session's full state, see
:meth:`so101d.calibrate.session.CalibrationSession.state`):

* ``calibrate.start`` (``pair``, default the only pair; ``arm``: ``leader`` | ``follower``;
  ``auto``: true for the automatic calibration): pauses the pair and starts a session in
  step ``starting``. 409 while any session is active, naming it. An automatic session
  stops in ``confirming`` with ``auto.plan`` (what moves, how hard, ``estimated_s``, a
  ``message`` to show) until ``calibrate.confirm``; while ``calibrating``, ``auto.progress``
  is ``{"status", "current_motor", "progress", "temperatures", "time_elapsed",
  "estimated_remaining"}``; then the review as below, or ``sweeping`` with ``auto.failed``
  (the joints to sweep by hand, the others kept).
* ``calibrate.confirm``: let the automatic calibration move the arm (``confirming`` ->
  ``calibrating``).
* ``calibrate.telemetry``: every sample of the automatic calibration (``samples``: time,
  joint, position, goal, current_ma, load, temperature_c).
* ``calibrate.state`` (``session``, optional): the live state of the active session, else
  of the last one (``{"session": null}`` before the first). This is the live stream of
  joint readings: ``seq`` grows with every reading (50 Hz) and step, and clients poll at
  10-20 Hz. The socket is request/response and served by one thread, so a blocking stream
  would hold the e-stop back; a poll costs one short request. Polling is also how a client
  stays attached: a session no client asks about for ``idle_timeout_s`` ends.
* ``calibrate.capture``: record the neutral pose (``homing`` -> ``sweeping``).
* ``calibrate.done``: end the sweep (-> ``review``); 422 listing the joints not swept
  (``error.unswept``).
* ``calibrate.save``: save the files and the EEPROM, then the pair reconnects; 422 when the
  validator finds errors in the new calibration.
* ``calibrate.abort``: end the session and reply once it has returned the arm; idempotent
  (aborting an ended session returns its state).

A request for a step the session is not in is a 409. Errors carry ``code`` 409 or 422 (see
:mod:`so101d.api`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from so101d.api import CONFLICT, UNPROCESSABLE, ApiError, Handler
from so101d.calibrate.auto import AutoSettings
from so101d.calibrate.session import (
    ArmHost,
    CalibrationSession,
    NotSwept,
    NotUsable,
    SessionSettings,
    StepRefused,
    Target,
)
from so101d.calibration.model import Role
from so101d.config import Config, PairConfig


class CalibrationDesk:
    """The sessions of one daemon (or of one ``so101d calibrate`` run without a daemon)."""

    def __init__(
        self,
        pairs: Mapping[str, PairConfig],
        hosts: Mapping[str, ArmHost],
        settings: SessionSettings,
        auto: AutoSettings | None = None,
    ) -> None:
        self.pairs, self.hosts, self.settings = pairs, hosts, settings
        self.auto = auto or AutoSettings()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self.session: CalibrationSession | None = None  # the active one, else the last

    def handlers(self) -> dict[str, Handler]:
        def step(action: Callable[[CalibrationSession], None]) -> Handler:
            return lambda params: self._on_session(params, action)

        return {
            "calibrate.start": self.start,
            "calibrate.state": step(lambda session: None),
            "calibrate.confirm": step(CalibrationSession.confirm),
            "calibrate.telemetry": self.telemetry,
            "calibrate.capture": step(CalibrationSession.capture),
            "calibrate.done": step(CalibrationSession.done),
            "calibrate.save": step(CalibrationSession.save),
            "calibrate.abort": self.abort,
        }

    # -- for the daemon --------------------------------------------------------------------

    def holder(self, pair: str) -> CalibrationSession | None:
        session = self.session
        if session is None or not session.active or session.target.pair != pair:
            return None
        return session

    def refuse_if_held(self, pairs: Iterable[str], what: str) -> None:
        """409 when a session holds one of ``pairs`` (pause, resume, mode changes)."""
        for pair in pairs:
            session = self.holder(pair)
            if session is not None:
                raise ApiError(
                    f"cannot {what} pair {pair}: {session.label} holds it; finish or abort it "
                    "first (`so101d calibrate` re-attaches)",
                    code=CONFLICT,
                )

    def abort_all(self, reason: str, *, resume: bool) -> None:
        """End the active session and wait until it has returned its arm."""
        session = self.session
        if session is not None and session.active:
            session.abort(reason, resume=resume)
            session.wait()

    def summary(self) -> dict[str, Any] | None:
        session = self.session
        if session is None:
            return None
        return {
            "session": session.ident,
            "pair": session.target.pair,
            "arm": str(session.target.role),
            "step": str(session.step),
            "reason": session.reason,
        }

    # -- handlers ----------------------------------------------------------------------------

    def start(self, params: dict[str, Any]) -> dict[str, Any]:
        pair = self._pair(params)
        role = _role(params.get("arm"))
        with self._lock:
            current = self.session
            if current is not None and current.active:
                raise ApiError(
                    f"{current.label} is active; one session at a time: finish or abort it "
                    "first (`so101d calibrate` re-attaches)",
                    code=CONFLICT,
                )
            arm = self.pairs[pair].leader if role is Role.LEADER else self.pairs[pair].follower
            session = CalibrationSession(
                str(next(self._numbers)),
                Target(pair, role, arm.id),
                self.hosts[pair],
                self.settings,
                auto=self.auto if params.get("auto") is True else None,
            )
            self.session = session
        session.start()
        return session.state()

    def abort(self, params: dict[str, Any]) -> dict[str, Any]:
        session = self._chosen(params)
        session.abort()
        session.wait()  # one sampling period and a torque off: the reply is the end state
        return session.state()

    def telemetry(self, params: dict[str, Any]) -> dict[str, Any]:
        session = self._chosen(params)
        return {"session": session.ident, "samples": session.telemetry()}

    def _on_session(
        self, params: dict[str, Any], action: Callable[[CalibrationSession], None]
    ) -> dict[str, Any]:
        session = self.session
        if session is None and "session" not in params:
            return {"session": None}
        session = self._chosen(params)
        if session.active:
            session.touch()
        try:
            action(session)
        except NotSwept as exc:
            raise ApiError(str(exc), code=UNPROCESSABLE, unswept=exc.joints) from exc
        except NotUsable as exc:
            raise ApiError(str(exc), code=UNPROCESSABLE) from exc
        except StepRefused as exc:
            raise ApiError(str(exc), code=CONFLICT) from exc
        return session.state()

    def _chosen(self, params: dict[str, Any]) -> CalibrationSession:
        session = self.session
        wanted = params.get("session")
        if session is None or (wanted is not None and str(wanted) != session.ident):
            named = f" {wanted!r}" if wanted else ""
            raise ApiError(f"no calibration session{named}")
        return session

    def _pair(self, params: dict[str, Any]) -> str:
        pair = params.get("pair")
        if pair is None and len(self.pairs) == 1:
            return next(iter(self.pairs))
        if pair not in self.pairs:
            raise ApiError(f"no pair named {pair!r}; pairs: {', '.join(self.pairs)}")
        return str(pair)


def auto_settings(config: Config) -> AutoSettings:
    """The [autocal] keys of the config over the defaults; wrist_roll as the sessions do."""
    changes: dict[str, Any] = dict(config.autocal)
    changes["full_turn_wrist_roll"] = config.calibration_wrist_roll == "full_turn"
    return replace(AutoSettings(), **changes)


def session_settings(config: Config) -> SessionSettings:
    return SessionSettings(
        config.calibration_dir,
        idle_timeout_s=config.calibration_idle_timeout_s,
        full_turn_wrist_roll=config.calibration_wrist_roll == "full_turn",
    )


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise ApiError(f"arm must be 'leader' or 'follower', not {value!r}") from None
