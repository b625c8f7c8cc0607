"""Calibrating without the daemon: the same sessions, on ports nobody else holds.

``so101d calibrate`` uses this when no daemon answers on the control socket. The arm is
opened exclusively (a daemon or LeRobot holding it is named), torque goes off on it and on
the follower, and the session's requests are served in-process by the same handlers the
daemon's control socket serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from so101d.api import ApiError
from so101d.arm import Arm
from so101d.calibrate.desk import CalibrationDesk, auto_settings, session_settings
from so101d.calibration.model import Role
from so101d.config import Config, PairConfig
from so101d.faults import PairFault
from so101d.motion import ArmGuard, MotionGate, Release
from so101d.pair import arm_guard, open_arm, uncalibrated_arm


class PortHost:
    """One pair's arms, opened directly on their ports."""

    def __init__(self, config: PairConfig) -> None:
        self.config = config
        self.gate = MotionGate()

    def lend_arm(self, role: Role, reason: str, cancelled: Callable[[], bool]) -> ArmGuard:
        guard = arm_guard(self._opened(role), self.config, self.gate)
        releases = [guard.release()]
        if role is Role.LEADER:
            releases.append(self._release_follower())
        failed = [release.describe() for release in releases if not release.ok]
        if failed:
            guard.arm.close()
            raise PairFault("; ".join(failed))
        return guard

    def return_arm(self, guard: ArmGuard | None, *, resume: bool) -> None:
        if guard is not None:
            guard.arm.close()

    def _release_follower(self) -> Release:
        arm = self._opened(Role.FOLLOWER)
        try:
            return arm_guard(arm, self.config, self.gate).release()
        finally:
            arm.close()

    def _opened(self, role: Role) -> Arm:
        arm = uncalibrated_arm(self.config, role)
        open_arm(arm)
        return arm


class LocalSessions:
    """The control socket's calibrate.* methods, served in this process."""

    def __init__(self, config: Config) -> None:
        hosts = {name: PortHost(pair) for name, pair in config.pairs.items()}
        self.desk = CalibrationDesk(
            config.pairs, hosts, session_settings(config), auto_settings(config)
        )
        self._handlers = self.desk.handlers()

    def call(self, method: str, **params: Any) -> Any:
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError(f"unknown method {method!r}")
        return handler(params)

    def close(self) -> None:
        """The process ends: so does its session (as when the daemon stops)."""
        self.desk.abort_all("so101d calibrate ended", resume=False)
