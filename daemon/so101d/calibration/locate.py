"""Where LeRobot keeps calibration files, in both of its directory layouts.

The root is resolved exactly as LeRobot resolves ``HF_LEROBOT_CALIBRATION`` (with
huggingface_hub's ``HF_HOME``). Under it, a file is ``<kind>/<name>/<id>.json``, where the
name changed in LeRobot 0.4.3 when SO-100 and SO-101 were merged into one class per role.
Files are never migrated by LeRobot, so a machine can hold both.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from so101d.calibration.files import CalibrationFileError, read_calibration
from so101d.calibration.model import Role

SUFFIX = ".json"
_KIND = {Role.FOLLOWER: "robots", Role.LEADER: "teleoperators"}


class Layout(enum.Enum):
    """A directory layout, newest first (the order in which files are preferred)."""

    SO = "so"  # LeRobot 0.4.3 and later: robots/so_follower, teleoperators/so_leader
    SO101 = "so101"  # LeRobot 0.3 to 0.4.2: robots/so101_follower, teleoperators/so101_leader

    def directory(self, role: Role) -> PurePath:
        return PurePath(_KIND[role], f"{self.value}_{role.value}")

    @property
    def versions(self) -> str:
        return "LeRobot 0.4.3 and later" if self is Layout.SO else "LeRobot up to 0.4.2"


def lerobot_calibration_root() -> Path:
    """The calibration root LeRobot itself would use in this environment."""
    env = os.environ
    cache = env.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    hf_home = os.path.expandvars(
        os.path.expanduser(env.get("HF_HOME", os.path.join(cache, "huggingface")))
    )
    lerobot_home = Path(env.get("HF_LEROBOT_HOME", Path(hf_home) / "lerobot")).expanduser()
    return Path(env.get("HF_LEROBOT_CALIBRATION", lerobot_home / "calibration")).expanduser()


def check_arm_id(arm_id: str) -> str:
    """An arm id names a file: refuse ids that would leave the calibration directory."""
    if not arm_id or arm_id in {".", ".."} or "/" in arm_id or "\0" in arm_id:
        raise ValueError(f"invalid arm id {arm_id!r}: it must be a plain file name")
    return arm_id


def calibration_path(root: Path, role: Role, arm_id: str, layout: Layout = Layout.SO) -> Path:
    return root / layout.directory(role) / f"{check_arm_id(arm_id)}{SUFFIX}"


@dataclass(frozen=True)
class LocatedCalibration:
    """The files found for one arm (``paths``: existing files only, newest layout first)."""

    root: Path
    role: Role
    arm_id: str
    paths: dict[Layout, Path] = field(default_factory=dict)

    @property
    def path(self) -> Path | None:
        """The file current LeRobot would use, else the older layout's."""
        return next(iter(self.paths.values()), None)

    @property
    def searched(self) -> list[Path]:
        return [calibration_path(self.root, self.role, self.arm_id, layout) for layout in Layout]

    @property
    def conflict(self) -> bool:
        """Both layouts hold a file for this arm and their calibrations differ."""
        if len(self.paths) < 2:
            return False
        first, second = self.paths.values()
        return not _same_calibration(first, second)


def locate_calibration(root: Path, role: Role, arm_id: str) -> LocatedCalibration:
    paths = {
        layout: path
        for layout in Layout
        if (path := calibration_path(root, role, arm_id, layout)).is_file()
    }
    return LocatedCalibration(root, role, arm_id, paths)


def find_calibrations(root: Path) -> list[LocatedCalibration]:
    """Every arm with a file under ``root``, for both roles and both layouts."""
    return [
        locate_calibration(root, role, arm_id)
        for role in Role
        for arm_id in sorted(set(_arm_ids(root, role)))
    ]


def other_layout_path(path: Path) -> Path | None:
    """The same arm's file in the other layout, if ``path`` lies in one of the layouts."""
    for layout in Layout:
        for role in Role:
            if path.parent.parts[-2:] == layout.directory(role).parts:
                other = Layout.SO101 if layout is Layout.SO else Layout.SO
                return path.parent.parent.parent / other.directory(role) / path.name
    return None


def infer_role(path: Path) -> Role | None:
    """The role a file's location implies (``.../so_leader/x.json``, ``my_follower.json``)."""
    for name in (path.parent.name, path.stem):
        roles = {role for role in Role if role.value in name}
        if len(roles) == 1:
            return roles.pop()
    return None


def _arm_ids(root: Path, role: Role) -> Iterator[str]:
    for layout in Layout:
        directory = root / layout.directory(role)
        if directory.is_dir():
            yield from (p.stem for p in directory.glob(f"*{SUFFIX}") if p.is_file())


def _same_calibration(first: Path, second: Path) -> bool:
    """Equal bytes or equal values (formatting does not count); unusable files differ."""
    try:
        if first.read_bytes() == second.read_bytes():
            return True
        return read_calibration(first) == read_calibration(second)
    except (OSError, CalibrationFileError):
        return False
