"""LeRobot calibration files, read and written byte for byte as LeRobot writes them.

LeRobot saves with ``draccus.dump(calibration, f, indent=4)``, which is ``json.dump`` with
``indent=4`` and nothing else: four-space indent, ``", "``/``": "`` separators, ASCII only,
keys in insertion order (motors in bus order; per motor ``id, drive_mode, homing_offset,
range_min, range_max``) and no trailing newline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from so101d.calibration.model import FIELDS, JOINTS, ArmCalibration, MotorCalibration

# Before its 2025 motor-bus rewrite, LeRobot stored one object per arm holding parallel lists.
LEGACY_KEYS = frozenset(
    {"homing_offset", "drive_mode", "start_pos", "end_pos", "calib_mode", "motor_names"}
)
# so101d cannot calibrate yet: name the commands that exist.
RECALIBRATE = (
    "recalibrate with `so101d calibrate` (or lerobot-calibrate, then `so101d import-calibration`)"
)
_DAMAGED = "restore a backup or recalibrate"
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


@dataclass(frozen=True)
class FormatProblem:
    """Why a file is not a readable calibration; ``joint`` when one joint's entry is at fault."""

    code: str
    message: str
    joint: str | None = None


class CalibrationFileError(Exception):
    """A calibration file that cannot be used at all; carries every problem found."""

    def __init__(self, path: Path, problems: Sequence[FormatProblem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{path}: {p.message}" for p in self.problems))


def read_calibration(path: Path) -> ArmCalibration:
    """Load a calibration file; :class:`CalibrationFileError` when it is unusable."""
    return parse_calibration(read_bytes(path), path)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problem = FormatProblem("unreadable", f"cannot read the file ({reason}); check the path")
        raise CalibrationFileError(path, [problem]) from exc


def parse_calibration(data: bytes, path: Path) -> ArmCalibration:
    """Parse a file's bytes (``path`` only names the file in errors)."""
    return parse_document(data, path)[0]


def parse_document(data: bytes, path: Path) -> tuple[ArmCalibration, list[str]]:
    """The calibration in a file's bytes, and the top-level keys ignored as not joints.

    A key that is not a joint and does not look like one (its value is not an object with
    any calibration field: a tool's own extra section) is ignored; a key that looks like a
    joint but is not one stays in the calibration, for the validator to name.
    """
    document = _decode_json(data, path)
    if _is_legacy(document):
        raise CalibrationFileError(path, [_legacy_problem()])
    if not isinstance(document, dict):
        message = (
            f"the file holds {_json_type(document)}, not a calibration (an object mapping "
            f"each joint to its id, drive_mode, homing_offset, range_min and range_max); "
            f"{_DAMAGED}"
        )
        raise CalibrationFileError(path, [FormatProblem("not_object", message)])
    problems: list[FormatProblem] = []
    calibration: ArmCalibration = {}
    ignored = [key for key, entry in document.items() if not _looks_like_joint(key, entry)]
    for joint, entry in document.items():
        if joint in ignored:
            continue
        motor = _parse_joint(joint, entry, problems)
        if motor is not None:
            calibration[joint] = motor
    if problems:
        raise CalibrationFileError(path, problems)
    return calibration, ignored


def _looks_like_joint(key: str, entry: object) -> bool:
    return key in JOINTS or (isinstance(entry, dict) and any(f in entry for f in FIELDS))


def serialize_calibration(calibration: ArmCalibration) -> bytes:
    """The exact bytes LeRobot writes for this calibration."""
    document = {joint: motor.as_dict() for joint, motor in calibration.items()}
    return json.dumps(document, indent=4).encode("ascii")


def _decode_json(data: bytes, path: Path) -> object:
    duplicates: list[str] = []

    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        document: object = json.loads(data.decode("utf-8"), object_pairs_hook=unique_keys)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        message = f"the file is not valid JSON text ({_short(exc)}): {_DAMAGED}"
        raise CalibrationFileError(path, [FormatProblem("not_json", message)]) from exc
    if duplicates:
        problems = [
            FormatProblem("duplicate_key", f"the key {key!r} appears twice in the file; {_DAMAGED}")
            for key in dict.fromkeys(duplicates)
        ]
        raise CalibrationFileError(path, problems)
    return document


def _is_legacy(document: object) -> bool:
    return isinstance(document, dict) and any(
        isinstance(document.get(key), list) for key in LEGACY_KEYS
    )


def _legacy_problem() -> FormatProblem:
    return FormatProblem(
        "legacy_format",
        "this is a calibration from LeRobot before 2025 (parallel lists such as "
        "'start_pos' and 'end_pos'), which current LeRobot and so101d cannot use; " + RECALIBRATE,
    )


def _parse_joint(
    joint: str, entry: object, problems: list[FormatProblem]
) -> MotorCalibration | None:
    if not isinstance(entry, dict):
        message = f"{joint} is {_json_type(entry)}, expected an object with {', '.join(FIELDS)}"
        problems.append(FormatProblem("bad_joint_entry", f"{message}; {_DAMAGED}", joint))
        return None
    found = len(problems)
    for field in FIELDS:
        if field not in entry:
            message = f"{joint} has no {field}; {_DAMAGED}"
            problems.append(FormatProblem("missing_field", message, joint))
        elif not _is_int(entry[field]):
            message = (
                f"{joint} {field} is {_describe(entry[field])}, expected an integer; {_DAMAGED}"
            )
            problems.append(FormatProblem("bad_type", message, joint))
    for key in entry:
        if key not in FIELDS:
            message = f"{joint} has an unexpected key {key!r}; {_DAMAGED}"
            problems.append(FormatProblem("unknown_field", message, joint))
    if len(problems) > found:
        return None
    return MotorCalibration(**{field: entry[field] for field in FIELDS})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _describe(value: object) -> str:
    """The JSON type of ``value``, with the value itself when it is short."""
    if value is None or isinstance(value, dict | list):
        return _json_type(value)
    text = json.dumps(value)
    return f"{_json_type(value)} ({text})" if len(text) <= 20 else _json_type(value)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."
