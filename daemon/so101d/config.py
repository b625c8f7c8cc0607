"""The daemon's TOML configuration: schema, defaults, and errors that name the key and the file.

Every key has a type and a range; an unknown key is an error (with a suggestion when it looks
like a typo), because a silently ignored misspelling of a safety limit is worse than a daemon
that refuses to start. Relative paths are taken relative to the configuration file.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from so101d.calibration.locate import check_arm_id
from so101d.calibration.model import DEFAULT_MOTOR_MAP, JOINTS
from so101d.feetech.protocol import MAX_ID
from so101d.feetech.registers import BAUD_RATES

if sys.version_info >= (3, 11):  # noqa: UP036 - tomli is the same parser for older Pythons
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_SOCKET_PATH",
    "JOINTS",
    "ArmConfig",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "PairConfig",
    "WebConfig",
    "load_config",
    "parse_config",
    "socket_despite_errors",
]

DEFAULT_CONFIG_PATH = Path("/etc/so101d/config.toml")
DEFAULT_SOCKET_PATH = Path("/run/so101d/api.sock")
DEFAULT_WEB_LISTEN = "0.0.0.0:8101"
DEFAULT_WEB_TOKEN_PATH = Path("/etc/so101d/web-token")
TEMPLATE = "deploy/config.example.toml"
STOP_POLICIES = ("release", "hold", "rest")
WRIST_ROLL_CALIBRATIONS = ("full_turn", "sweep")
ROLES = ("leader", "follower")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_SOCKET_PATH = 107  # bytes in sockaddr_un.sun_path, less the terminating NUL
_PAIR_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SYNTAX_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_MAX_VALUE_TEXT = 60
T = TypeVar("T")


@dataclass(frozen=True)
class ArmConfig:
    port: str
    id: str  # calibration id: the file is <id>.json in the arm's calibration directory
    motor_ids: dict[str, int]  # joint -> motor id on the bus


@dataclass(frozen=True)
class PairConfig:
    name: str
    leader: ArmConfig
    follower: ArmConfig
    rate_hz: float
    engage_speed_dps: float
    max_speed_dps: float
    clamp_margin_deg: float
    max_temperature_c: float
    resume_temperature_c: float
    min_voltage_v: float
    max_voltage_v: float
    max_load_percent: float
    overload_time_s: float
    stop_policy: str
    rest_pose: dict[str, float] | None  # degrees from the calibrated middle, per joint
    bus_timeout_ms: float
    baudrate: int
    stall_timeout_s: float  # no progress for this long: the supervisor restarts the pair


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: where ``so101d web`` listens (None: disabled) and its access token file."""

    listen: tuple[str, int] | None = ("0.0.0.0", 8101)
    token_file: Path = DEFAULT_WEB_TOKEN_PATH


@dataclass(frozen=True)
class Config:
    path: Path
    calibration_dir: Path
    socket: Path
    stats_interval_s: float
    log_level: str
    pairs: dict[str, PairConfig]
    calibration_idle_timeout_s: float = 600.0  # a session no client asks about ends
    calibration_wrist_roll: str = "full_turn"  # LeRobot's 0..4095, or "sweep": as swept
    web: WebConfig = WebConfig()
    autocal: dict[str, float] = field(default_factory=dict)  # [autocal] keys given


class ConfigError(Exception):
    """A configuration that cannot be used: which file, which key, which value, and why.

    ``key`` is dotted (``pair.main.rate_hz``) or None for file-level problems; ``line`` is set
    for TOML syntax errors.
    """

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        key: str | None = None,
        value: object = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.value = value  # None when there is no value to show (TOML has no null)
        self.line = line
        self.message = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        if self.line is not None:
            return f"{self.path}: line {self.line}: {self.message}"
        if self.key is None:
            return f"{self.path}: {self.message}"
        if self.value is None:
            return f"{self.path}: {self.key}: {self.message}"
        return f"{self.path}: {self.key} = {_toml_text(self.value)}: {self.message}"


class ConfigErrors(ConfigError):
    """Every problem found in one file, so a person fixes them in one pass.

    Its attributes are the first problem's; ``errors`` holds them all, and the text is one
    line per problem.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(
            first.path, first.message, key=first.key, value=first.value, line=first.line
        )
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


@dataclass(frozen=True)
class _Range:
    low: float
    high: float = math.inf
    low_open: bool = False  # the low end itself is excluded

    def __contains__(self, value: float) -> bool:
        above_low = value > self.low if self.low_open else value >= self.low
        return above_low and value <= self.high

    def describe(self) -> str:
        low = f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        return low if self.high == math.inf else f"{low} and at most {self.high:g}"


_ABOVE_ZERO = _Range(0, low_open=True)

# Per-pair numbers with a default: (default, allowed range). resume_temperature_c is read
# separately because its default follows max_temperature_c.
_PAIR_NUMBERS: dict[str, tuple[float, _Range]] = {
    "rate_hz": (100, _Range(1, 500)),
    "engage_speed_dps": (30.0, _Range(0, 360, low_open=True)),
    "max_speed_dps": (180.0, _Range(0, 360, low_open=True)),
    "clamp_margin_deg": (2.0, _Range(0, 90)),
    "max_temperature_c": (60, _Range(20, 100)),
    "min_voltage_v": (6.0, _Range(0, 30)),
    "max_voltage_v": (13.5, _Range(0, 30, low_open=True)),
    "max_load_percent": (80, _Range(0, 100, low_open=True)),
    "overload_time_s": (0.5, _Range(0, 60, low_open=True)),
    "bus_timeout_ms": (25, _Range(0, 1000, low_open=True)),
}
_RESUME_BELOW_MAX_C = 10
# A pair is restarted after this long without progress; by default long enough for many
# bus timeouts in a row (a precheck of a silent arm times out once per motor).
_STALL_DEFAULT_MIN_S = 5.0
_STALL_DEFAULT_TIMEOUTS = 20
_STALL_TIMEOUT = _Range(0, 600, low_open=True)
_TEMPERATURE = _Range(0, 100)
_JOINT_DEGREES = _Range(-180, 180)
_MOTOR_ID = _Range(0, MAX_ID)
_STATS_INTERVAL = _Range(0.1, 3600)
_IDLE_TIMEOUT = _Range(1, 86400)
# [autocal]: the automatic calibration's limits; absent keys keep its defaults.
AUTOCAL_KEYS: dict[str, _Range] = {
    "torque_limit_pct": _Range(1, 100),
    "gripper_torque_limit_pct": _Range(1, 100),
    "gravity_torque_limit_pct": _Range(1, 100),
    "speed_dps": _Range(1, 180),
    "warn_temperature_c": _Range(20, 70),
    "pause_temperature_c": _Range(20, 70),
    "resume_temperature_c": _Range(20, 70),
    "stop_temperature_c": _Range(20, 70),
    "max_current_ma": _Range(100, 3000),
    "cooldown_s": _Range(0, 3600),
}


def load_config(path: str | Path) -> Config:
    """Read and validate the file at ``path``; ConfigError if it is missing or invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            "no such file: so101d reads its configuration from here; copy the commented "
            f"template {TEMPLATE} to this path and edit it, or pass --config PATH",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read the configuration: {_reason(exc)}") from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate the TOML ``text`` of the file ``path`` (used in messages and for relative paths)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, text, path) from None
    top = _Table(document, "", path)
    config = _read_config(top)
    if top.errors:
        raise ConfigErrors(top.errors)
    assert config is not None
    return config


def socket_despite_errors(path: str | Path) -> Path | None:
    """The control socket the file at ``path`` sets (the default when it sets none), read on
    its own so that a mistake elsewhere in the file does not hide it; None when the file is
    not readable TOML or its ``socket`` is not a usable string."""
    path = Path(path)
    try:
        top = _Table(tomllib.loads(path.read_text(encoding="utf-8")), "", path)
        return _resolve(top.text("socket", str(DEFAULT_SOCKET_PATH)), path.parent)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError):
        return None


# -- the schema ----------------------------------------------------------------------------


def _read_config(top: _Table) -> Config | None:
    """The configuration; None when ``top.errors`` holds what is wrong with it."""
    base = top.path.parent
    calibration_dir = _resolve(top.text("calibration_dir", "/var/lib/so101d/calibration"), base)
    socket = _resolve(top.text("socket", str(DEFAULT_SOCKET_PATH)), base)
    stats_interval_s = top.number("stats_interval_s", 5.0, _STATS_INTERVAL)
    log_level = top.choice("log_level", "info", LOG_LEVELS)
    idle_timeout_s = top.number("calibration_idle_timeout_s", 600.0, _IDLE_TIMEOUT)
    wrist_roll = top.choice("calibration_wrist_roll", "full_turn", WRIST_ROLL_CALIBRATIONS)
    calibration_dir = _resolve(
        top.collect(lambda: top.text("calibration_dir", "/var/lib/so101d/calibration"), "."),
        base,
    )
    socket = _resolve(top.collect(lambda: top.text("socket", str(DEFAULT_SOCKET_PATH)), "."), base)
    stats_interval_s = top.collect(
        lambda: top.number("stats_interval_s", 5.0, _STATS_INTERVAL), 0.0
    )
    log_level = top.collect(lambda: top.choice("log_level", "info", LOG_LEVELS), "info")
    web = top.collect(lambda: _read_web(top.optional_table("web"), base), WebConfig())
    pair_tables = None
    if not top.has("pair"):
        top.errors.append(
            top.missing("pair", f"no pair defined: add a [pair.NAME] table (see {TEMPLATE})")
        )
    else:
        pair_tables = top.collect(lambda: top.table("pair"), None)
    autocal = top.collect(lambda: _read_autocal(top), dict[str, float]())
    top.reject_unknown()
    top.collect(lambda: _check_socket_path(top, socket), None)
    tables = _pair_tables(pair_tables) if pair_tables is not None else []
    pairs = {name: pair for name, table in tables if (pair := _read_pair(name, table))}
    top.collect(lambda: _check_unique_ports(top.path, pairs.values()), None)
    if top.errors:
        return None
    return Config(
        top.path,
        calibration_dir,
        socket,
        stats_interval_s,
        log_level,
        pairs,
        calibration_idle_timeout_s=idle_timeout_s,
        calibration_wrist_roll=wrist_roll,
        web=web,
        autocal=autocal,
    )


def _read_web(table: _Table | None, base: Path) -> WebConfig:
    if table is None:
        return WebConfig()
    listen = table.collect(
        lambda: _listen_address(table, table.value("listen", DEFAULT_WEB_LISTEN)), None
    )
    token_file = _resolve(
        table.collect(lambda: table.text("token_file", str(DEFAULT_WEB_TOKEN_PATH)), "."), base
    )
    table.reject_unknown()
    return WebConfig(listen, token_file)


def _listen_address(table: _Table, value: object) -> tuple[str, int] | None:
    """``"HOST:PORT"`` (``"[::]:8101"`` for IPv6) as (host, port); ``""``: None, disabled."""
    if value == "":
        return None
    usage = 'must be "HOST:PORT" such as "0.0.0.0:8101", or "" to disable the web process'
    if not isinstance(value, str) or ":" not in value:
        raise table.error("listen", usage, value)
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise table.error("listen", usage + " (port 1..65535)", value)
    return host, int(port)


def _read_autocal(top: _Table) -> dict[str, float]:
    table = top.optional_table("autocal")
    if table is None:
        return {}
    values: dict[str, float] = {}
    for key, allowed in AUTOCAL_KEYS.items():
        if table.has(key):
            try:
                values[key] = table.number(key, None, allowed)
            except ConfigError as exc:
                table.errors.append(exc)
    table.reject_unknown()
    return values


def _pair_tables(pairs: _Table) -> list[tuple[str, _Table]]:
    if not pairs.data:
        pairs.errors.append(
            pairs.error(None, "no pair defined: add at least one [pair.NAME] table")
        )
    found = []
    for name in pairs.data:
        read = functools.partial(pairs.table, name, what="a pair table such as [pair.main]")
        table = pairs.collect(read, None)
        if table is None:
            continue
        if not _PAIR_NAME.fullmatch(name):
            table.errors.append(
                table.error(None, "pair names may use only letters, digits, '_' and '-'")
            )
        found.append((name, table))
    return found


def _read_pair(name: str, table: _Table) -> PairConfig | None:
    """The pair; None when ``table.errors`` holds what is wrong with it."""
    errors_before = len(table.errors)
    _reject_replaced_keys(table)
    numbers = {
        key: table.collect(functools.partial(table.number, key, default, rng), default)
        for key, (default, rng) in _PAIR_NUMBERS.items()
    }
    max_temperature = numbers["max_temperature_c"]
    resume_default = max_temperature - _RESUME_BELOW_MAX_C
    resume_temperature = table.collect(
        lambda: table.number("resume_temperature_c", resume_default, _TEMPERATURE), resume_default
    )
    stall_default = max(
        _STALL_DEFAULT_MIN_S, _STALL_DEFAULT_TIMEOUTS * numbers["bus_timeout_ms"] / 1000
    )
    stall_timeout_s = table.collect(
        lambda: table.number("stall_timeout_s", stall_default, _STALL_TIMEOUT), stall_default
    )
    stop_policy = table.collect(
        lambda: table.choice("stop_policy", "release", STOP_POLICIES), "release"
    )
    rest_table = table.collect(lambda: table.optional_table("rest_pose"), None)
    baudrate = table.collect(lambda: table.integer("baudrate", 1_000_000, _ABOVE_ZERO), 1_000_000)
    arms = [table.collect(functools.partial(_read_arm_in, table, role), None) for role in ROLES]
    table.reject_unknown()
    table.collect(lambda: _check_pair_limits(table, numbers, resume_temperature, baudrate), None)
    rest_pose = table.collect(lambda: _read_rest_pose(table, stop_policy, rest_table), None)
    leader, follower = arms
    if len(table.errors) > errors_before or leader is None or follower is None:
        return None
    return PairConfig(
        name=name,
        leader=leader,
        follower=follower,
        resume_temperature_c=resume_temperature,
        stop_policy=stop_policy,
        rest_pose=rest_pose,
        baudrate=baudrate,
        stall_timeout_s=stall_timeout_s,
        **numbers,
    )


# Keys of earlier versions whose meaning changed: naming the new key beats "unknown key".
_REPLACED_KEYS = {
    "max_step_deg": (
        "was replaced by max_speed_dps: a per-cycle step grew with rate_hz (4° at 100 Hz is "
        "400 °/s, faster than the servo). Remove it and set max_speed_dps in degrees per "
        "second (default 180)"
    ),
}


def _reject_replaced_keys(table: _Table) -> None:
    for key, message in _REPLACED_KEYS.items():
        if table.has(key):  # known, so not also reported as an unknown key
            table.errors.append(table.error(key, message, table.data[key]))


def _check_pair_limits(
    table: _Table, numbers: Mapping[str, float], resume_temperature: float, baudrate: int
) -> None:
    max_temperature = numbers["max_temperature_c"]
    if baudrate not in BAUD_RATES.values():
        rates = ", ".join(str(rate) for rate in sorted(BAUD_RATES.values()))
        raise table.error("baudrate", f"the servos support {rates}", baudrate)
    if resume_temperature >= max_temperature:
        raise table.error(
            "resume_temperature_c",
            f"must be below max_temperature_c ({max_temperature:g}) so a paused pair can cool",
            resume_temperature,
        )
    if numbers["min_voltage_v"] >= numbers["max_voltage_v"]:
        raise table.error(
            "min_voltage_v",
            f"must be below max_voltage_v ({numbers['max_voltage_v']:g})",
            numbers["min_voltage_v"],
        )


def _read_arm_in(pair: _Table, role: str) -> ArmConfig | None:
    return _read_arm(pair.table(role))


def _read_arm(table: _Table) -> ArmConfig | None:
    errors_before = len(table.errors)
    port = table.collect(lambda: table.text("port"), "")
    arm_id = table.collect(lambda: table.text("id"), "")
    motor_table = table.collect(lambda: table.optional_table("motor_ids"), None)
    table.reject_unknown()
    if arm_id:
        try:
            check_arm_id(arm_id)
        except ValueError as exc:
            table.errors.append(table.error("id", str(exc), arm_id))
    motor_ids = dict(DEFAULT_MOTOR_MAP) if motor_table is None else _read_motor_ids(motor_table)
    if len(table.errors) > errors_before:
        return None
    return ArmConfig(port=port, id=arm_id, motor_ids=motor_ids)


def _read_motor_ids(table: _Table) -> dict[str, int]:
    motor_ids = {
        joint: table.collect(functools.partial(table.integer, joint, None, _MOTOR_ID), -1)
        for joint in JOINTS
    }
    table.reject_unknown()
    seen: dict[int, str] = {}
    for joint, motor in motor_ids.items():
        if motor in seen and motor >= 0:
            table.errors.append(
                table.error(joint, f"motor {motor} is already {seen[motor]}'s", motor)
            )
        seen.setdefault(motor, joint)
    return motor_ids


def _read_rest_pose(
    pair: _Table, stop_policy: str, table: _Table | None
) -> dict[str, float] | None:
    if table is None:
        if stop_policy == "rest":
            raise pair.error(
                "rest_pose",
                'stop_policy = "rest" needs a rest pose: add '
                "rest_pose = { shoulder_pan = 0.0, ... } in degrees from the calibrated middle",
            )
        return None
    if stop_policy != "rest":
        raise pair.error(
            "rest_pose",
            f'is used only with stop_policy = "rest" (this pair has "{stop_policy}"); '
            "remove it or change stop_policy",
        )
    pose = {
        joint: table.number(joint, None, _JOINT_DEGREES) for joint in JOINTS if table.has(joint)
    }
    table.reject_unknown()
    if not pose:
        raise pair.error(
            "rest_pose", f"names no joint; give degrees for some of {', '.join(JOINTS)}"
        )
    return pose


def _check_socket_path(top: _Table, socket: Path) -> None:
    if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise top.error(
            "socket",
            f"is longer than the {MAX_SOCKET_PATH} bytes a Unix socket path may have",
            str(socket),
        )


def _check_unique_ports(path: Path, pairs: Iterable[PairConfig]) -> None:
    owners: dict[str, str] = {}
    for pair in pairs:
        for role, arm in (("leader", pair.leader), ("follower", pair.follower)):
            key = f"pair.{pair.name}.{role}.port"
            owner = owners.setdefault(os.path.normpath(arm.port), key)
            if owner != key:
                raise ConfigError(
                    path,
                    f"is also {owner}: each arm needs its own serial port",
                    key=key,
                    value=arm.port,
                )


def _resolve(text: str, base: Path) -> Path:
    return base / Path(text).expanduser()


# -- reading one table ---------------------------------------------------------------------


class _Table:
    """One TOML table being read: typed getters that name the dotted key and file on error.

    Every key a getter asks for counts as known; ``reject_unknown()`` then refuses the rest.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        prefix: str,
        path: Path,
        errors: list[ConfigError] | None = None,
    ) -> None:
        self.data = data
        self.prefix = prefix
        self.path = path
        self.errors = [] if errors is None else errors  # shared by a file's tables
        self._known: set[str] = set()

    def collect(self, read: Callable[[], T], fallback: T) -> T:
        """``read()``, or ``fallback`` with its error kept, so reading goes on to the rest."""
        try:
            return read()
        except ConfigError as exc:
            self.errors.append(exc)
            return fallback

    def key(self, name: str | None) -> str | None:
        if name is None:
            return self.prefix or None
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str | None, message: str, value: object = None) -> ConfigError:
        return ConfigError(self.path, message, key=self.key(name), value=value)

    def has(self, name: str) -> bool:
        self._known.add(name)
        return name in self.data

    def value(self, name: str, default: Any) -> Any:
        """The raw value, or ``default`` (None: the key is required)."""
        if self.has(name):
            return self.data[name]
        if default is None:
            raise self.missing(name)
        return default

    def number(self, name: str, default: float | None, allowed: _Range) -> float:
        value = self.value(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"must be a number {allowed.describe()}", value)
        if not math.isfinite(value) or value not in allowed:
            raise self.error(name, f"must be {allowed.describe()}", value)
        return float(value)

    def integer(self, name: str, default: int | None, allowed: _Range) -> int:
        value = self.value(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be a whole number {allowed.describe()}", value)
        if value not in allowed:
            raise self.error(name, f"must be {allowed.describe()}", value)
        return value

    def text(self, name: str, default: str | None = None) -> str:
        value = self.value(name, default)
        if not isinstance(value, str):
            raise self.error(name, 'must be a string in quotes, e.g. "..."', value)
        if not value:
            raise self.error(name, "must not be empty", value)
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in options:
            hint = _suggestion(value, options)
            raise self.error(name, f"must be one of {', '.join(options)}{hint}", value)
        return value

    def table(self, name: str, what: str = "a table") -> _Table:
        value = self.value(name, None)
        if not isinstance(value, dict):
            raise self.error(name, f"must be {what}", value)
        return _Table(value, self.key(name) or name, self.path, self.errors)

    def optional_table(self, name: str) -> _Table | None:
        return self.table(name) if self.has(name) else None

    def reject_unknown(self) -> None:
        for name, value in self.data.items():
            if name not in self._known:
                hint = _suggestion(name, sorted(self._known))
                self.errors.append(self.error(name, f"unknown key{hint or '; remove it'}", value))

    def missing(self, name: str, message: str | None = None) -> ConfigError:
        # A required key that is absent is most often a misspelt one.
        typo = difflib.get_close_matches(name, list(self.data), n=1)
        found = f" (found {typo[0]!r}: a typo?)" if typo else ""
        where = f"[{self.prefix}]" if self.prefix else "the top level"
        return self.error(name, f"{message or f'missing: add it to {where}'}{found}")


def _suggestion(word: str, options: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {matches[0]}?" if matches else ""


def _toml_text(value: object) -> str:
    """``value`` as it would be written in TOML, shortened for messages."""
    text = _toml(value)
    return text if len(text) <= _MAX_VALUE_TEXT else text[: _MAX_VALUE_TEXT - 3] + "..."


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return str(value)


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> ConfigError:
    message = str(exc)
    position = _SYNTAX_POSITION.search(message)
    if position:
        line = int(position.group(1))
        message = f"{message[: position.start()]} (column {position.group(2)})"
    else:  # "(at end of document)"
        line = max(1, len(text.splitlines()))
    return ConfigError(path, f"invalid TOML: {message}", line=line)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
