"""Watching and spoiling what crosses a virtual arm's wire, from the test process.

``RegisterTap`` records every write of one register that reaches the arm, in order, so a
test can bound each goal step the daemon commands (not a sample of them) or see every torque
switch. ``junk_positions`` answers the
arm's position reads with random values in valid packets (right checksum, right length):
what a servo with a failing encoder or a noisy bus that happens to checksum would send.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from so101d.feetech import register
from so101d.feetech.protocol import Instruction, Packet
from so101d.feetech.registers import Register
from so101d.sim import VirtualArm
from so101d.sim.wire import Reply

_POSITION = register("Present_Position")


@dataclass(frozen=True)
class Write:
    at: float  # arrival time (monotonic)
    values: dict[int, int]  # motor -> value written
    present: dict[int, int]  # motor -> Present_Position when the write arrived


class RegisterTap:
    """Every write of register ``name`` the arm receives, in order."""

    def __init__(self, arm: VirtualArm, name: str = "Goal_Position") -> None:
        self.arm = arm
        self.register = register(name)
        self._writes: list[Write] = []
        self._lock = threading.Lock()
        self.remove = arm.tap(self._record)

    def _record(self, request: Packet, replies: list[Reply]) -> list[Reply]:
        values = _writes_in(request, self.register)
        if values:
            present = {m: self.arm.servo(m).get("Present_Position") for m in self.arm.motor_ids}
            with self._lock:
                self._writes.append(Write(time.monotonic(), values, present))
        return replies

    def writes(self) -> list[Write]:
        with self._lock:
            return list(self._writes)

    def largest_step(self) -> int:
        """The largest change of any motor's value between two consecutive writes."""
        writes = [write.values for write in self.writes()]
        steps = [
            abs(new[m] - old[m]) for old, new in itertools.pairwise(writes) for m in new if m in old
        ]
        return max(steps, default=0)


def _writes_in(request: Packet, reg: Register) -> dict[int, int]:
    params, address = request.params, bytes((reg.address,))
    if request.code == Instruction.SYNC_WRITE and params[:1] == address:
        size, body = params[1], params[2:]
        step = size + 1
        return {body[i]: reg.decode(body[i + 1 : i + step]) for i in range(0, len(body), step)}
    if request.code == Instruction.WRITE and params[:1] == address:
        return {request.ident: reg.decode(params[1 : 1 + reg.size])}
    return {}


@contextmanager
def junk_positions(arm: VirtualArm, seed: int = 7) -> Iterator[None]:
    """While active, every position reply carries a random 0..4095 value, validly framed."""
    rng = random.Random(seed)
    position_read = bytes((_POSITION.address,))

    def spoil(request: Packet, replies: list[Reply]) -> list[Reply]:
        if request.code != Instruction.SYNC_READ or request.params[:1] != position_read:
            return replies
        return [_junk(reply, rng) for reply in replies]

    remove = arm.tap(spoil)
    try:
        yield
    finally:
        remove()


def _junk(reply: Reply, rng: random.Random) -> Reply:
    ident, code = reply.data[2], reply.data[4]
    packet = Packet(ident, code, _POSITION.encode(rng.randrange(4096)))
    return Reply(packet.encode(), reply.delay)
