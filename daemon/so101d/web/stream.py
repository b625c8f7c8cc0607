"""One poller of the daemon for every browser: the live stream's snapshots.

While at least one client listens, a single task asks the daemon for its status (5 Hz;
joint angles in LeRobot degrees for the plot: both arms read 0 mid-range), the calibration
session's state while one is active, and the calibration files' state (every 5 s, and when
the session's step changes), each call in a worker thread with the client's timeout, and
hands the newest snapshot to every listener. A listener that reads slowly only skips
snapshots: its queue holds the newest one. With no listener nothing is polled, so an idle
dashboard costs the daemon nothing and a session nobody watches still reaches its idle
timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from so101d.api import ApiClient, ApiError

log = logging.getLogger("so101d.web")

STATUS_PERIOD_S = 0.2  # 5 Hz: each status call holds the daemon's GIL for ~0.7 ms
FILES_PERIOD_S = 5.0  # validating two files is ~1 ms of the daemon's time


class Poller:
    def __init__(
        self,
        client: ApiClient,
        *,
        period_s: float = STATUS_PERIOD_S,
        files_period_s: float = FILES_PERIOD_S,
    ) -> None:
        self.client = client
        self.period_s, self.files_period_s = period_s, files_period_s
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._files: Any = None
        self._files_at = 0.0
        self._step: str | None = None
        self._last_session: dict[str, Any] | None = None
        self.latest: dict[str, Any] | None = None

    async def call(self, method: str, **params: Any) -> Any:
        """One socket call in a worker thread: the event loop never waits on the daemon."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.client.call(method, **params))

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """A queue of the newest snapshot; None in it means the server is stopping."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1)
        if self.latest is not None:
            queue.put_nowait(self.latest)
        self._listeners.add(queue)
        if self._task is None or self._task.done():
            self._files_at = 0.0  # a first listener gets fresh file states at once
            self._task = asyncio.create_task(self._run(), name="so101d-web-poller")
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
            if not self._listeners and self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None

    def close(self) -> None:
        """End every listener's stream (the server is stopping)."""
        for queue in self._listeners:
            _put_newest(queue, None)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            snapshot = await self.snapshot()
            self.latest = snapshot
            for queue in self._listeners:
                _put_newest(queue, snapshot)
            await asyncio.sleep(max(0.0, self.period_s - (time.monotonic() - started)))

    async def _session(self, summary: dict[str, Any] | None) -> dict[str, Any] | None:
        """The session's state; an ended session's is final, so it is asked for only once."""
        if summary is None:
            return None
        known = self._last_session
        ident = (summary["session"], summary["step"])
        if known is None or known["active"] or (known["session"], known["step"]) != ident:
            known = await self.call("calibrate.state", session=summary["session"])
            self._last_session = known
        return known

    async def snapshot(self) -> dict[str, Any]:
        """The daemon's status, session state and file states, or the reason there are none."""
        try:
            status = await self.call("status", frame="lerobot")
            session = await self._session(status.get("calibration"))
            step = None if session is None else str(session["step"])
            if step != self._step or time.monotonic() - self._files_at >= self.files_period_s:
                self._step = step  # a save or abort may have changed a file
                self._files = await self.call("calibration.files")
                self._files_at = time.monotonic()
        except ApiError as exc:
            return {"daemon": None, "error": str(exc), "at": time.time()}
        return {"daemon": status, "session": session, "files": self._files, "at": time.time()}


def _put_newest(queue: asyncio.Queue[dict[str, Any] | None], item: dict[str, Any] | None) -> None:
    with contextlib.suppress(asyncio.QueueEmpty):
        if queue.full():
            queue.get_nowait()
    queue.put_nowait(item)
