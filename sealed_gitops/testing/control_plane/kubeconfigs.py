"""Kubeconfig files for the real control plane: the admin's (client certificate) and a
ServiceAccount's (bearer token from the TokenRequest API).

Why a module of its own: the emulator's kubeconfig only knows bearer tokens; the real API server
authenticates the admin and kube-controller-manager by client certificate, and the operator runs
with a ServiceAccount token, exactly as it would in a cluster. Everything is embedded (``*-data``)
so the file stays usable wherever it is copied, and it is written 0600 and renamed into place, so a
script that waits for the file never reads half of it.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

import yaml

__all__ = ["CONTEXT", "write_kubeconfig"]

CONTEXT = "sealed-gitops-control-plane"


def _data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    user: str,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> Path:
    """Write a one-context kubeconfig; give either ``client_cert`` + ``client_key`` or ``token``."""
    credentials: dict[str, str] = {}
    if token is not None and client_cert is None and client_key is None:
        credentials["token"] = token
    elif token is None and client_cert is not None and client_key is not None:
        credentials["client-certificate-data"] = _data(client_cert)
        credentials["client-key-data"] = _data(client_key)
    else:
        raise ValueError("a kubeconfig needs either a client certificate and key, or a token")
    context: dict[str, str] = {"cluster": CONTEXT, "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": _data(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": context}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600: the key or token is never readable by others, not even briefly.
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle, sort_keys=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
