"""Entry point of the ``sealed-gitops`` command.

Subcommands are loaded lazily from their own modules (see :data:`COMMANDS`), so that
``sealed-gitops decrypt`` does not pay for importing kopf or the kubernetes client, and so that each
area of the CLI lives in a module of its own. Expected errors (:class:`SealedGitopsError`) become
one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from typing import Any

import click

from sealed_gitops import __version__
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.redact import install_logging_filter, redact

#: command name -> "module:attribute" of the click command implementing it.
COMMANDS: dict[str, str] = {
    "build": "sealed_gitops.cli.build_cmds:build_command",
    "diff": "sealed_gitops.cli.diff_cmds:diff_command",
    "seal": "sealed_gitops.cli.sealed_cmds:seal",
    "unseal": "sealed_gitops.cli.sealed_cmds:unseal",
    "encrypt": "sealed_gitops.cli.sops_cmds:encrypt",
    "decrypt": "sealed_gitops.cli.sops_cmds:decrypt",
    "set": "sealed_gitops.cli.set_cmds:set_cmd",
    "unset": "sealed_gitops.cli.set_cmds:unset_cmd",
    "updatekeys": "sealed_gitops.cli.rekey:updatekeys",
    "rotate": "sealed_gitops.cli.rekey:rotate_cmd",
    "edit": "sealed_gitops.cli.edit:edit",
    "verify": "sealed_gitops.cli.verify:verify",
    "audit": "sealed_gitops.cli.audit_cmds:audit",
    "git-setup": "sealed_gitops.cli.git_driver_cmds:git_setup",
    "git-textconv": "sealed_gitops.cli.git_driver_cmds:git_textconv",
    "git-merge": "sealed_gitops.cli.git_driver_cmds:git_merge",
    "keys": "sealed_gitops.cli.keys_cmds:keys",
    "reencrypt": "sealed_gitops.cli.reencrypt_cmds:reencrypt",
    "operator": "sealed_gitops.cli.operator_cmds:operator_command",
    "reconcile": "sealed_gitops.cli.status_cmds:reconcile",
    "suspend": "sealed_gitops.cli.status_cmds:suspend",
    "resume": "sealed_gitops.cli.status_cmds:resume",
    "status": "sealed_gitops.cli.status_cmds:status",
    "demo": "sealed_gitops.cli.demo:demo",
    "import": "sealed_gitops.cli.import_cmds:import_group",
    "version": "sealed_gitops.cli.meta_cmds:version",
    "completion": "sealed_gitops.cli.meta_cmds:completion",
    "tree": "sealed_gitops.cli.inspect_cmds:tree",
    "events": "sealed_gitops.cli.inspect_cmds:events",
    "trace": "sealed_gitops.cli.inspect_cmds:trace",
    "logs": "sealed_gitops.cli.logs_cmds:logs",
    "ui": "sealed_gitops.cli.ui_cmds:ui",
}

#: command name -> the line ``sealed-gitops --help`` shows for it, so listing the commands imports
#: none of their modules (importing them all pulled in kopf, the kubernetes client, cryptography
#: and rich: ~2 s). None: hidden from the list (commands git runs, not people). A test checks each
#: line is the command's own first docstring line, so the two cannot drift apart.
SUMMARIES: dict[str, str | None] = {
    "audit": "Who changed which encrypted value under PATH, and when: one row per change of one "
    "value.",
    "build": "Render and decrypt PATH (a local checkout, or --repo at --ref) as the operator "
    "would.",
    "completion": "Print the shell completion script for SHELL.",
    "decrypt": "Decrypt FILE (- for stdin) to stdout, -w FILE, or in place.",
    "demo": "Run the whole story on this machine: Git, a key, the operator, a tampered commit.",
    "diff": "Show what applying PATH would change in the cluster (Secrets by key, never values).",
    "edit": "Open a decrypted copy of FILE in $EDITOR and re-encrypt it on save (stable "
    "ciphertext).",
    "encrypt": "Encrypt FILE for recipients given as flags or by the matching .sops.yaml rule.",
    "git-merge": None,
    "git-setup": "Configure git diff (masked textconv) and git merge (SOPS-aware) for encrypted "
    "files.",
    "git-textconv": None,
    "import": "Convert another tool's objects into Repository and Sync objects.",
    "keys": "The cluster's keys: fetch, list, rotate, retire, back up, restore.",
    "operator": "Run the operator in the foreground until SIGTERM or Ctrl-C.",
    "reconcile": "Ask the operator to reconcile a Sync (or Repository) now.",
    "reencrypt": "Re-wrap SOPS files and re-seal SealedSecrets for the KeyRing's active key, in "
    "the cluster.",
    "resume": "Reconcile a suspended Sync (or Repository) again.",
    "rotate": "Give FILE a new data key and re-encrypt every value, for the same recipients.",
    "seal": "Seal a Secret manifest (FILE, or - for stdin) into a SealedSecret.",
    "set": 'Set the value at PATH in FILE, in place (VALUE is JSON, PATH like \'["data"]["k"]\').',
    "status": "Syncs (and Repositories) with Ready, revision and message, like `flux get`.",
    "suspend": "Stop reconciling a Sync (or Repository) until it is resumed.",
    "unseal": "Open a SealedSecret file offline and print the Secret it holds.",
    "unset": "Remove PATH from FILE, in place.",
    "updatekeys": "Re-wrap FILE's data key for the recipients of its .sops.yaml rule (values "
    "unchanged).",
    "verify": "Fail when a Secret is not encrypted or a SOPS file's MAC is missing or invalid.",
    "version": "The client's version, and the operator's when the cluster can be reached.",
    "tree": "The objects a Sync applied (its inventory), like `flux tree kustomization`.",
    "events": "The Events of a Sync (or Repository), oldest first, like `flux events --for`.",
    "trace": "A live object back to the Sync that applied it, its source path and revision.",
    "logs": "The operator's log lines about one Sync (or Repository, KeyRing), like `flux logs`.",
    "ui": "A read-only web view of Syncs, KeyRings and Secrets' audit trails, with your rights.",
}

#: exit code for an expected failure (bad input, failed check); click uses 2 for usage errors.
EXIT_FAILURE = 1

_VERBOSE_HELP = "More log output on stderr (repeatable; before or after the command)."


def _log_level(verbosity: int) -> int:
    return logging.WARNING - 10 * min(verbosity, 2)


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    """``-v`` after the command: adds to the ``-v`` given before it, as if all came first."""
    if not value:
        return
    root = ctx.find_root()
    total = int(root.meta.get("sealed_gitops.verbosity", 0)) + value
    root.meta["sealed_gitops.verbosity"] = total
    logging.getLogger().setLevel(_log_level(total))


def _with_verbose(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a group, each subcommand) a ``-v/--verbose`` of its own.

    Why: people add ``-v`` at the end of a command line that failed (``sealed-gitops keys rotate
    -v``), and click only parses the group's options before the subcommand's name.
    """
    if not any(param.name == "verbose" for param in command.params):
        command.params.append(
            click.Option(
                ["-v", "--verbose"],
                count=True,
                expose_value=False,
                callback=_more_verbose,
                help=_VERBOSE_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_verbose(sub)
    return command


def _shorten(text: str, limit: int) -> str:
    """As click shortens a command's help line for the list: whole words, then ``...``."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "..."


class LazyGroup(click.Group):
    """A group whose commands are imported only when named (or when help lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`SUMMARIES`, importing only commands it does not know."""
        rows = []
        for name in self.list_commands(ctx):
            if name in SUMMARIES:
                summary = SUMMARIES[name]
            else:
                command = self.get_command(ctx, name)
                summary = (
                    None if command is None or command.hidden else command.get_short_help_str()
                )
            if summary is not None:
                rows.append((name, summary))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, _shorten(text, limit)) for name, text in rows])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"{target} is not a click command")
        return _with_verbose(command)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SealedGitopsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILURE)
        except OSError as exc:
            # A missing or unreadable file is an expected failure: one line, no traceback.
            name = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {redact(name + (exc.strerror or str(exc)))}", err=True)
            ctx.exit(EXIT_FAILURE)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            # Not one of ours: Python would print a traceback whose last line may quote a value
            # (a parser's ValueError). One redacted line instead; the redacted trace with -vv.
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                click.echo(redact("".join(traceback.format_exception(exc))), err=True)
            click.echo(f"error: internal error: {redact(f'{type(exc).__name__}: {exc}')}", err=True)
            ctx.exit(EXIT_FAILURE)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealed-gitops")
@click.option("-v", "--verbose", count=True, help=_VERBOSE_HELP)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """GitOps for Kubernetes with every secret encrypted in Git."""
    ctx.meta["sealed_gitops.verbosity"] = verbose
    level = _log_level(verbose)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    install_logging_filter()


def main() -> None:
    cli(prog_name="sealed-gitops")
