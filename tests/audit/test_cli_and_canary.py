"""The audit command's outputs (JSON rows, table) and a canary check on every output."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sealed_gitops.audit import ROW_FIELDS
from sealed_gitops.cli.main import cli

from .conftest import History, leaked


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("decrypt", [False, True])
def test_json_rows_have_exactly_the_issue_fields(history: History, decrypt: bool) -> None:
    args = ["audit", str(history.repo.path), "--output", "json"]
    if decrypt:
        args += ["--decrypt", "--age-identity", str(history.keys.identity_file),
                 "--sealing-key", str(history.sealing_key_file)]
    code, out, err = _run(*args)
    assert code == 0, err
    rows = json.loads(out)
    assert rows
    assert all(tuple(row) == ROW_FIELDS for row in rows)
    assert {row["change"] for row in rows} <= {
        "added", "changed", "removed", "re-encrypted", "recipients-changed"}
    assert not leaked(out) and not leaked(err)
    if decrypt:
        assert "re-encrypted" in {row["change"] for row in rows}


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--object", "Secret/app/db"],
        ["--since", "2026-01-05", "--until", "2026-01-09"],
        ["--decrypt"],
    ],
)
def test_table_is_plain_when_piped_and_leaks_nothing(history: History, extra: list[str]) -> None:
    env = {"SOPS_AGE_KEY_FILE": str(history.keys.identity_file)}
    code, out, err = _run("audit", str(history.repo.path), *extra, env=env)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split("\t") == ["date", "author", "signature", "file", "object", "key",
                                    "change", "commit"]
    assert len(lines) > 1
    assert "\x1b[" not in out  # no colours when piped
    assert not leaked(out) and not leaked(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--object", "db"], "KIND/NAMESPACE/NAME"),
        (["--since", "yesterday"], "invalid date"),
    ],
)
def test_bad_flags_fail_with_one_line(history: History, args: list[str], message: str) -> None:
    code, _, err = _run("audit", str(history.repo.path), *args)
    assert code == 1
    assert message in err


def test_outside_a_repository(tmp_path_factory: pytest.TempPathFactory) -> None:
    code, _, err = _run("audit", str(tmp_path_factory.mktemp("norepo")))
    assert code == 1
    assert "not inside a Git repository" in err
