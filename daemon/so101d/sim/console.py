"""The ``so101d sim`` console: one-line commands on a running pair, and its status text."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from so101d.calibration.model import JOINTS
from so101d.sim.arm import VirtualArm, VirtualPair
from so101d.sim.faults import parse_fault
from so101d.sim.joints import ROLES
from so101d.sim.motion import MOTIONS

HELP = """\
commands (ROLE is leader or follower; RAW is a Present_Position reading, 0..4095):
  status [--json]                 joints, temperatures, voltages, loads and faults
                                  (--json: each joint's ground truth, one JSON line)
  unplug ROLE / replug ROLE       pull the arm's USB cable / plug it back
  power-cycle ROLE                switch the arm's servos off and on
  motion ROLE wave|sweep|none     what the hand does with the arm
  hold ROLE JOINT=FRACTION...     the hand holds joints (0 = lower stop, 1 = upper stop)
  move ROLE JOINT RAW [SPEED]     the hand moves the joint until it reads RAW, at SPEED
                                  ticks/s on average (default: a hand's pace), and holds it
  set ROLE JOINT RAW              the joint reads RAW at once; the hand holds it
  release ROLE JOINT              the hand lets go of the joint
  obstacle ROLE JOINT RAW|none    something in the joint's way where it reads RAW
                                  (on the gripper: an object between the jaws)
  travel ROLE JOINT TICKS         move the joint's end stops TICKS apart around its middle
  mount ROLE JOINT RAW            re-seat the encoder: it reads RAW (no homing offset) at
                                  the joint's middle
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
    if list(args) == ["--json"]:
        return json.dumps(ground_truth(pair))
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


def _joint_command(args: Sequence[str], usage: str, most: int) -> tuple[str, list[str]]:
    """The joint a command names and the words after it (at least one, at most ``most``)."""
    if len(args) < 3 or len(args) > 2 + most:
        raise ValueError(f"usage: {usage}")
    joint = args[1]
    if joint not in JOINTS:
        raise ValueError(f"unknown joint {joint!r}; joints are {', '.join(JOINTS)}")
    return joint, list(args[2:])


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, not {text!r}") from None


def _move(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    joint, words = _joint_command(args, "move ROLE JOINT RAW [SPEED]", 2)
    position = _integer(words[0], "RAW")
    speed = float(_integer(words[1], "SPEED")) if len(words) == 2 else None
    arm.move_joint(joint, position, speed)
    pace = f" at {speed:g} ticks/s" if speed is not None else ""
    return f"{arm.role} hand moves {joint} to {position}{pace}"


def _set(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    joint, words = _joint_command(args, "set ROLE JOINT RAW", 1)
    position = _integer(words[0], "RAW")
    arm.set_joint(joint, position)
    return f"{arm.role} {joint} set to {position}"


def _release(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    if len(args) != 2:
        raise ValueError("usage: release ROLE JOINT")
    arm.release(args[1])
    return f"{arm.role} hand lets go of {args[1]}"


def _obstacle(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    joint, words = _joint_command(args, "obstacle ROLE JOINT RAW|none", 1)
    if words[0].lower() == "none":
        arm.place_obstacle(joint, None)
        return f"{arm.role} {joint}: obstacle removed"
    position = _integer(words[0], "RAW")
    arm.place_obstacle(joint, position)
    return f"{arm.role} {joint}: obstacle where it reads {position}"


def _travel(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    joint, words = _joint_command(args, "travel ROLE JOINT TICKS", 1)
    arm.set_travel(joint, _integer(words[0], "TICKS"))
    return f"{arm.role} {joint}: end stops {words[0]} ticks apart"


def _mount(pair: VirtualPair, args: Sequence[str]) -> str:
    arm = _arm(pair, args)
    joint, words = _joint_command(args, "mount ROLE JOINT RAW", 1)
    arm.set_mount(joint, _integer(words[0], "RAW"))
    return f"{arm.role} {joint}: encoder reads {words[0]} at the middle"


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
    "move": _move,
    "set": _set,
    "release": _release,
    "obstacle": _obstacle,
    "travel": _travel,
    "mount": _mount,
    "fault": _fault,
    "clear": _clear,
}


def apply_joint_setting(pair: VirtualPair, kind: str, text: str) -> None:
    """``--travel``/``--mount`` of ``so101d sim``: ``[ROLE.]JOINT=VALUE``, on both arms unless
    a role is named. Raises CommandError naming the option and what is wrong."""
    target, sep, value = text.partition("=")
    role, dot, joint = target.rpartition(".")
    try:
        if not sep or (dot and role not in ROLES):
            raise ValueError(f"give [leader.|follower.]JOINT=VALUE, not {text!r}")
        number = _integer(value, "VALUE")
        for arm in pair.arms if not dot else (pair.arm(role),):
            if kind == "travel":
                arm.set_travel(joint, number)
            else:
                arm.set_mount(joint, number)
    except ValueError as exc:
        raise CommandError(f"--{kind}: {exc}") from None


def _faults_text(arm: VirtualArm) -> str:
    return "; ".join(f.describe() for f in arm.active_faults()) or "none"


def describe_arm(arm: VirtualArm) -> str:
    """One line saying what an arm is."""
    return (
        f"{arm.role:<8} {arm.link}  ({arm.role} arm, 6 x STS3215 at {arm.supply_voltage:g} V, "
        f"motion: {arm.motion or 'none'})"
    )


def ground_truth(pair: VirtualPair) -> dict[str, object]:
    """What ``status --json`` prints: per arm its state, and per joint the physical truth."""
    return {
        arm.role: {
            "link": arm.link,
            "plugged": arm.plugged,
            "device": arm.device,
            "motion": arm.motion,
            "faults": [fault.describe() for fault in arm.active_faults()],
            "joints": arm.ground_truth(),
        }
        for arm in pair.arms
    }


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
