"""LeRobot-compatible calibration files: model, read/write, locate, normalize, validate,
atomic save with backups, and the servos' EEPROM copy."""

from so101d.calibration.eeprom import (
    EepromDifference,
    compare_servo_calibration,
    read_servo_calibration,
    write_servo_calibration,
)
from so101d.calibration.files import (
    CalibrationFileError,
    FormatProblem,
    parse_calibration,
    read_calibration,
    serialize_calibration,
)
from so101d.calibration.locate import (
    Layout,
    LocatedCalibration,
    calibration_path,
    find_calibrations,
    infer_role,
    lerobot_calibration_root,
    locate_calibration,
)
from so101d.calibration.model import (
    DEFAULT_MOTOR_MAP,
    JOINTS,
    ArmCalibration,
    MotorCalibration,
    Role,
)
from so101d.calibration.normalize import NormMode, joint_norm_modes, normalize, unnormalize
from so101d.calibration.store import DEFAULT_KEEP_BACKUPS, SavedFile, save_calibration
from so101d.calibration.validate import (
    FileReport,
    Finding,
    Level,
    check_calibration,
    check_pair,
    validate_bytes,
    validate_file,
)

__all__ = [
    "DEFAULT_KEEP_BACKUPS",
    "DEFAULT_MOTOR_MAP",
    "JOINTS",
    "ArmCalibration",
    "CalibrationFileError",
    "EepromDifference",
    "FileReport",
    "Finding",
    "FormatProblem",
    "Layout",
    "Level",
    "LocatedCalibration",
    "MotorCalibration",
    "NormMode",
    "Role",
    "SavedFile",
    "calibration_path",
    "check_calibration",
    "check_pair",
    "compare_servo_calibration",
    "find_calibrations",
    "infer_role",
    "joint_norm_modes",
    "lerobot_calibration_root",
    "locate_calibration",
    "normalize",
    "parse_calibration",
    "read_calibration",
    "read_servo_calibration",
    "save_calibration",
    "serialize_calibration",
    "unnormalize",
    "validate_bytes",
    "validate_file",
    "write_servo_calibration",
]
