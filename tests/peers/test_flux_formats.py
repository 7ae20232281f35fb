"""Every SOPS store and option our CLI writes, opened by Flux's kustomize-controller and by us.

Where test_flux_sops checks the commands, this checks the formats, all written by our CLI:
a JSON manifest, a multi-document YAML file, Shamir key groups (2 of 3, the keys for two groups
given), ``--mac-only-encrypted``, ``unencrypted_suffix`` (which Flux refuses for the real sops'
file as for ours: :data:`FLUX_REFUSES`), and the files a kustomize
``secretGenerator`` reads: a dotenv (``envs``) and INI, JSON, YAML and binary files (``files``).

A generator file becomes a Secret value that is the *emitted* plaintext, so sops' (Go) and our
emitters must agree byte for byte: Flux's Secret is the reference there, and ours must hold the
same bytes, compared by keyed hash.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import pyrage
import pytest
import yaml

from sealed_gitops.crypto.age_pq import PQIdentity
from sealed_gitops.testing.gitserver import HttpGitServer
from sealed_gitops.testing.peers.processes import FluxController
from sealed_gitops.testing.sops_tool import run_sops
from tests.control_plane.conftest import Kubectl

from .conftest import Keyed, Setup, secret_digests, wait_for
from .test_flux_sops import ENCRYPTED_REGEX, Repo, flux_objects, flux_state

pytestmark = [pytest.mark.control_plane, pytest.mark.slow, pytest.mark.timeout(900)]


def _secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "stringData": values}  # fmt: skip


def _rules(one: str, two: str, three: str) -> dict[str, Any]:
    return {"creation_rules": [
        {"path_regex": r"shamir\.yaml$", "encrypted_regex": ENCRYPTED_REGEX,
         "shamir_threshold": 2, "key_groups": [{"age": [one]}, {"age": [two]}, {"age": [three]}]},
        {"path_regex": r"files/files/", "age": one},
        {"path_regex": r"suffix", "unencrypted_suffix": "_plain", "age": one},
        {"path_regex": r"\.ya?ml$", "encrypted_regex": ENCRYPTED_REGEX, "age": one},
        {"path_regex": r".*", "age": one},
    ]}  # fmt: skip


#: Each case in its own directory (and Flux Kustomization), so a failure names its case.
CASES = {
    "json": ["json.json"],
    "multi": ["multi.yaml"],
    "shamir": ["shamir.yaml"],
    "maconly": ["maconly.yaml"],
    "suffix": ["suffix.yaml"],
    "suffix-sops": ["suffix.yaml"],
    "env": [],
    "files": [],
}


#: Secrets Flux's kustomize-controller v1.9.6 does not apply: a manifest encrypted with
#: ``unencrypted_suffix`` fails its kustomize build ("kustomize build panic: number of previous
#: names, number of previous namespaces, number of previous kinds not equal"), the real sops' file
#: (``suffix-sops``) exactly as ours; we apply both. Listed in docs/migrating-from-flux.md.
FLUX_REFUSES = frozenset({"s-suffix", "s-suffix-sops"})


def _write(repo: Repo, values: dict[str, dict[str, str]], blob: bytes, *, recipient: str) -> None:
    deploy = repo.root / "deploy"
    for case in CASES:
        (deploy / case).mkdir(parents=True)
    (deploy / "json/json.json").write_text(json.dumps(_secret("s-json", values["json"]), indent=2))
    (deploy / "multi/multi.yaml").write_text(yaml.safe_dump_all(
        [_secret("s-multi-a", values["multi-a"]), _secret("s-multi-b", values["multi-b"])]
    ))  # fmt: skip
    for name in ("shamir", "maconly", "suffix"):
        (deploy / name / f"{name}.yaml").write_text(
            yaml.safe_dump(_secret(f"s-{name}", values[name]))
        )
    env = deploy / "env/files"
    env.mkdir()
    (env / "app.env").write_text("".join(f"{k}={v}\n" for k, v in values["env"].items()))
    files = deploy / "files/files"
    files.mkdir()
    ini = values["ini"]
    (files / "config.ini").write_text(
        f"[database]\nuser = {ini['user']}\npassword = {ini['password']}\n\n[cache]\nttl = 300\n"
    )
    (files / "settings.json").write_text(json.dumps({"api": values["json-file"], "n": 3}))
    (files / "values.yaml").write_text(
        yaml.safe_dump({"db": values["yaml-file"], "replicas": 2, "tags": ["a", "b"]})
    )
    (files / "blob.bin").write_bytes(blob)
    for path in ("json/json.json", "multi/multi.yaml", "shamir/shamir.yaml", "env/files/app.env",
                 "files/files/config.ini", "files/files/settings.json", "files/files/values.yaml",
                 "files/files/blob.bin"):  # fmt: skip
        repo.cli("encrypt", "-i", f"deploy/{path}")
    repo.cli("encrypt", "-i", "--mac-only-encrypted", "deploy/maconly/maconly.yaml")
    repo.cli("encrypt", "-i", "deploy/suffix/suffix.yaml")
    (deploy / "suffix-sops/suffix.yaml").write_text(
        yaml.safe_dump(_secret("s-suffix-sops", values["suffix-sops"]))
    )
    run_sops(["--encrypt", "--in-place", "deploy/suffix-sops/suffix.yaml"], cwd=str(repo.root),
             env={"SOPS_AGE_KEY_FILE": str(repo.keys)})  # fmt: skip
    generators = {
        "env": {"secretGenerator": [{"name": "s-env", "envs": ["files/app.env"]}]},
        "files": {"secretGenerator": [{"name": "s-files", "files": [
            "files/config.ini", "files/settings.json", "files/values.yaml", "files/blob.bin"]}]},
    }  # fmt: skip
    for case, resources in CASES.items():
        body: dict[str, Any] = {"resources": resources, **generators.get(case, {})}
        body["generatorOptions"] = {"disableNameSuffixHash": True}
        (deploy / case / "kustomization.yaml").write_text(yaml.safe_dump(body))
    (deploy / "kustomization.yaml").write_text(yaml.safe_dump({"resources": list(CASES)}))


def _flux_cases(namespace: str, url: str, age_key: str) -> str:
    """flux_objects' Secret and GitRepository, and one Kustomization per case directory."""
    documents = list(yaml.safe_load_all(flux_objects(namespace, url, age_key)))
    template = documents.pop()
    for case in CASES:
        one = json.loads(json.dumps(template))
        one["metadata"]["name"] = case
        one["spec"]["path"] = f"./deploy/{case}"
        documents.append(one)
    return yaml.safe_dump_all(documents)


def _flux_cases_state(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    out = {}
    for case in CASES:
        got = json.loads(
            kubectl("get", "kustomization", case, "-n", namespace, "-o", "json").stdout
        )
        ready = [
            c for c in (got.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"
        ]
        out[case] = f"{ready[0]['status']} {ready[0]['message'][:240]}" if ready else "no status"
    return out


def test_every_store_our_cli_writes_opens_the_same_in_flux_and_ours(
    setup: Setup,
    flux: tuple[FluxController, FluxController],
    operator_factory: Any,
    namespace_factory: Any,
    kubectl: Kubectl,
    keyed: Keyed,
) -> None:
    one, two, three = (pyrage.x25519.Identity.generate() for _ in range(3))
    repo = Repo(setup.repo.path, [one, two, three])
    (repo.root / ".sops.yaml").write_text(
        yaml.safe_dump(_rules(*(str(i.to_public()) for i in (one, two, three))))
    )
    names = ("json", "multi-a", "multi-b", "shamir", "maconly", "env", "ini", "json-file",
             "yaml-file")  # fmt: skip
    values = {n: {"password": secrets.token_urlsafe(18), "user": f"u-{secrets.token_hex(4)}"}
              for n in names}  # fmt: skip
    for name in ("suffix", "suffix-sops"):
        values[name] = {"password": secrets.token_urlsafe(18), "note_plain": "kept in the clear"}
    blob = os.urandom(200)
    _write(repo, values, blob, recipient=str(one.to_public()))
    setup.push({}, message="every store")
    # Flux and we get the keys of two Shamir groups out of three (and the only key of the rest).
    keys = f"{one}\n{two}\n"
    server = HttpGitServer(setup.remote.parent).start()
    try:
        url = server.url(setup.remote.name)
        flux_ns = namespace_factory()
        kubectl("apply", "-f", "-", input=_flux_cases(flux_ns, url, keys))
        setup.age_secret = keys
        operator_factory(setup.namespace)
        setup.objects(repository_spec={"url": url})

        manifests = ("json", "multi-a", "multi-b", "shamir", "maconly", "suffix", "suffix-sops",
                     "env")  # fmt: skip
        expected: dict[str, Any] = {
            f"s-{n}": {k: keyed(v.encode()) for k, v in values[n].items()} for n in manifests
        }
        secret_names = [*expected, "s-files"]

        def state(namespace: str) -> dict[str, Any]:
            return {n: secret_digests(setup.kube.secret(n, namespace), keyed) for n in secret_names}

        def converged() -> bool:
            theirs, ours = state(flux_ns), state(setup.namespace)
            return (
                theirs["s-files"] is not None
                and ours["s-files"] == theirs["s-files"]
                and all(ours[n] == expected[n] for n in expected)
                and all(theirs[n] == expected[n] for n in expected if n not in FLUX_REFUSES)
            )

        try:
            wait_for(converged, timeout=180, what="the same Secrets from Flux and from us")
        except AssertionError as exc:
            theirs, ours = state(flux_ns), state(setup.namespace)
            differ = {n: {"flux": theirs[n], "ours": ours[n], "expected": expected.get(n)}
                      for n in secret_names if theirs[n] != ours[n] or
                      (n in expected and theirs[n] != expected[n])}  # fmt: skip
            flux_says = _flux_cases_state(kubectl, flux_ns)
            raise AssertionError(f"{exc}; differ (keyed): {differ}; Flux: {flux_says}") from exc
        # What Flux refuses (docs/migrating-from-flux.md), it still refuses, and applied nothing.
        flux_says = _flux_cases_state(kubectl, flux_ns)
        for name in FLUX_REFUSES:
            assert "kustomize build panic" in flux_says[name.removeprefix("s-")], flux_says
            assert setup.kube.secret(name, flux_ns) is None
        files = state(flux_ns)["s-files"]
        assert files is not None and files["blob.bin"] == keyed(blob)
        assert set(files) == {"config.ini", "settings.json", "values.yaml", "blob.bin"}
    finally:
        server.stop()


def test_a_post_quantum_age_file_our_cli_wrote_opens_in_flux_and_ours(
    setup: Setup,
    flux: tuple[FluxController, FluxController],
    operator_factory: Any,
    namespace_factory: Any,
    kubectl: Kubectl,
    keyed: Keyed,
) -> None:
    """age1pq1 (ML-KEM-768 + X25519, age 1.3): Flux v1.9.6 builds with age v1.3.1 and sops 3.13."""
    pq = PQIdentity.generate()
    repo = Repo(setup.repo.path, [])
    repo.keys.write_text(f"{pq.secret_text()}\n")
    values = {"password": secrets.token_urlsafe(18), "user": f"u-{secrets.token_hex(4)}"}
    deploy = repo.root / "deploy"
    deploy.mkdir()
    (deploy / "pq.yaml").write_text(yaml.safe_dump(_secret("s-pq", values)))
    repo.cli("encrypt", "-i", "--age", pq.to_public(), "--encrypted-regex", ENCRYPTED_REGEX,
             "deploy/pq.yaml")  # fmt: skip
    assert "age1pq1" in (deploy / "pq.yaml").read_text()
    setup.push({}, message="a post-quantum file")
    server = HttpGitServer(setup.remote.parent).start()
    try:
        url = server.url(setup.remote.name)
        flux_ns = namespace_factory()
        kubectl("apply", "-f", "-", input=flux_objects(flux_ns, url, f"{pq.secret_text()}\n"))
        setup.age_secret = f"{pq.secret_text()}\n"
        operator_factory(setup.namespace)
        setup.objects(repository_spec={"url": url})
        expected = {k: keyed(v.encode()) for k, v in values.items()}

        def both() -> bool:
            return all(
                secret_digests(setup.kube.secret("s-pq", ns), keyed) == expected
                for ns in (flux_ns, setup.namespace)
            )

        try:
            wait_for(both, timeout=180, what="the post-quantum Secret from Flux and from us")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; Flux: {flux_state(kubectl, flux_ns)}") from exc
    finally:
        server.stop()
