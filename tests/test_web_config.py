"""The ``[web]`` table: defaults, the listen address, disabling, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from so101d.config import ConfigError, WebConfig, parse_config
from tests.test_config import EXAMPLE, MINIMAL, parse

FILE = Path("/etc/so101d/config.toml")


def web(table: str) -> WebConfig:
    return parse_config(f"[web]\n{table}\n" + MINIMAL, FILE).web


def test_the_defaults_listen_everywhere_on_8101_with_the_token_in_etc() -> None:
    assert parse().web == WebConfig(("0.0.0.0", 8101), Path("/etc/so101d/web-token"))
    assert web("") == parse().web
    assert parse_config(EXAMPLE.read_text(), EXAMPLE).web == parse().web


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ('"127.0.0.1:9000"', ("127.0.0.1", 9000)),
        ('"[::]:8101"', ("::", 8101)),
        ('"pi.local:80"', ("pi.local", 80)),
        ('""', None),
    ],
)
def test_listen_addresses(listen: str, address: tuple[str, int] | None) -> None:
    assert web(f"listen = {listen}").listen == address


def test_a_relative_token_file_is_beside_the_config() -> None:
    assert web('token_file = "secret/web-token"').token_file == Path("/etc/so101d/secret/web-token")


@pytest.mark.parametrize(
    "listen", ['"8101"', '"0.0.0.0:"', '":8101"', '"h:99999"', '"h:x"', "8101"]
)
def test_a_bad_listen_is_an_error_naming_the_key_and_the_form(listen: str) -> None:
    with pytest.raises(ConfigError) as caught:
        web(f"listen = {listen}")
    message = str(caught.value)
    assert f"{FILE}: web.listen = " in message
    assert 'must be "HOST:PORT" such as "0.0.0.0:8101", or "" to disable' in message


def test_an_unknown_web_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"web\.port = 8101: unknown key"):
        web("port = 8101")
