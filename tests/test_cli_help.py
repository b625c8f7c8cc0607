"""Every ``so101d`` command explains itself: a --help description and help for each option."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from so101d.cli import build_parser
from tests.commands import so101d


def commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from commands(sub, (*prefix, name))


COMMANDS = dict(commands(build_parser()))


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_every_command_has_a_description_and_option_help(words: tuple[str, ...]) -> None:
    parser = COMMANDS[words]
    assert parser.description, f"so101d {' '.join(words)} --help has no description"
    undocumented = [
        action.option_strings or action.dest
        for action in parser._actions
        if action.help is None and not isinstance(action, argparse._SubParsersAction)
    ]
    assert not undocumented, f"so101d {' '.join(words)}: options without help: {undocumented}"


@pytest.mark.parametrize("command", ["run", "precheck", "demo"])
def test_help_of_the_main_commands_says_what_they_do(command: str) -> None:
    result = so101d(command, "--help")
    assert result.returncode == 0
    description = COMMANDS[(command,)].description
    assert description is not None
    assert description.split()[0] in result.stdout and len(description) > 100
