"""The TOML configuration: defaults, the example file, and errors naming key, value and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from so101d.cli import build_parser, main
from so101d.config import (
    DEFAULT_CONFIG_PATH,
    JOINTS,
    ArmConfig,
    Config,
    ConfigError,
    ConfigErrors,
    PairConfig,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "config.example.toml"
FILE = Path("/etc/so101d/config.toml")

MINIMAL = """
[pair.main]
leader.port = "/dev/so101_leader"
leader.id = "main_leader"
follower.port = "/dev/so101_follower"
follower.id = "main_follower"
"""


def parse(extra: str = "", *, pair_extra: str = "") -> Config:
    """The minimal config, with ``extra`` at the top level and ``pair_extra`` in [pair.main]."""
    return parse_config(extra + MINIMAL + pair_extra, FILE)


def error_of(extra: str = "", *, pair_extra: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(extra, pair_extra=pair_extra)
    assert str(FILE) in str(caught.value)
    return caught.value


# -- what a valid file gives -------------------------------------------------------------


def test_defaults_fill_everything_but_ports_and_ids() -> None:
    config = parse()
    assert config.path == FILE
    assert config.calibration_dir == Path("/var/lib/so101d/calibration")
    assert config.socket == Path("/run/so101d/api.sock")
    assert (config.stats_interval_s, config.log_level) == (5.0, "info")
    assert list(config.pairs) == ["main"]
    default_ids = dict(zip(JOINTS, range(1, 7), strict=True))
    assert config.pairs["main"] == PairConfig(
        name="main",
        leader=ArmConfig("/dev/so101_leader", "main_leader", default_ids),
        follower=ArmConfig("/dev/so101_follower", "main_follower", default_ids),
        rate_hz=100.0,
        engage_speed_dps=30.0,
        max_speed_dps=180.0,
        clamp_margin_deg=2.0,
        max_temperature_c=60.0,
        resume_temperature_c=50.0,
        min_voltage_v=6.0,
        max_voltage_v=13.5,
        max_load_percent=80.0,
        overload_time_s=0.5,
        stop_policy="release",
        rest_pose=None,
        bus_timeout_ms=25.0,
        baudrate=1_000_000,
        stall_timeout_s=5.0,
    )


def test_resume_temperature_defaults_to_ten_below_the_maximum() -> None:
    assert parse(pair_extra="max_temperature_c = 55").pairs["main"].resume_temperature_c == 45.0


def test_the_stall_timeout_outlasts_twenty_bus_timeouts_by_default() -> None:
    assert parse(pair_extra="bus_timeout_ms = 100").pairs["main"].stall_timeout_s == 5.0
    assert parse(pair_extra="bus_timeout_ms = 1000").pairs["main"].stall_timeout_s == 20.0
    pair = parse(pair_extra="bus_timeout_ms = 1000\nstall_timeout_s = 0.5").pairs["main"]
    assert pair.stall_timeout_s == 0.5


def test_integers_are_accepted_for_float_keys() -> None:
    pair = parse(pair_extra="engage_speed_dps = 45\nrate_hz = 60").pairs["main"]
    assert pair.engage_speed_dps == 45.0 and isinstance(pair.engage_speed_dps, float)
    assert pair.rate_hz == 60.0


def test_rest_policy_with_a_partial_pose() -> None:
    pair = parse(
        pair_extra='stop_policy = "rest"\nrest_pose = { shoulder_lift = -90, elbow_flex = 90.5 }'
    ).pairs["main"]
    assert pair.stop_policy == "rest"
    assert pair.rest_pose == {"shoulder_lift": -90.0, "elbow_flex": 90.5}


def test_custom_motor_ids_and_several_pairs() -> None:
    ids = "{ shoulder_pan = 11, shoulder_lift = 12, elbow_flex = 13, wrist_flex = 14, "
    ids += "wrist_roll = 15, gripper = 0 }"
    config = parse(
        pair_extra=f"follower.motor_ids = {ids}\n"
        "[pair.second-arm_2]\n"
        'leader.port = "/dev/serial/by-id/usb-1a86_USB_Single_Serial_575E003208-if00"\n'
        'leader.id = "l2"\n'
        'follower.port = "/dev/so101_follower2"\n'
        'follower.id = "f2"\n'
    )
    assert list(config.pairs) == ["main", "second-arm_2"]
    assert config.pairs["main"].follower.motor_ids == dict(
        zip(JOINTS, [11, 12, 13, 14, 15, 0], strict=True)
    )


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf.toml"
    path.write_text('calibration_dir = "calib"\nsocket = "run/api.sock"\n' + MINIMAL)
    config = load_config(path)
    assert config.calibration_dir == tmp_path / "calib"
    assert config.socket == tmp_path / "run" / "api.sock"


def test_the_example_file_is_valid_and_spells_out_the_defaults() -> None:
    config = load_config(EXAMPLE)
    defaults = parse()
    assert config.path == EXAMPLE
    assert (config.calibration_dir, config.socket) == (defaults.calibration_dir, defaults.socket)
    assert (config.stats_interval_s, config.log_level) == (5.0, "info")
    assert config.pairs == defaults.pairs


def test_the_example_rest_pose_is_valid_when_uncommented() -> None:
    text = EXAMPLE.read_text()
    text = text.replace("# rest_pose =", "rest_pose =").replace(
        'stop_policy = "release"', 'stop_policy = "rest"'
    )
    pose = parse_config(text, EXAMPLE).pairs["main"].rest_pose
    assert pose is not None and list(pose) == list(JOINTS)


# -- errors --------------------------------------------------------------------------------


def test_unknown_key_names_file_and_key_and_suggests_the_spelling() -> None:
    error = error_of(pair_extra="rate_hzz = 50")
    assert error.key == "pair.main.rate_hzz"
    assert str(error) == f"{FILE}: pair.main.rate_hzz = 50: unknown key; did you mean rate_hz?"


def test_unknown_top_level_key() -> None:
    error = error_of('log_levle = "debug"\n')
    assert error.key == "log_levle"
    assert "did you mean log_level?" in str(error)


def test_unknown_key_inside_an_arm() -> None:
    error = error_of(pair_extra="leader.baud = 5")
    assert error.key == "pair.main.leader.baud"
    assert "unknown key" in error.message


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        ("rate_hz = true", "rate_hz", "must be a number"),
        ('rate_hz = "100"', "rate_hz", "must be a number"),
        ("rate_hz = 0.5", "rate_hz", "at least 1 and at most 500"),
        ("rate_hz = 501", "rate_hz", "at least 1 and at most 500"),
        ("rate_hz = nan", "rate_hz", "at least 1"),
        ("engage_speed_dps = 0", "engage_speed_dps", "greater than 0 and at most 360"),
        ("engage_speed_dps = 361", "engage_speed_dps", "at most 360"),
        ("max_speed_dps = -1", "max_speed_dps", "greater than 0"),
        ("max_step_deg = 4.0", "max_step_deg", "was replaced by max_speed_dps"),
        ("clamp_margin_deg = -0.5", "clamp_margin_deg", "at least 0"),
        ("max_load_percent = 120", "max_load_percent", "at most 100"),
        ("overload_time_s = inf", "overload_time_s", "at most 60"),
        ("bus_timeout_ms = 0", "bus_timeout_ms", "greater than 0"),
        ("stall_timeout_s = 0", "stall_timeout_s", "greater than 0 and at most 600"),
        ("baudrate = 1e6", "baudrate", "whole number"),
        ("baudrate = 9600", "baudrate", "1000000"),
        ('stop_policy = "relase"', "stop_policy", "did you mean release?"),
        ("stop_policy = 1", "stop_policy", "must be a string"),
        ("resume_temperature_c = 60", "resume_temperature_c", "below max_temperature_c (60)"),
        ("min_voltage_v = 14", "min_voltage_v", "below max_voltage_v"),
    ],
)
def test_bad_pair_values_name_key_and_value(setting: str, key: str, fragment: str) -> None:
    error = error_of(pair_extra=setting)
    assert error.key == f"pair.main.{key}"
    assert str(error).startswith(f"{FILE}: pair.main.{key} = ")
    assert fragment in str(error)


def test_a_range_error_reads_well() -> None:
    error = error_of(pair_extra="rate_hz = 501")
    assert str(error) == f"{FILE}: pair.main.rate_hz = 501: must be at least 1 and at most 500"


def test_an_empty_port_and_an_arm_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError, match="must not be empty") as caught:
        parse_config(MINIMAL.replace('"/dev/so101_leader"', '""'), FILE)
    assert caught.value.key == "pair.main.leader.port"
    text = MINIMAL.replace("leader.port", "# ").replace("leader.id", "# ")
    with pytest.raises(ConfigError, match="must be a table") as caught:
        parse_config(text + 'leader = "/dev/so101_leader"\n', FILE)
    assert caught.value.key == "pair.main.leader"


@pytest.mark.parametrize(
    ("setting", "key", "fragment"),
    [
        ("stats_interval_s = 0", "stats_interval_s", "at least 0.1"),
        ('log_level = "verbose"', "log_level", "debug, info, warning, error"),
        ("calibration_dir = 3", "calibration_dir", "must be a string"),
        ('socket = "/run/' + "x" * 110 + '.sock"', "socket", "107 bytes"),
    ],
)
def test_bad_top_level_values(setting: str, key: str, fragment: str) -> None:
    error = error_of(setting + "\n")
    assert error.key == key
    assert fragment in str(error)


def test_a_pair_is_required_and_a_misspelt_table_is_pointed_out() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('log_level = "info"\n', FILE)
    assert caught.value.key == "pair"
    assert "no pair defined" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL.replace("[pair.main]", "[pairs.main]"), FILE)
    assert "found 'pairs'" in str(caught.value)


def test_an_empty_pair_table_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no pair defined"):
        parse_config("[pair]\n", FILE)


def test_pair_names_are_restricted() -> None:
    with pytest.raises(ConfigError, match="letters, digits") as caught:
        parse_config(MINIMAL.replace("[pair.main]", '[pair."main pair"]'), FILE)
    assert caught.value.key == "pair.main pair"


def test_a_missing_arm_or_port_is_named_with_a_typo_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL.replace("leader.port", "leader.prot"), FILE)
    assert caught.value.key == "pair.main.leader.port"
    assert "missing" in str(caught.value) and "'prot'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL.replace("follower.", "folower."), FILE)
    assert caught.value.key == "pair.main.follower"
    assert "'folower'" in str(caught.value)


def test_an_arm_id_that_is_not_a_file_name() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL.replace('"main_leader"', '"../main_leader"'), FILE)
    assert caught.value.key == "pair.main.leader.id"


def test_a_port_used_twice_in_one_pair() -> None:
    text = MINIMAL.replace("/dev/so101_follower", "/dev/so101_leader")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE)
    assert caught.value.key == "pair.main.follower.port"
    assert "pair.main.leader.port" in str(caught.value)


def test_a_port_shared_between_pairs_even_when_spelt_differently() -> None:
    second = (
        MINIMAL.replace("[pair.main]", "[pair.b]")
        .replace('"/dev/so101_leader"', '"/dev/./so101_follower"')
        .replace('"/dev/so101_follower"', '"/dev/other"')
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + second, FILE)
    assert caught.value.key == "pair.b.leader.port"
    assert "pair.main.follower.port" in str(caught.value)


@pytest.mark.parametrize(
    ("motor_ids", "key", "fragment"),
    [
        ("{ shoulder_pan = 1 }", "shoulder_lift", "missing"),
        (
            "{ shoulder_pan = 1, shoulder_lift = 2, elbow_flex = 3, wrist_flex = 4, "
            "wrist_roll = 5, gripper = 5 }",
            "gripper",
            "motor 5 is already wrist_roll's",
        ),
        (
            "{ shoulder_pan = 1, shoulder_lift = 2, elbow_flex = 3, wrist_flex = 4, "
            "wrist_roll = 5, gripper = 254 }",
            "gripper",
            "at most 253",
        ),
        (
            "{ shoulder_pan = 1, shoulder_lift = 2, elbow_flex = 3, wrist_flex = 4, "
            "wrist_roll = 5, gripper = true }",
            "gripper",
            "whole number",
        ),
        (
            "{ shoulder_pan = 1, shoulder_lift = 2, elbow_flex = 3, wrist_flex = 4, "
            "wrist_roll = 5, gripper = 6, griper = 7 }",
            "griper",
            "did you mean gripper?",
        ),
    ],
)
def test_motor_ids_map_exactly_the_six_joints_to_distinct_ids(
    motor_ids: str, key: str, fragment: str
) -> None:
    error = error_of(pair_extra=f"leader.motor_ids = {motor_ids}")
    assert error.key == f"pair.main.leader.motor_ids.{key}"
    assert fragment in str(error)


def test_rest_pose_is_required_for_the_rest_policy_and_only_then() -> None:
    error = error_of(pair_extra='stop_policy = "rest"')
    assert error.key == "pair.main.rest_pose"
    error = error_of(pair_extra="rest_pose = { elbow_flex = 90 }")
    assert error.key == "pair.main.rest_pose" and "stop_policy" in error.message


@pytest.mark.parametrize(
    ("pose", "key", "fragment"),
    [
        ("{ elbow_flexx = 90 }", "rest_pose.elbow_flexx", "did you mean elbow_flex?"),
        ("{ elbow_flex = 200 }", "rest_pose.elbow_flex", "at most 180"),
        ('{ elbow_flex = "up" }', "rest_pose.elbow_flex", "must be a number"),
        ("{ }", "rest_pose", "names no joint"),
    ],
)
def test_rest_pose_names_only_known_joints_in_range(pose: str, key: str, fragment: str) -> None:
    error = error_of(pair_extra=f'stop_policy = "rest"\nrest_pose = {pose}')
    assert error.key == f"pair.main.{key}"
    assert fragment in str(error)


def test_toml_syntax_errors_name_file_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + "rate_hz = \n", FILE)
    assert caught.value.line == 7
    assert str(caught.value).startswith(f"{FILE}: line 7: invalid TOML")


def test_a_missing_file_says_where_it_looked_and_names_the_template(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert "deploy/config.example.toml" in str(caught.value)


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # a directory
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(binary)


# -- so101d config check -----------------------------------------------------------------


def test_check_summarises_a_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert f"{EXAMPLE}: OK, 1 pair" in out
    for fragment in ("pair main: 100 Hz", "/dev/so101_leader", "id main_follower", "1 2 3 4 5 6"):
        assert fragment in out


def test_check_prints_the_error_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + "rate_hz = 0\n")
    assert main(["config", "check", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: pair.main.rate_hz = 0" in captured.err


def test_check_reports_every_error_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'log_levle = "debug"\n' + MINIMAL + 'rate_hz = 0\nstop_policy = "drop"\n'
        '[pair.other]\nleader.prot = "/dev/a"\nleader.id = "a"\nfollower.port = "/dev/b"\n'
        'follower.id = "b"\nfollower.motor_ids = { gripper = 300, shoulder_pan = 1, '
        "shoulder_lift = 2, elbow_flex = 3, wrist_flex = 4, wrist_roll = 1 }\n"
    )
    assert main(["config", "check", "--config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"so101d config check: {path}: {problem}"
        for problem in (
            'log_levle = "debug": unknown key; did you mean log_level?',
            "pair.main.rate_hz = 0: must be at least 1 and at most 500",
            'pair.main.stop_policy = "drop": must be one of release, hold, rest',
            "pair.other.leader.port: missing: add it to [pair.other.leader] "
            "(found 'prot': a typo?)",
            'pair.other.leader.prot = "/dev/a": unknown key; did you mean port?',
            "pair.other.follower.motor_ids.gripper = 300: must be at least 0 and at most 253",
            "pair.other.follower.motor_ids.wrist_roll = 1: motor 1 is already shoulder_pan's",
        )
    ]


def test_one_error_reads_as_before() -> None:
    error = error_of(pair_extra="rate_hz = 501")
    assert not isinstance(error, ConfigErrors) or len(error.errors) == 1


def test_check_defaults_to_the_system_path() -> None:
    assert build_parser().parse_args(["config", "check"]).config == DEFAULT_CONFIG_PATH


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 2
    with pytest.raises(SystemExit) as caught:
        main(["config", "check", "--bogus"])
    assert caught.value.code == 2
