"""The CLI's half of in-cluster re-encryption: collect ciphertext, ask the operator, write back.

Why apart from the command: the exchange is a small protocol of its own (a request ConfigMap in
the KeyRing's namespace, answered by the operator in place; see ``operator/keyring.py`` and
docs/key-rotation.md), and this module is all of its client side. What it sends is each SOPS
file's key stanzas (or, for ``--rotate-data-key``, the encrypted file) and SealedSecret
documents: ciphertext only. It talks to the API through the client's ``request`` method.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from sealed_gitops.crypto.sops import is_sops_document
from sealed_gitops.errors import ConfigError, SealedGitopsError
from sealed_gitops.keys.cluster_keys import KEYRING_LABEL
from sealed_gitops.keys.dependencies import candidate_files
from sealed_gitops.keys.key_store import RequestClient
from sealed_gitops.keys.reencrypt import REQUEST_LABEL, file_groups, groups_to_wire

__all__ = ["REQUEST_LABEL", "exchange", "replace_sealed", "request_batches", "request_items"]

#: Bytes of request payload per ConfigMap, well below the 1 MiB object limit.
MAX_REQUEST_BYTES = 512 * 1024


def request_items(paths: Sequence[Path], *, rotate_data_key: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for path in (file for root in paths for file in candidate_files(root)):
        data = path.read_bytes()
        name = str(path)
        if is_sops_document(data, file=name):
            if rotate_data_key:
                items.append({"file": name, "sopsRotate": {"content": data.decode("utf-8")}})
            else:
                groups = groups_to_wire(file_groups(data, file=name))
                items.append({"file": name, "sops": {"groups": groups}})
            continue
        try:
            docs = list(yaml.safe_load_all(data))
        except yaml.YAMLError:
            continue
        sealed = [d for d in docs if isinstance(d, dict) and d.get("kind") == "SealedSecret"]
        if sealed:
            items.append({"file": name, "sealed": {"documents": sealed}})
    return items


def request_batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        length = len(json.dumps(item))
        if batch and size + length > MAX_REQUEST_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += length
    if batch:
        yield batch


def exchange(
    client: RequestClient,
    *,
    namespace: str,
    keyring: str,
    items: list[dict[str, Any]],
    timeout: float,
) -> list[Any]:
    """Send one request and wait for the operator's answer items; the ConfigMap is removed."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = client.request(
        "POST",
        path,
        body={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "generateName": f"{keyring}-reencrypt-",
                "labels": {KEYRING_LABEL: keyring, REQUEST_LABEL: "pending"},
            },
            "data": {"request.json": json.dumps({"items": items})},
        },
        action="create",
        what="re-encryption request",
    )
    name = str(created["metadata"]["name"])
    deadline = time.monotonic() + timeout
    try:
        while True:
            answer = client.request("GET", f"{path}/{name}", action="read", what=f"request {name}")
            text = (answer.get("data") or {}).get("response.json")
            if text:
                response = json.loads(text)
                if response.get("error"):
                    raise ConfigError(f"the operator refused the request: {response['error']}")
                return list(response.get("items") or [])
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"no answer from the operator for KeyRing {namespace}/{keyring} "
                    f"in {timeout:.0f}s"
                )
            time.sleep(0.2)
    finally:
        with contextlib.suppress(SealedGitopsError):
            client.request("DELETE", f"{path}/{name}", action="delete", what=name)


def replace_sealed(data: bytes, documents: list[dict[str, Any]]) -> bytes:
    """The file with its SealedSecret documents replaced, in order, by ``documents``."""
    docs = list(yaml.safe_load_all(data))
    replaced = iter(documents)
    out = [
        next(replaced) if isinstance(d, dict) and d.get("kind") == "SealedSecret" else d
        for d in docs
    ]
    return yaml.safe_dump_all(out, sort_keys=False).encode("utf-8")
