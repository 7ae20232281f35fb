"""The kubeconfig file that points kubectl, the Python client and kopf at an emulator."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

__all__ = ["CONTEXT", "write_kubeconfig"]

CONTEXT = "sealed-gitops-emulator"


def write_kubeconfig(
    path: Path, *, server: str, token: str, ca_pem: bytes, user: str = "admin"
) -> Path:
    """Write a single-context kubeconfig with a bearer token, readable by its owner only."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # The token is a credential: create the file 0600 rather than chmod after writing.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path
