"""The no-motion precheck: everything that must be true before a follower gets torque.

Each check runs on both arms and yields a cell per arm; the first failing cell (in check
order) becomes the pair's fault. Nothing here moves a joint: the leader's torque is switched
off, and a follower found holding keeps holding where it is (goal = present, through its
guard), so a check never drops an arm. Servo settings and EEPROM values are only compared;
the pair writes them afterwards, through the guards.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from so101d.arm import Arm
from so101d.calibration.eeprom import EepromDifference, compare_servo_calibration
from so101d.calibration.model import GRIPPER, WRIST_ROLL, Role
from so101d.config import PairConfig
from so101d.faults import Latch, PairFault
from so101d.feetech import (
    STS3215_MODEL_NUMBER,
    BusError,
    BusTimeout,
    CorruptReply,
    ServoError,
    ServoFault,
)
from so101d.feetech.registers import ENCODER_RESOLUTION
from so101d.feetech.roll_call import Tries, roll_call
from so101d.motion import ArmGuard, SettingChange, setting_changes

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"
CONFIRM_ABSENT_S = 1.0  # a motor must stay silent this long before it counts as missing
_RANGE_SLACK = 0.05  # a joint may read this fraction of its span outside the recorded range


@dataclass(frozen=True)
class Cell:
    """One check's result on one arm: a short text for the table, a sentence when not ok."""

    status: str
    text: str
    problem: str | None = None
    latch: Latch | None = None
    value: float | None = None  # the measured quantity, where one check needs another's


@dataclass(frozen=True)
class Check:
    name: str
    leader: Cell
    follower: Cell


@dataclass
class PrecheckReport:
    checks: list[Check] = field(default_factory=list)
    eeprom: dict[str, list[EepromDifference]] = field(default_factory=dict)
    settings: dict[str, list[SettingChange]] = field(default_factory=dict)

    @property
    def fault(self) -> PairFault | None:
        for check in self.checks:
            for cell in (check.leader, check.follower):
                if cell.status == FAIL:
                    return PairFault(cell.problem or check.name, cell.latch)
        return None

    @property
    def warnings(self) -> list[str]:
        return [
            cell.problem
            for check in self.checks
            for cell in (check.leader, check.follower)
            if cell.status == WARN and cell.problem
        ]

    def table(self) -> str:
        rows = [("check", "leader", "follower", "verdict")]
        for check in self.checks:
            verdict = _worst(check.leader.status, check.follower.status)
            rows.append((check.name, check.leader.text, check.follower.text, verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def as_dict(self) -> dict[str, Any]:
        fault = self.fault
        return {
            "ok": fault is None,
            "fault": fault.reason if fault else None,
            "latched": fault.latched if fault else False,
            "checks": [
                {"check": c.name, "leader": vars(c.leader), "follower": vars(c.follower)}
                for c in self.checks
            ],
            "warnings": self.warnings,
        }


def _worst(*statuses: str) -> str:
    for status in (FAIL, WARN, SKIPPED):
        if status in statuses:
            return status
    return OK


ArmCheck = Callable[[Arm, PairConfig], Cell]


def run_precheck(leader: ArmGuard, follower: ArmGuard, config: PairConfig) -> PrecheckReport:
    """Run every check on both (open) arms; bus errors become failed cells, never escape."""
    report = PrecheckReport()
    arms = (leader.arm, follower.arm)
    reachable = {arm.role: True for arm in arms}
    rearmed = _rearm_tripped_gripper(follower)
    for name, check in CHECKS:
        cells = [
            _run(check or _torque_check(guard), guard.arm, config, reachable)
            for guard in (leader, follower)
        ]
        if rearmed and cells[1].status == OK:
            cells[1] = Cell(WARN, f"{cells[1].text} (gripper re-armed)", rearmed)
            rearmed = None
        report.checks.append(Check(name, *cells))
    _check_boards_not_swapped(report, *arms, config)
    report.checks.append(Check("settings", *(_settings_cell(report, a, reachable) for a in arms)))
    report.checks.append(
        Check("EEPROM = file", *(_eeprom_cell(report, a, reachable) for a in arms))
    )
    return report


def _rearm_tripped_gripper(follower: ArmGuard) -> str | None:
    """A grasp trips the follower gripper's overload protection: the servo then pushes with
    only its Protective_Torque, and the bit rides on every reply, so the checks would take a
    grasp for a fault. It is re-armed first, without motion. Bus trouble is the checks' to
    report; a closed gate leaves the bit for them to show."""
    motor = follower.arm.motor_ids.get(GRIPPER)
    if motor is None:
        return None
    try:
        if follower.arm.bus.ping(motor) != ServoFault.OVERLOAD:
            return None
        follower.rearm_overload(GRIPPER)
    except (BusError, PairFault):
        return None
    return (
        f"follower gripper (motor {motor}) had tripped its overload protection (a grasp); "
        "re-armed with the goal at its present position"
    )


def _run(check: ArmCheck, arm: Arm, config: PairConfig, reachable: dict[Role, bool]) -> Cell:
    """One check on one arm. A late or garbled reply is retried, the bus resynchronised,
    for up to CONFIRM_ABSENT_S; an arm whose bus stays unusable skips its remaining checks.
    """
    if not reachable[arm.role]:
        return Cell(SKIPPED, "-")
    deadline = time.monotonic() + CONFIRM_ABSENT_S
    while True:
        try:
            cell = check(arm, config)
            break
        except BusError as exc:
            cell = _bus_error_cell(arm, exc)
            if not isinstance(exc, BusTimeout | CorruptReply):
                break
            with contextlib.suppress(BusError):  # a late reply is not the next try's answer
                arm.bus.resync()
            if time.monotonic() >= deadline:
                reachable[arm.role] = False
                break
    if cell.status == FAIL and cell.latch is Latch.DEVICES:
        reachable[arm.role] = False
    return cell


def _bus_error_cell(arm: Arm, exc: BusError) -> Cell:
    """A check cut short by the bus, with what kind of trouble it was."""
    where = f"{arm.role} on {arm.port}"
    if isinstance(exc, ServoError):
        bits = ServoFault(sum(exc.faults.values()))
        return Cell(FAIL, "error bits", f"{where}: {exc}", _latch_for(bits))
    if isinstance(exc, CorruptReply):
        return Cell(
            FAIL, "corrupt reply", f"{where}: corrupt replies ({exc}): a noisy bus (transient)"
        )
    if isinstance(exc, BusTimeout):
        return Cell(
            FAIL, "late reply", f"{where}: late or lost replies ({exc}): a slow bus (transient)"
        )
    return Cell(FAIL, "no answer", f"{where}: {exc}")


def _motors_answer(arm: Arm, config: PairConfig) -> Cell:
    tries = roll_call(arm.bus, arm.ids, arm.bus.ping, CONFIRM_ABSENT_S).values()
    troubled = [t for t in tries if t.troubled]
    absent = [t for t in tries if t.absent]
    if troubled:
        return _unreliable_bus(arm, troubled, absent)
    if absent:
        named = _motor_names(arm, absent)
        return Cell(
            FAIL,
            f"missing {named}",
            f"{arm.role} motor(s) {named} do not answer on {arm.port} (silent for "
            f"{CONFIRM_ABSENT_S * 1000:.0f} ms, {absent[0].tries} tries): check the servo "
            f"cables, then unplug and replug the board (or `so101d resume`)",
            Latch.DEVICES,
        )
    faulty = {arm.joint_of(t.motor): t.answer for t in tries if t.answer}
    if faulty:
        text = "; ".join(f"{j}: {bits.describe()}" for j, bits in faulty.items())
        return Cell(
            FAIL,
            "error bits",
            f"{arm.role} servos report errors: {text}",
            _latch_for(ServoFault(sum(faulty.values()))),
        )
    count = f"{len(arm.ids)}/{len(arm.ids)}"
    if retried := [t for t in tries if t.retried]:
        return Cell(
            WARN,
            f"{count} (retried)",
            f"{arm.role} motor(s) {_motor_names(arm, retried)} answered only after "
            f"{max(t.tries for t in retried)} tries: the bus or the CPU is slow or busy",
        )
    return Cell(OK, count)


def _unreliable_bus(arm: Arm, troubled: list[Tries[ServoFault]], absent: list[Tries[Any]]) -> Cell:
    """Motors whose replies came late or garbled: a transient fault, retried with backoff."""
    window = f"{CONFIRM_ABSENT_S * 1000:.0f} ms"
    late = [t for t in troubled if t.late]
    corrupt = [t for t in troubled if not t.late]
    parts = []
    if late:
        parts.append(
            f"motor(s) {_motor_names(arm, late)} answered late / not at all within {window} "
            f"(replies came after the {arm.bus.timeout * 1000:.0f} ms bus timeout)"
        )
    if corrupt:
        parts.append(
            f"motor(s) {_motor_names(arm, corrupt)} sent only corrupt replies within {window} "
            f"(noise on the bus or a loose connector?)"
        )
    if absent:
        parts.append(f"motor(s) {_motor_names(arm, absent)} stayed silent")
    return Cell(
        FAIL,
        "late replies" if late else "corrupt replies",
        f"{arm.role} on {arm.port}: {'; '.join(parts)}: a slow or noisy bus, not a missing "
        "motor (transient)",
    )


def _motor_names(arm: Arm, tries: list[Tries[Any]]) -> str:
    return ", ".join(f"{t.motor} ({arm.joint_of(t.motor)})" for t in tries)


def _latch_for(bits: ServoFault) -> Latch | None:
    if ServoFault.OVERHEAT in bits:
        return Latch.COOLING
    if bits & (ServoFault.OVERLOAD | ServoFault.OVERCURRENT | ServoFault.ANGLE_SENSOR):
        return Latch.OPERATOR
    return None


def _model_numbers(arm: Arm, config: PairConfig) -> Cell:
    wrong = {j: arm.bus.read("Model_Number", m) for j, m in arm.motor_ids.items()}
    wrong = {j: model for j, model in wrong.items() if model != STS3215_MODEL_NUMBER}
    if wrong:
        found = ", ".join(f"{j}: {model}" for j, model in wrong.items())
        return Cell(
            FAIL,
            "wrong model",
            f"{arm.role} on {arm.port} has servos that are not "
            f"STS3215 (model {STS3215_MODEL_NUMBER}): {found}",
            Latch.DEVICES,
        )
    return Cell(OK, f"STS3215 x{len(arm.ids)}")


def _firmware(arm: Arm, config: PairConfig) -> Cell:
    versions = {
        f"{arm.bus.read('Firmware_Major_Version', m)}.{arm.bus.read('Firmware_Minor_Version', m)}"
        for m in arm.ids
    }
    if len(versions) > 1:
        return Cell(
            WARN,
            "mixed " + "/".join(sorted(versions)),
            f"{arm.role} servos run different firmware ({', '.join(sorted(versions))}); "
            f"LeRobot refuses such an arm",
        )
    return Cell(OK, versions.pop())


def _torque_check(guard: ArmGuard) -> ArmCheck:
    return lambda arm, config: _torque_state(guard)


def _torque_state(guard: ArmGuard) -> Cell:
    """The leader is made limp; a follower found holding is left holding where it is."""
    arm = guard.arm
    holding = [joint for joint, on in guard.torque_state().items() if on]
    if arm.role is Role.FOLLOWER and holding and guard.adopt_holding(holding):
        return Cell(
            WARN,
            f"holding ({len(holding)}/{len(arm.ids)})",
            f"follower found holding with torque on ({', '.join(holding)}); it keeps holding "
            f"where it is until the stop policy or `so101d estop` releases it",
        )
    if holding:
        released = guard.release()
        if not released.ok:
            return Cell(FAIL, "still on", f"{released.describe()}: check the servo cables")
    return Cell(OK, "off (read back)")


def _supply_voltage(arm: Arm, config: PairConfig) -> Cell:
    volts = statistics.median(arm.sync_read("Present_Voltage").values()) / 10
    text = f"{volts:.1f} V"
    if arm.role is Role.FOLLOWER and not config.min_voltage_v <= volts <= config.max_voltage_v:
        return Cell(
            FAIL,
            text,
            f"follower supply reads {volts:.1f} V, outside "
            f"{config.min_voltage_v:g}-{config.max_voltage_v:g} V: check its power supply",
            value=volts,
        )
    return Cell(OK, text, value=volts)


def _temperature(arm: Arm, config: PairConfig) -> Cell:
    temperatures = arm.sync_read("Present_Temperature")
    joint = max(temperatures, key=temperatures.__getitem__)
    hottest = temperatures[joint]
    text = f"max {hottest} °C"
    if arm.role is Role.FOLLOWER and hottest >= config.max_temperature_c:
        return Cell(
            FAIL,
            text,
            f"follower {joint} is at {hottest} °C (limit "
            f"{config.max_temperature_c:g} °C): waiting for it to cool below "
            f"{config.resume_temperature_c:g} °C",
            Latch.COOLING,
        )
    return Cell(OK, text)


def _positions_in_file_frame(arm: Arm) -> dict[str, int]:
    """Present positions as they will read once the file's homing offsets are in the servos.

    A servo reports ``(actual - Homing_Offset) mod 4096`` with the offset in its EEPROM, which
    may still differ from the file; the check must not depend on that.
    """
    positions = arm.sync_read("Present_Position")
    offsets = arm.sync_read("Homing_Offset")
    return {
        joint: (position + offsets[joint] - arm.calibration[joint].homing_offset)
        % ENCODER_RESOLUTION
        for joint, position in positions.items()
    }


def _positions_in_range(arm: Arm, config: PairConfig) -> Cell:
    positions = _positions_in_file_frame(arm)
    outside, near = [], []
    for joint, position in positions.items():
        cal = arm.calibration[joint]
        if joint == WRIST_ROLL and cal.span >= 4000:
            continue
        slack = max(50, _RANGE_SLACK * cal.span)
        if position < cal.range_min - slack or position > cal.range_max + slack:
            outside.append(f"{joint} reads {position}, range {cal.range_min}-{cal.range_max}")
        elif not cal.range_min <= position <= cal.range_max:
            near.append(joint)
    if outside:
        return Cell(
            FAIL,
            "outside range",
            f"{arm.role} positions outside the calibrated range "
            f"({'; '.join(outside)}): the calibration does not match this arm. Check the "
            f"arm id in the config or recalibrate",
            Latch.CALIBRATION,
        )
    if near:
        return Cell(
            WARN,
            "at range edge",
            f"{arm.role} {', '.join(near)} slightly outside the calibrated range (at an end stop?)",
        )
    return Cell(OK, "inside range")


CHECKS: list[tuple[str, ArmCheck | None]] = [
    ("motors answer", _motors_answer),
    ("model", _model_numbers),
    ("firmware", _firmware),
    ("torque", None),  # needs the arm's guard: see _torque_check
    ("supply", _supply_voltage),
    ("temperature", _temperature),
    ("positions", _positions_in_range),
]


def _check_boards_not_swapped(
    report: PrecheckReport, leader: Arm, follower: Arm, config: PairConfig
) -> None:
    """A leader board runs at ~5 V, a follower at 7.4 or 12 V: their voltages tell them apart."""
    index = next(i for i, check in enumerate(report.checks) if check.name == "supply")
    supply = report.checks[index]
    lead_v, follow_v = supply.leader.value, supply.follower.value
    if lead_v is None or follow_v is None:
        return
    if lead_v >= config.min_voltage_v > follow_v:
        problem = (
            f"the boards look swapped: {leader.port} (configured as leader) reads "
            f"{lead_v:.1f} V and {follower.port} (follower) reads {follow_v:.1f} V. Fix "
            f"the udev rules (`so101d install-udev`) or the ports in the config"
        )
        report.checks[index] = replace(
            supply, follower=Cell(FAIL, supply.follower.text, problem, Latch.DEVICES)
        )


def _settings_cell(report: PrecheckReport, arm: Arm, reachable: dict[Role, bool]) -> Cell:
    """Operating settings as LeRobot's configure() writes them: compared here, set later."""
    if not reachable[arm.role]:
        return Cell(SKIPPED, "-")
    try:
        changes = setting_changes(arm)
    except BusError as exc:
        return Cell(FAIL, "no answer", f"{arm.role} servo settings unreadable on {arm.port}: {exc}")
    report.settings[arm.role] = changes
    if changes:
        registers = sorted({change.register for change in changes})
        return Cell(OK, f"{len(changes)} to set", f"{arm.role}: will set {', '.join(registers)}")
    return Cell(OK, "as LeRobot")


def _eeprom_cell(report: PrecheckReport, arm: Arm, reachable: dict[Role, bool]) -> Cell:
    if not reachable[arm.role]:
        return Cell(SKIPPED, "-")
    try:
        differences = compare_servo_calibration(arm.bus, arm.calibration)
    except BusError as exc:
        return Cell(FAIL, "no answer", f"{arm.role} servo EEPROM unreadable on {arm.port}: {exc}")
    report.eeprom[arm.role] = differences
    if differences:
        listed = "; ".join(d.describe() for d in differences[:2])
        more = f" and {len(differences) - 2} more" if len(differences) > 2 else ""
        return Cell(
            WARN,
            f"{len(differences)} differ",
            f"{arm.role} servo EEPROM differs from the calibration file ({listed}{more}); "
            f"recalibrated elsewhere? `so101d import-calibration` takes that calibration; "
            f"otherwise the file's values are written before engaging",
        )
    return Cell(OK, "match")
