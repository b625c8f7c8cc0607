"""``so101d frames list|convert|detect``: the coordinate frames of SO-101 joint values.

Exit status: 0 success; 1 when a conversion cannot be done or no frame fits the statistics;
2 on usage errors.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from so101d.calibration.files import CalibrationFileError, read_calibration
from so101d.calibration.model import JOINTS, ArmCalibration
from so101d.frame_detect import (
    BAND_SIGMAS,
    Detection,
    FrameFit,
    Linear,
    StatsError,
    detect,
    read_stats,
)
from so101d.frames import FRAMES, Frame, FrameError, convert

Row = dict[str, float]
Writer = Callable[[list[Row]], str]  # converted rows as the output's text
_SHOWN_JOINTS = 3  # joints listed per frame that does not fit


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "frames",
        help="convert joint values between frames; tell which frame a dataset is in",
        description="SO-101 joint values in raw ticks, encoder ticks, servo degrees, LeRobot's "
        "normalizations (today's and before PR #777) and the MuJoCo models' radians.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser(
        "list",
        help="the frames, their units and zero poses",
        description="List the joint frames so101d converts between, with their units and "
        "zero poses.",
    )
    listing.set_defaults(handler=show_frames)

    converting = commands.add_parser(
        "convert",
        help="convert six joint values, or a JSON/CSV file of rows, from one frame to another",
        description="Convert joint values (shoulder_pan, shoulder_lift, elbow_flex, "
        "wrist_flex, wrist_roll, gripper) from one frame to another. A file of rows is JSON "
        "(a list of six-value lists, or of objects keyed by joint) or CSV (six columns, "
        "optionally under a header of joint names); the output has the same shape.",
    )
    _add_frame_option(converting, "--from", "source", "the values' frame", required=True)
    _add_frame_option(converting, "--to", "target", "the frame to convert to", required=True)
    _add_calibration_option(converting)
    converting.add_argument(
        "values", nargs="+", metavar="VALUE", help="six joint values, or one JSON/CSV file"
    )
    converting.set_defaults(handler=run_convert)

    detecting = commands.add_parser(
        "detect",
        help="which frame a dataset's joint statistics are in, and how to convert from it",
        description="For each frame, whether mean ± 2 std of every joint fits that frame's "
        "joint limits; the most likely frame; and the conversion (sign, scale and offset per "
        "joint) from it to --to. Exits 1 when no frame fits.",
    )
    detecting.add_argument(
        "--stats",
        type=Path,
        required=True,
        metavar="FILE",
        help="a LeRobot dataset's meta/stats.json, or JSON of per-joint {mean, std}",
    )
    detecting.add_argument(
        "--key",
        help="the stats.json feature to read (default: observation.state, else action)",
    )
    _add_calibration_option(detecting)
    _add_frame_option(detecting, "--to", "target", "the frame to convert to (default: lerobot)")
    detecting.add_argument("--json", action="store_true", help="print JSON")
    detecting.set_defaults(handler=run_detect, target=Frame.LEROBOT)


def _add_frame_option(
    parser: argparse.ArgumentParser, flag: str, dest: str, help_text: str, required: bool = False
) -> None:
    parser.add_argument(
        flag, dest=dest, type=Frame, choices=list(Frame), required=required, help=help_text
    )


def _add_calibration_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        type=Path,
        metavar="FILE",
        help="the arm's LeRobot calibration file (needed for raw, encoder, servo_deg and "
        "lerobot_range, and between LeRobot's frames and the ticks)",
    )


# -- list ----------------------------------------------------------------------------------


def show_frames(args: argparse.Namespace) -> int:
    width = max(len(frame) for frame in Frame)
    for frame, info in FRAMES.items():
        print(f"{frame:<{width}}  {info.units}")
        print(f"{'':<{width}}  zero: {info.zero}")
    return 0


# -- convert -------------------------------------------------------------------------------


def run_convert(args: argparse.Namespace) -> int:
    try:
        calibration = _calibration(args.calibration)
        if len(args.values) == 1 and not _is_number(args.values[0]):
            rows, write = _read_rows(Path(args.values[0]))
        else:
            rows, write = [_six_values(args.values)], _write_plain
        converted = [convert(row, args.source, args.target, calibration) for row in rows]
    except (ValueError, CalibrationFileError) as exc:  # FrameError, a broken calibration
        print(f"so101d frames convert: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(write(converted))
    return 0


def _calibration(path: Path | None) -> ArmCalibration | None:
    return None if path is None else read_calibration(path)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _six_values(texts: Sequence[str]) -> Row:
    if len(texts) != len(JOINTS):
        raise FrameError(
            f"give {len(JOINTS)} values ({', '.join(JOINTS)}) or one JSON/CSV file, "
            f"not {len(texts)} values"
        )
    return {joint: _number(text, joint) for joint, text in zip(JOINTS, texts, strict=True)}


def _number(value: object, where: str) -> float:
    if isinstance(value, str) and _is_number(value):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise FrameError(f"{where}: {value!r} is not a number")


def _read_rows(path: Path) -> tuple[list[Row], Writer]:
    """The rows of a JSON or CSV file, and a function writing converted rows in its shape."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise FrameError(f"{path}: cannot read it ({exc.strerror})") from None
    if path.suffix.lower() == ".json":
        return _json_rows(path, text)
    return _csv_rows(path, text)


def _json_rows(path: Path, text: str) -> tuple[list[Row], Writer]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FrameError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, list) or not document:
        raise FrameError(f"{path}: expected a non-empty JSON list of rows")
    if all(isinstance(row, dict) for row in document):
        rows = [_keyed_row(row, f"{path} row {n}") for n, row in enumerate(document, 1)]
        return rows, lambda converted: json.dumps(converted, indent=2) + "\n"
    rows = [_listed_row(row, f"{path} row {n}") for n, row in enumerate(document, 1)]
    return rows, lambda converted: json.dumps([list(r.values()) for r in converted]) + "\n"


def _keyed_row(row: Mapping[str, object], where: str) -> Row:
    unknown = sorted(set(row) - set(JOINTS))
    if unknown:
        raise FrameError(f"{where}: unknown joint {unknown[0]!r} (joints: {', '.join(JOINTS)})")
    return {joint: _number(row[joint], f"{where} {joint}") for joint in JOINTS if joint in row}


def _listed_row(row: object, where: str) -> Row:
    if not isinstance(row, list) or len(row) != len(JOINTS):
        raise FrameError(f"{where}: expected a list of {len(JOINTS)} values ({', '.join(JOINTS)})")
    return {joint: _number(v, f"{where} {joint}") for joint, v in zip(JOINTS, row, strict=True)}


def _csv_rows(path: Path, text: str) -> tuple[list[Row], Writer]:
    lines = [line for line in csv.reader(io.StringIO(text)) if line]
    header = bool(lines) and [cell.strip() for cell in lines[0]] == list(JOINTS)
    body = lines[1:] if header else lines
    if not body:
        raise FrameError(f"{path}: no rows")
    rows = [_listed_row([c.strip() for c in r], f"{path} line {n}") for n, r in enumerate(body, 1)]

    def write(converted: list[Row]) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if header:
            writer.writerow(JOINTS)
        writer.writerows([_shown(v) for v in r.values()] for r in converted)
        return out.getvalue()

    return rows, write


def _write_plain(converted: list[Row]) -> str:
    return " ".join(_shown(value) for value in converted[0].values()) + "\n"


def _shown(value: float) -> str:
    """Ticks as integers; other values to 12 significant digits, which drops float error
    (~1e-15) and keeps far more than a tick (~1e-3 of a degree)."""
    return str(value) if isinstance(value, int) else f"{value:.12g}"


# -- detect --------------------------------------------------------------------------------


def run_detect(args: argparse.Namespace) -> int:
    try:
        calibration = _calibration(args.calibration)
        source, stats = read_stats(args.stats, args.key)
    except (StatsError, CalibrationFileError) as exc:
        print(f"so101d frames detect: {exc}", file=sys.stderr)
        return 1
    detection = detect(stats, args.target, calibration)
    if args.json:
        print(json.dumps(_detection_json(detection, str(args.stats), source), indent=2))
    else:
        print(_render(detection, args.stats, source, calibration is not None))
    return 0 if detection.any_fits else 1


def _render(detection: Detection, path: Path, source: str, calibrated: bool) -> str:
    count = len(detection.frames[0].joints)
    lines = [
        f"{path}: {source}, {count} joints; a frame fits when mean ± {BAND_SIGMAS:g} std of "
        "every joint lies within its limits"
    ]
    if not calibrated:
        lines.append(
            "  (no --calibration: raw, encoder and servo_deg limits are a whole turn, "
            "lerobot_range is -100..100, the others the MuJoCo models' joint ranges)"
        )
    width = max(len(frame) for frame in Frame)
    lines.append("")
    lines.extend(f"  {fit.frame:<{width}}  {_verdict(fit)}" for fit in detection.frames)
    lines.append("")
    lines.extend(_conclusion(detection))
    return "\n".join(lines)


def _verdict(fit: FrameFit) -> str:
    if fit.fits:
        return "fits"
    failing = [j for j in fit.joints if not j.fits]
    outside = [
        f"{j.joint} {_num(j.stats.band[0])}..{_num(j.stats.band[1])} leaves "
        f"{_num(j.limits[0])}..{_num(j.limits[1])}" + ("" if j.mean_inside else " (mean outside)")
        for j in failing[:_SHOWN_JOINTS]
    ]
    more = len(failing) - _SHOWN_JOINTS
    return "no: " + "; ".join(outside) + (f"; and {more} more joints" if more > 0 else "")


def _conclusion(detection: Detection) -> list[str]:
    likely = detection.likely
    if likely is None:
        return ["No frame fits: in every frame some joint's mean lies outside its limits."]
    if detection.any_fits:
        lines = [f"Most likely: {likely} (the tightest frame that fits)."]
        if detection.tied:
            lines.append(
                f"It fits exactly as well as {', '.join(detection.tied)}: "
                "--calibration tells them apart."
            )
    else:
        lines = [
            f"No frame fits mean ± {BAND_SIGMAS:g} std on every joint.",
            f"Most likely: {likely} (every mean within its limits; its bands leave them the "
            "least).",
        ]
    if detection.conversion is None:
        return [*lines, f"No conversion to {detection.target}: {detection.conversion_problem}."]
    target = detection.target
    lines.append(f"To {target}, per joint: {target} = sign * scale * {likely} + offset")
    lines.append(f"  {'joint':<14} sign  {'scale':>12}  {'offset':>12}")
    for joint, linear in detection.conversion.items():
        lines.append(f"  {joint:<14} {_linear_columns(linear)}")
    return lines


def _linear_columns(linear: Linear | None) -> str:
    if linear is None:
        return "not linear here (the range crosses the encoder's seam)"
    sign = "+1" if linear.sign > 0 else "-1"
    return f"{sign:>4}  {abs(linear.scale):>12.10g}  {linear.offset:>12.10g}"


def _num(value: float) -> str:
    return f"{value:.4g}"


def _detection_json(detection: Detection, path: str, source: str) -> dict[str, Any]:
    return {
        "stats": path,
        "source": source,
        "frames": {
            str(fit.frame): {
                "fits": fit.fits,
                "means_inside": fit.plausible,
                "joints": {
                    j.joint: {
                        "band": list(j.stats.band),
                        "limits": list(j.limits),
                        "fits": j.fits,
                        "mean_inside": j.mean_inside,
                    }
                    for j in fit.joints
                },
            }
            for fit in detection.frames
        },
        "any_fits": detection.any_fits,
        "likely": detection.likely,
        "tied": list(detection.tied),
        "target": detection.target,
        "conversion": None
        if detection.conversion is None
        else {
            joint: None
            if linear is None
            else {"sign": linear.sign, "scale": linear.scale, "offset": linear.offset}
            for joint, linear in detection.conversion.items()
        },
        "conversion_problem": detection.conversion_problem,
    }
