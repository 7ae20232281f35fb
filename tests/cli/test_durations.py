"""Every duration option takes Go-style durations and plain seconds, through one parser.

``conventions.DURATION`` parses with the operator's ``parse_duration`` (the one the CRDs'
``interval``/``timeout`` fields go through), so ``--timeout 1m30s`` on the command line and
``timeout: 1m30s`` in a Sync mean the same.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from sealed_gitops.cli.conventions import DURATION, format_duration
from sealed_gitops.cli.main import cli
from tests.cli.test_consistency import COMMAND_TREE


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("120", 120.0),  # plain seconds, as these options took before
        ("1.5", 1.5),
        (" 60s ", 60.0),
    ],
)
def test_go_style_and_plain_seconds(text: str, seconds: float) -> None:
    assert DURATION.convert(text, None, None) == seconds


@pytest.mark.parametrize("value", [20.0, 3])
def test_a_default_given_as_a_number_passes(value: float) -> None:
    assert DURATION.convert(value, None, None) == float(value)


@pytest.mark.parametrize("text", ["5x", "1m30", "m", "", "-5s", "1 m", "s30"])
def test_anything_else_is_a_usage_error(text: str) -> None:
    with pytest.raises(click.BadParameter, match="is not a duration such as 90s"):
        DURATION.convert(text, None, None)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90.0, "1m30s"), (60.0, "1m"), (0.5, "500ms"), (7200.0, "2h"), (1, "1s")]
)
def test_durations_are_named_back_the_same_way(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


_DURATION_WORDS = ("timeout", "interval", "backoff", "retention", "period")


@pytest.mark.parametrize(("path", "command"), COMMAND_TREE, ids=[p for p, _ in COMMAND_TREE])
def test_every_duration_option_uses_the_one_parser(path: str, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag:
            name = param.name or ""
            if any(word in name for word in _DURATION_WORDS):
                assert param.type is DURATION, f"{path} --{name}: {param.type!r}"


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "rotate", "--timeout", "5x"],
        ["reencrypt", ".", "--timeout", "soon"],
        ["reconcile", "team-a/app", "--timeout", "1m30"],
        ["demo", "--timeout", "fast"],
    ],
)
def test_a_bad_duration_stops_before_anything_runs(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "is not a duration such as 90s, 1m30s, 2h, 500ms or 120 (seconds)" in result.stderr
