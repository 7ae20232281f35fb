"""The ``audit`` table fits the terminal without breaking a token, and shows ISO 8601 dates.

Rendered with rich at fixed widths (as a 120- and an 80-column terminal would get it): every line
fits, the date and the commit are printed whole, long paths and key paths end in an ellipsis on
their own line instead of continuing on the next, and only the author (free text) may wrap.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from sealed_gitops.audit import ChangeRecord
from sealed_gitops.audit.records import Change, SignatureStatus
from sealed_gitops.cli.audit_cmds import _COLUMNS, _cell, fitted_table

DATE = "2026-01-02T12:34:56+00:00"
COMMIT = "fccdfb3d9d74" + "0" * 28
LONG_FILE = "clusters/production/eu-west-1/apps/payments/secrets/database-credentials.sops.yaml"
LONG_KEY = '["stringData"]["a-very-long-key-name-for-the-primary-database-password"]'


def _record(*, file: str = "db.yaml", key: str = '["stringData"]["password"]') -> ChangeRecord:
    return ChangeRecord(
        commit=COMMIT,
        date=DATE,
        author="Bob Builder-With-A-Long-Name <bob.builder@example.com>",
        committer="Bob <bob@example.com>",
        signature=SignatureStatus.GOOD,
        signer="0123456789ABCDEF8F3A",
        file=file,
        object="Secret/payments/database-credentials",
        key=key,
        change=Change.CHANGED,
    )


def _render(width: int, records: list[ChangeRecord]) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, highlight=False)
    rows = [[_cell(r, c) for c in _COLUMNS] for r in records]
    console.print(fitted_table(_COLUMNS, rows, width=width))
    return out.getvalue().splitlines()


def test_dates_are_iso_8601_as_the_docs_show() -> None:
    assert _cell(_record(), "date") == DATE
    assert _cell(_record(), "commit") == COMMIT[:12]


@pytest.mark.parametrize("width", [120, 100])
def test_table_fits_and_never_breaks_a_token(width: int) -> None:
    records = [_record(file=LONG_FILE, key=LONG_KEY), _record()]
    lines = _render(width, records)
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    text = "\n".join(lines)
    assert text.count(DATE) == 2 and text.count(COMMIT[:12]) == 2
    assert "…" in text  # the long path and key were cut, not folded
    # Nothing of a cut token's tail shows up anywhere (it would, on a continuation line).
    assert LONG_FILE[-20:] not in text and LONG_KEY[-20:] not in text
    # Every cut cell reads as the start of a real value.
    record = records[0]
    values = [_cell(record, c) for c in _COLUMNS] + [_cell(records[1], "file")]
    cut = re.findall(r"│ ([^│]+?)… *(?=│)", text)
    assert cut, text
    assert all(any(v.startswith(prefix) for v in values) for prefix in cut), cut
    assert any(LONG_FILE.startswith(prefix) for prefix in cut)


def test_a_wide_terminal_shows_everything_whole() -> None:
    text = "\n".join(_render(340, [_record(file=LONG_FILE, key=LONG_KEY)]))
    assert LONG_FILE in text and LONG_KEY in text and "…" not in text
