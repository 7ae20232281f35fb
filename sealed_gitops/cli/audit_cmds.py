"""``sealed-gitops audit``: who changed which encrypted value, and when.

Why this module exists: it is the face of ``sealed_gitops.audit``. ``audit`` answers from Git
history (or, with ``--cluster``, from the live Secrets' provenance), as a table for people (plain
columns when piped, a progress bar only on a terminal) or as JSON rows for tools. The commands
that wire git's diff and merge to us are :mod:`.git_driver_cmds`. No command here ever prints a
value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sealed_gitops.audit import (
    AuditResult,
    ChangeRecord,
    KeyedHasher,
    audit_history,
    parse_date,
)
from sealed_gitops.cli.conventions import output_option
from sealed_gitops.cli.decryption_options import decryption_key_options
from sealed_gitops.errors import ConfigError
from sealed_gitops.redact import redact

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["audit", "fitted_table"]

#: Below this many commits a progress bar would only flicker.
PROGRESS_MIN_COMMITS = 200
_COLUMNS = ("date", "author", "signature", "file", "object", "key", "change", "commit")
#: How each column behaves when the terminal is narrower than the table. Tokens (dates, hashes,
#: paths, key paths) are never broken across lines: they are cut with an ellipsis, and the date
#: and commit (what one copies) are not cut at all. Only free text (names) folds at spaces.
_FREE_TEXT = frozenset({"author", "AUTHOR", "SYNC"})
_NEVER_CUT = frozenset({"date", "commit", "change", "COMMIT"})


def _hasher(
    age_identities: tuple[Path, ...], gnupghome: Path | None, sealing_keys: tuple[Path, ...]
) -> KeyedHasher:
    # Imported here: the git drivers share this module and must not pay for the key providers.
    from sealed_gitops.cli.build_cmds import load_decryption_keys

    keys = load_decryption_keys(
        age_identities=age_identities, sealing_keys=sealing_keys, gnupghome=gnupghome
    )
    # No sealing keys: None, so a SealedSecret is compared by ciphertext rather than failing.
    return KeyedHasher(sops=keys.sops, sealing=keys.sealing or None)


def _run(path: Path, *, progress_on: bool, **kwargs: object) -> AuditResult:
    if not progress_on:
        return audit_history(path, **kwargs)  # type: ignore[arg-type]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=_console(stderr=True),
    )
    task = bar.add_task("reading history", total=None)

    def report(done: int, total: int) -> None:
        # Started only once the history is known to be long: short runs never flicker.
        if total < PROGRESS_MIN_COMMITS:
            return
        if done == 1:
            bar.start()
        if done % 20 == 0 or done == total:
            bar.update(task, completed=done, total=total)

    try:
        return audit_history(path, progress=report, **kwargs)  # type: ignore[arg-type]
    finally:
        bar.stop()


def _fit(columns: Sequence[str], natural: list[int], room: int) -> list[int]:
    """Column widths that add up to at most ``room``: the columns in :data:`_NEVER_CUT` keep
    their natural width, and the rest share what is left (narrow ones whole, the widest cut)."""
    widths = list(natural)
    if sum(widths) <= room:
        return widths
    flexible = [i for i, column in enumerate(columns) if column not in _NEVER_CUT]
    left = room - sum(natural[i] for i in range(len(columns)) if i not in flexible)
    floor = {i: min(natural[i], 5) for i in flexible}  # "sign…": still says which column
    if left < sum(floor.values()):
        for i in flexible:  # too narrow for any fair share: headers' width, rich does the rest
            widths[i] = floor[i]
        return widths
    pending = sorted(flexible, key=lambda i: natural[i])
    while pending:
        share = left // len(pending)
        if natural[pending[0]] <= share:
            first = pending.pop(0)
            left -= natural[first]
            continue
        for i in pending:
            widths[i] = max(floor[i], share)
        for i in pending[: left - share * len(pending)]:
            widths[i] += 1
        break
    return widths


def fitted_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int,
    styles: Sequence[str] = (),
) -> Table:
    """A rich table at most ``width`` columns wide that never breaks a token mid-word.

    Left to itself rich folds any column, hashes and paths included, and may squeeze a column
    to nothing. Here the widths are decided first (:func:`_fit`): the date, change and commit
    are whole; paths, objects, key paths and signatures end in ``…`` when cut; only free text
    (the author) wraps, at spaces.
    """
    from rich.markup import escape
    from rich.table import Table

    natural = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    # Each column costs its padding (1 + 1) and a border; plus the closing border.
    widths = _fit(columns, natural, width - 3 * len(columns) - 1)
    table = Table(show_lines=False, header_style="bold")
    for column, size in zip(columns, widths, strict=True):
        if column in _FREE_TEXT:
            table.add_column(column, width=size, overflow="fold")
        else:
            table.add_column(column, width=size, no_wrap=True, overflow="ellipsis")
    for index, row in enumerate(rows):
        style = styles[index] if index < len(styles) else ""
        table.add_row(*(escape(cell) for cell in row), style=style)
    return table


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _cell(record: ChangeRecord, column: str) -> str:
    if column == "commit":
        return record.commit[:12]
    if column == "date":
        return record.date  # ISO 8601, as the JSON rows and docs/auditing-secrets.md show it
    if column == "signature":
        signer = f" {record.signer[-16:]}" if record.signer else ""
        return f"{record.signature.value}{signer}"
    value = record.to_json()[column]
    return "-" if value is None else str(value)


def _print_table(records: list[ChangeRecord]) -> None:
    if not sys.stdout.isatty():
        # Piped: plain tab-separated columns, no colours, no box drawing.
        click.echo("\t".join(_COLUMNS))
        for record in records:
            click.echo("\t".join(_cell(record, c) for c in _COLUMNS))
        return
    styles = {"added": "green", "removed": "red", "changed": "yellow"}
    rows = [[_cell(record, c) for c in _COLUMNS] for record in records]
    console = _console()
    colours = [styles.get(r.change.value, "") for r in records]
    console.print(fitted_table(_COLUMNS, rows, width=console.width, styles=colours))
    if not records:
        click.echo("no changes of encrypted values found", err=True)


@click.command("audit")
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--since", help="Only changes authored on or after this date (ISO 8601).")
@click.option("--until", help="Only changes authored on or before this date (ISO 8601).")
@click.option(
    "--object",
    "object_filter",
    metavar="KIND/NAMESPACE/NAME",
    help="Only this object (e.g. Secret/app/db).",
)
@click.option(
    "--decrypt",
    is_flag=True,
    help="Use your keys to tell re-encryptions from real changes (keyed hashes only; "
    "no value is printed).",
)
@output_option("table", "json")
@click.option(
    "--rev", default="HEAD", show_default=True, help="Audit the history of this revision."
)
@click.option(
    "--signer-key",
    "signer_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Armored OpenPGP public key whose signatures count as good (repeatable); "
    "default: your GnuPG keyring.",
)
@decryption_key_options(when="--decrypt")
@click.option(
    "--cluster",
    "from_cluster",
    is_flag=True,
    help="Instead of Git history: each managed Secret's live commit and author.",
)
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False), help="With --cluster: defaults to $KUBECONFIG."
)
@click.option("--context", help="With --cluster: kubeconfig context.")
@click.option("-n", "--namespace", help="With --cluster: only this namespace.")
def audit(
    *,
    path: Path,
    since: str | None,
    until: str | None,
    object_filter: str | None,
    decrypt: bool,
    output: str,
    rev: str,
    signer_keys: tuple[Path, ...],
    age_identities: tuple[Path, ...],
    gnupghome: Path | None,
    sealing_keys: tuple[Path, ...],
    from_cluster: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Who changed which encrypted value under PATH, and when: one row per change of one value.

    With --cluster: for each Secret the operator manages, the commit and author of its live values.
    """
    if from_cluster:
        _audit_cluster(kubeconfig=kubeconfig, context=context, namespace=namespace, output=output)
        return
    if object_filter is not None and object_filter.count("/") != 2:
        raise ConfigError("--object must be KIND/NAMESPACE/NAME (namespace may be empty)")
    judge = _hasher(age_identities, gnupghome, sealing_keys) if decrypt else None
    result = _run(
        path,
        progress_on=sys.stderr.isatty(),
        since=parse_date(since) if since else None,
        until=parse_date(until) if until else None,
        object_filter=object_filter,
        judge=judge,
        signer_keys=[p.read_bytes() for p in signer_keys] or None,
        rev=rev,
    )
    if output == "json":
        click.echo(json.dumps([r.to_json() for r in result.records], indent=2, ensure_ascii=False))
    else:
        _print_table(result.records)
    for notice in result.notices:
        click.echo(f"note: {redact(notice)}", err=True)


def _audit_cluster(
    *, kubeconfig: str | None, context: str | None, namespace: str | None, output: str
) -> None:
    from sealed_gitops.audit.cluster import live_secrets
    from sealed_gitops.cluster import connect

    client = connect(kubeconfig, context=context)
    try:
        rows = live_secrets(client, namespace=namespace)
    finally:
        client.close()
    if output == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False))
        return
    columns = ("OBJECT", "SYNC", "FILE", "COMMIT", "AUTHOR", "KEYS")
    cells = [
        (
            f"Secret/{r.namespace}/{r.name}",
            r.sync or "-",
            r.source_path or "-",
            r.commit or "-",
            r.author or "-",
            ",".join(r.keys),
        )
        for r in rows
    ]
    if not sys.stdout.isatty():
        click.echo("\t".join(columns))
        for row in cells:
            click.echo("\t".join(row))
        return
    console = _console()
    console.print(fitted_table(columns, cells, width=console.width))
