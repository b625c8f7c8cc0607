"""The ``so101d sim`` console: one-line commands on a running pair, and its status text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from so101d.calibration.model import JOINTS
from so101d.sim.arm import VirtualArm, VirtualPair
from so101d.sim.faults import parse_fault
from so101d.sim.joints import ROLES
from so101d.sim.motion import MOTIONS

HELP = """\
commands (ROLE is leader or follower):
  status                          joints, temperatures, voltages, loads and faults
  unplug ROLE / replug ROLE       pull the arm's USB cable / plug it back
  power-cycle ROLE                switch the arm's servos off and on
  motion ROLE wave|sweep|none     what the hand does with the arm
  hold ROLE JOINT=FRACTION...     the hand holds joints (0 = lower stop, 1 = upper stop)
  fault ROLE KIND [ARGS]          inject a fault; add count=N to spoil only N replies:
      silence | corrupt-checksum [MOTOR] | late-reply [SECONDS] | wrong-id [MOTOR]
      missing-motor MOTOR | brownout [VOLTS] | overheat MOTOR [CELSIUS] | jam MOTOR
  clear ROLE [KIND]               clear one kind of fault, or all
  help                            this text"""


class CommandError(ValueError):
    """A command that cannot be carried out; the message says why."""


def execute(pair: VirtualPair, line: str) -> str:
    """Carry out one console line; return what to print. Raises CommandError."""
    words = line.split()
    if not words:
        return ""
    verb, args = words[0].lower(), words[1:]
    command = _COMMANDS.get(verb)
    if command is None:
        raise CommandError(f"unknown command {verb!r} (try 'help')")
    try:
        return command(pair, args)
    except ValueError as exc:
        raise CommandError(f"{verb}: {exc}") from None


def _arm(pair: VirtualPair, args: Sequence[str]) -> VirtualArm:
    if not args or args[0].lower() not in ROLES:
        raise ValueError(f"name the arm: {' or '.join(ROLES)}")
    return pair.arm(args[0].lower())


def _no_more(args: Sequence[str]) -> None:
    if args:
        raise ValueError(f"unexpected {' '.join(args)!r}")


def _status(pair: VirtualPair, args: Sequence[str]) -> str:
    _no_more(args)
    return format_status(pair)


def _help(pair: VirtualPair, args: Sequence[str]) -> str:
    return HELP


def _unplug(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    _no_more(args[1:])
    arm.unplug()
    return f"{arm.role} unplugged ({arm.link} is gone)"


def _replug(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    _no_more(args[1:])
    arm.replug()
    return f"{arm.role} plugged in at {arm.link} -> {arm.device}"


def _power_cycle(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    _no_more(args[1:])
    arm.power_cycle()
    return f"{arm.role} servos power-cycled"


def _motion(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    if len(args) != 2 or args[1].lower() not in (*MOTIONS, "none"):
        raise ValueError(f"choose one motion: {', '.join(MOTIONS)} or none")
    name = args[1].lower()
    arm.set_motion(None if name == "none" else name)
    return f"{arm.role} motion: {name}"


def _hold(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    if len(args) < 2:
        raise ValueError(f"give JOINT=FRACTION pairs; joints are {', '.join(JOINTS)}")
    fractions: dict[str, float] = {}
    for word in args[1:]:
        joint, _, text = word.partition("=")
        try:
            fractions[joint] = float(text)
        except ValueError:
            raise ValueError(f"{word!r} is not JOINT=FRACTION") from None
    arm.hold(fractions)
    return f"{arm.role} hand holds {', '.join(fractions)}"


def _fault(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    request = parse_fault(args[1:])
    arm.inject(request.fault, motor=request.motor, count=request.count, value=request.value)
    return f"{arm.role} faults: {_faults_text(arm)}"


def _clear(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    if len(args) > 2:
        raise ValueError(f"unexpected {' '.join(args[2:])!r}")
    fault = parse_fault(args[1:2]).fault if len(args) == 2 else None
    arm.clear(fault)
    return f"{arm.role} faults: {_faults_text(arm)}"


_COMMANDS: dict[str, Callable[[VirtualPair, Sequence[str]], str]] = {
    "status": _status,
    "help": _help,
    "unplug": _unplug,
    "replug": _replug,
    "power-cycle": _power_cycle,
    "motion": _motion,
    "hold": _hold,
    "fault": _fault,
    "clear": _clear,
}


def _faults_text(arm: VirtualArm) -> str:
    return "; ".join(f.describe() for f in arm.active_faults()) or "none"


def describe_arm(arm: VirtualArm) -> str:
    """One line saying what an arm is."""
    return (
        f"{arm.role:<8} {arm.link}  ({arm.role} arm, 6 x STS3215 at {arm.supply_voltage:g} V, "
        f"motion: {arm.motion or 'none'})"
    )


def format_status(pair: VirtualPair) -> str:
    lines: list[str] = []
    for arm in pair.arms:
        state = f"plugged at {arm.link} -> {arm.device}" if arm.plugged else "UNPLUGGED"
        lines.append(f"{arm.role}: {state}; motion {arm.motion or 'none'}")
        lines.append(f"  faults: {_faults_text(arm)}")
        lines.append("  joint          pos  angle  temp  volts   load  torque  errors")
        for t in arm.telemetry():
            errors = t.errors.describe() if t.errors else "-"
            lines.append(
                f"  {t.joint:<13} {t.position:>4} {t.angle:>6.1f} {t.temperature:>4.0f}C "
                f"{t.voltage:>5.1f}V {t.load:>5.1f}% {'on' if t.torque else 'off':>6}  "
                f"{errors if t.powered else 'no power'}"
            )
    return "\n".join(lines)
