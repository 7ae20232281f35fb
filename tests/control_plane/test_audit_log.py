"""The control plane's optional audit log: one JSON line per write request, none for reads.

benchmarks/peers.py counts a controller's API writes from it; this checks the lines it relies on
(verb, namespace, the ResponseComplete stage, dry-run visible in the request URI) and that no
request body, so no Secret value, is written to the file.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.testing.control_plane import Binaries, ControlPlane

pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(300)]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_audit_log_holds_one_line_per_write_and_no_values(
    control_plane_binaries: Binaries, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    value = secrets.token_hex(16)
    with ControlPlane.start(
        workdir=tmp_path / "plane", binaries=control_plane_binaries, audit_log=audit
    ) as plane:
        client = plane.admin_client()
        client.request("POST", "/api/v1/namespaces",
                       body={"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "audited"}})  # fmt: skip
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                  "data": {"v": base64.b64encode(value.encode()).decode()}}  # fmt: skip
        client.request("POST", "/api/v1/namespaces/audited/secrets?dryRun=All", body=secret)
        client.request("POST", "/api/v1/namespaces/audited/secrets", body=secret)
        for _ in range(3):
            client.request("GET", "/api/v1/namespaces/audited/secrets/s")
        client.request("DELETE", "/api/v1/namespaces/audited/secrets/s")
        assert plane.audit_log == audit.absolute()
    text = audit.read_text()
    assert value not in text and base64.b64encode(value.encode()).decode() not in text
    mine = [
        line for line in _lines(audit)
        if (line.get("objectRef") or {}).get("namespace") == "audited"
        and (line.get("objectRef") or {}).get("resource") == "secrets"
    ]  # fmt: skip
    assert [(line["verb"], "dryRun=All" in line["requestURI"]) for line in mine] == [
        ("create", True),
        ("create", False),
        ("delete", False),
    ]
    assert {line["stage"] for line in _lines(audit)} == {"ResponseComplete"}
    assert not any(line["verb"] in ("get", "list", "watch") for line in _lines(audit))
