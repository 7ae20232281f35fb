"""The CLI's conventions hold for every command (issue 15, Must 7; docs/index.md "CLI conventions").

Each rule is checked over the whole command tree (every entry of ``main.COMMANDS`` and every
subcommand of a group), so a command added later that breaks one fails here, not in a user's
shell. The behaviour behind each rule is checked end to end once (``seal -o json`` is the bug that
started this: it wrote a file named ``json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sealed_gitops.cli.main import COMMANDS, LazyGroup, cli
from sealed_gitops.crypto.sealing_keys import certificate_pem, generate_sealing_key
from tests.cli.conftest import SECRET_YAML, AgeKey, run


def all_commands() -> Iterator[tuple[str, click.Command]]:
    """``(path, command)`` for every leaf command, e.g. ``("keys backup", ...)``."""
    ctx = click.Context(cli)
    group = cli
    assert isinstance(group, LazyGroup)

    def walk(prefix: str, command: click.Command) -> Iterator[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk(f"{prefix} {name}", sub)
        else:
            yield prefix, command

    for name in sorted(COMMANDS):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield from walk(name, command)


def _option(command: click.Command, flag: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and flag in (*param.opts, *param.secondary_opts):
            return param
    return None


COMMAND_TREE = list(all_commands())


# -- (a) -o/--output is a format; files take -w/--output-file --------------------------------


@pytest.mark.parametrize(("path", "command"), COMMAND_TREE, ids=[p for p, _ in COMMAND_TREE])
def test_dash_o_and_output_are_formats(path: str, command: click.Command) -> None:
    for flag in ("-o", "--output"):
        option = _option(command, flag)
        if option is None:
            continue
        assert isinstance(option.type, click.Choice), f"{path} {flag} is not a format choice"
        assert {"json", "yaml"} & set(option.type.choices), f"{path} {flag}: {option.type.choices}"


@pytest.mark.parametrize(("path", "command"), COMMAND_TREE, ids=[p for p, _ in COMMAND_TREE])
def test_file_outputs_are_dash_w_output_file(path: str, command: click.Command) -> None:
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        flags = (*param.opts, *param.secondary_opts)
        if any(f.startswith("--output") for f in flags) and isinstance(param.type, click.Path):
            assert set(flags) == {"-w", "--output-file"}, f"{path}: {flags}"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cert") / "cert.pem"
    path.write_bytes(certificate_pem(generate_sealing_key(bits=2048).certificate))
    return path


def test_seal_dash_o_json_prints_json_and_writes_no_file(work: Path, cert: Path) -> None:
    """The reported bug: ``seal -o json`` silently wrote a file named ``json``."""
    (work / "secret.yaml").write_text(SECRET_YAML)
    result = run("seal", "secret.yaml", "--cert", str(cert), "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "SealedSecret"
    assert not (work / "json").exists()


def test_seal_and_unseal_write_files_with_dash_w(work: Path, cert: Path) -> None:
    (work / "secret.yaml").write_text(SECRET_YAML)
    result = run("seal", "secret.yaml", "--cert", str(cert), "-w", "sealed.json", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert json.loads((work / "sealed.json").read_text())["kind"] == "SealedSecret"


def test_seal_dash_o_with_a_file_name_is_a_usage_error(work: Path, cert: Path) -> None:
    (work / "secret.yaml").write_text(SECRET_YAML)
    result = CliRunner().invoke(cli, ["seal", "secret.yaml", "--cert", str(cert), "-o", "x.yaml"])
    assert result.exit_code == 2
    assert "'x.yaml' is not one of 'yaml', 'json'" in result.stderr
    assert not (work / "x.yaml").exists()


def test_decrypt_dash_o_json_is_the_output_format(
    work: Path, use_key: AgeKey, secret_file: Path
) -> None:
    assert run("encrypt", "secret.yaml", "--age", use_key.public, "-w", "enc.yaml").exit_code == 0
    result = run("decrypt", "enc.yaml", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "Secret"
    assert not (work / "json").exists()
    assert run("decrypt", "enc.yaml", "-w", "plain.yaml").exit_code == 0
    assert "kind: Secret" in (work / "plain.yaml").read_text()
