"""One SO-101 arm on its bus: motor map, calibration, positions, torque and telemetry.

Positions are raw encoder ticks in the servos' homed frame (the servo applies the homing
offset itself); the calibration gives each joint's range in that frame.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from so101d.calibration.model import ArmCalibration, Role
from so101d.feetech import BusError, FeetechBus, PortGone, ServoError, ServoFault, register

log = logging.getLogger(__name__)

# Present_Load .. Status: load (2), voltage (1), temperature (1), one reserved byte, status (1)
_TELEMETRY_START = register("Present_Load").address
_TELEMETRY_SIZE = register("Status").end - _TELEMETRY_START
_LOAD_FULL_SCALE = 1000  # Present_Load is in 0.1 % of the maximum torque


@dataclass(frozen=True)
class Telemetry:
    """One motor's health, read in a single transaction."""

    joint: str
    load_percent: float
    voltage_v: float
    temperature_c: int
    faults: ServoFault


class Arm:
    """An arm's bus and what the daemon needs from it, by joint name."""

    def __init__(
        self,
        role: Role,
        port: str,
        motor_ids: Mapping[str, int],
        calibration: ArmCalibration,
        *,
        baudrate: int = 1_000_000,
        timeout_s: float = 0.025,
    ) -> None:
        self.role = role
        self.motor_ids = dict(motor_ids)
        self.calibration = calibration
        self.joints = tuple(self.motor_ids)
        self.ids = tuple(self.motor_ids.values())
        self._joint_of = {motor: joint for joint, motor in self.motor_ids.items()}
        self.bus = FeetechBus(port, baudrate=baudrate, timeout=timeout_s)

    @property
    def port(self) -> str:
        return self.bus.port

    def joint_of(self, motor: int) -> str:
        return self._joint_of.get(motor, f"motor {motor}")

    def open(self) -> None:
        self.bus.open()

    def close(self) -> None:
        self.bus.close()

    def __enter__(self) -> Arm:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- positions -------------------------------------------------------------------------

    def read_positions(self) -> dict[str, int]:
        """Present positions by joint. Servo error bits raise ServoError (data attached)."""
        return self._by_joint(self.bus.sync_read("Present_Position", self.ids))

    def write_goals(self, goals: Mapping[str, int]) -> None:
        self.bus.sync_write("Goal_Position", {self.motor_ids[j]: v for j, v in goals.items()})

    def sync_read(self, name: str) -> dict[str, int]:
        """Any register of every motor, by joint; error bits are tolerated (data kept)."""
        try:
            values = self.bus.sync_read(name, self.ids)
        except ServoError as exc:
            values = exc.values
        return self._by_joint(values)

    # -- torque ----------------------------------------------------------------------------

    def enable_torque_holding_position(self) -> dict[str, int]:
        """Torque on without motion: each goal is set to the present position first.

        A servo energised with a stale Goal_Position drives to it at full speed; writing the
        present position first is what makes engaging safe.
        """
        present = self.sync_read("Present_Position")
        self.write_goals(present)
        for motor in self.ids:
            self.bus.write("Torque_Enable", motor, 1)
        return present

    def disable_torque(self) -> None:
        """Torque off on every motor, each acknowledged and read back."""
        for motor in self.ids:
            self.bus.write("Torque_Enable", motor, 0)
        enabled = [j for j, on in self.sync_read("Torque_Enable").items() if on]
        if enabled:
            raise BusError(self.port, f"torque still on after switching it off: {enabled}")

    def release(self) -> bool:
        """Best effort torque off, for leaving teleop: True if every motor confirmed it.

        A broadcast goes first because it needs no reply: it reaches every motor that still
        listens even when some stopped answering.
        """
        with contextlib.suppress(BusError):
            self.bus.sync_write("Torque_Enable", dict.fromkeys(self.ids, 0))
        unconfirmed = []
        for motor in self.ids:
            try:
                self.bus.write("Torque_Enable", motor, 0)
            except ServoError:
                pass  # it answered, so it heard the write; error bits are reported elsewhere
            except PortGone:
                log.warning("%s: board gone, torque off not possible on %s", self.role, self.port)
                return False
            except BusError:
                unconfirmed.append(self.joint_of(motor))
        if unconfirmed:
            log.warning("%s: torque off not confirmed on %s", self.role, ", ".join(unconfirmed))
        return not unconfirmed

    def answer_without_delay(self) -> list[str]:
        """Set Return_Delay_Time to 0 where it is not, as LeRobot's configure does.

        Factory servos wait 500 µs before each reply, which is 3 ms on a six-motor sync read.
        Only differing motors are written (EEPROM wear), with Lock opened so it persists.
        Returns the joints changed.
        """
        changed = [joint for joint, delay in self.sync_read("Return_Delay_Time").items() if delay]
        for joint in changed:
            motor = self.motor_ids[joint]
            self.bus.write("Lock", motor, 0)
            self.bus.write("Return_Delay_Time", motor, 0)
            self.bus.write("Lock", motor, 1)
        return changed

    # -- health ----------------------------------------------------------------------------

    def read_telemetry(self, joint: str) -> Telemetry:
        motor = self.motor_ids[joint]
        try:
            data = self.bus.read_bytes(motor, _TELEMETRY_START, _TELEMETRY_SIZE, "telemetry")
            faults = ServoFault(0)
        except ServoError as exc:
            data, faults = exc.payloads[motor], exc.faults[motor]
        load = register("Present_Load").decode(data[0:2])
        return Telemetry(
            joint=joint,
            load_percent=abs(load) * 100 / _LOAD_FULL_SCALE,
            voltage_v=data[2] / 10,
            temperature_c=data[3],
            faults=faults | ServoFault(data[5] & 0x7F),
        )

    def _by_joint(self, values: Mapping[int, int]) -> dict[str, int]:
        return {self._joint_of[m]: v for m, v in values.items() if m in self._joint_of}
