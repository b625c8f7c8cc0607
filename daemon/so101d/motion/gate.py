"""The pair's motion gate: pause and emergency stop, checked before every motion write.

Set from any thread (the control socket, a calibration session), read by the arm guards of
that pair. An emergency stop latches until :meth:`MotionGate.resume`; a pause is the same
gate without the emergency meaning.
"""

from __future__ import annotations

import threading

from so101d.faults import Latch, PairFault


class MotionRefused(PairFault):
    """A write that could move a servo was refused: the pair is paused or e-stopped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, Latch.OPERATOR)


class MotionGate:
    """Open, paused or emergency-stopped; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._emergency = False

    def pause(self, reason: str) -> None:
        with self._lock:
            if not self._emergency:  # a pause never weakens an emergency stop
                self._reason = reason

    def emergency_stop(self, reason: str) -> None:
        with self._lock:
            self._reason, self._emergency = reason, True

    def resume(self) -> None:
        with self._lock:
            self._reason, self._emergency = None, False

    @property
    def closed_reason(self) -> str | None:
        """Why motion is refused now, or None when the gate is open."""
        return self._reason

    @property
    def emergency(self) -> bool:
        return self._emergency

    def check(self, what: str, *, stop_move: bool = False) -> None:
        """Raise :class:`MotionRefused` when the gate is closed.

        ``stop_move``: the stop policy's own move to the rest pose, which a pause starts and
        only an emergency stop refuses.
        """
        with self._lock:
            reason, emergency = self._reason, self._emergency
        if reason is not None and (emergency or not stop_move):
            raise MotionRefused(f"{what} refused: {reason}")
