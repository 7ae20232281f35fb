"""Issue 12, Must 7: every layout of Flux kustomize-controller's SOPS tests, made by the real sops.

Flux's ``internal/controller/kustomization_decryptor_test.go`` builds ``testdata/sops`` (a root
kustomization with ``namePrefix: sops-`` over ``algorithms``, ``envs``, ``files``, ``patches``,
``inside``, ``remote`` and a ``component``; a ``.sops.yaml`` with ``stores:`` and creation rules
for PGP and age) and a ``global`` layout decrypted with a key Secret of the controller, and expects
given Secrets and ConfigMaps with given values. ``internal/decryptor/decryptor_test.go`` adds
Secret data fields that hold a SOPS document in INI, YAML and JSON (a Docker config).

Here each layout is written at test time with the same files, encrypted by the real ``sops`` with
this session's keys (age, a gpg key, an OpenBao transit key), under a ``.sops.yaml`` of the same
shape as Flux's; ``pipeline.build`` is given the keys as a Flux decryption Secret holds them
(``age.agekey``, ``pgp.asc``, ``sops.vault-token``) and must give what Flux's test expects; the
operator, given the same repository in Git and the same Secret, must apply the same objects.
A layout that does not pass yet is not here: the closing note of issue 12 lists each one.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
from click.testing import CliRunner

from sealed_gitops.cli.main import cli
from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.keys.discovery import keyring_from_secret_data
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.pipeline import build
from sealed_gitops.render.decrypt import DecryptionKeys
from tests.conftest_tools import (
    AgeKey,
    PgpKey,
    Transit,
)
from tests.operator.conftest import (
    Setup,
    is_ready,
    ready,
    wait_for,
)

REGEX = "^(data|stringData)$"

#: Flux's testdata/sops/.sops.yaml, with this session's keys put in.
SOPS_YAML = """\
stores:
  json:
    indent: 2
  yaml:
    indent: 2

# creation rules are evaluated sequentially, the first match wins
creation_rules:
  # Testing PGP
  - path_regex: (inside|pgp)\\.yaml$
    encrypted_regex: &encrypted_regex ^(data|stringData)$
    pgp: &pgp {pgp}

  - path_regex: json\\.yaml$
    encrypted_regex: ".*"
    age: &age {age}

  - path_regex: \\.yaml$
    encrypted_regex: *encrypted_regex
    age: *age

  - path_regex: \\.(env|txt)$
    age: *age

  # Fallback
  - key_groups:
      - age:
          - *age
      - pgp:
          - *pgp
"""


def secret(name: str, key: str, value: str, *, namespace: str | None = None) -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n{ns}type: Opaque\n"
        f"stringData:\n  {key}: {value}\n"
    )


@dataclass
class Repo:
    """A scratch Flux repository and the real sops, run with this session's keys."""

    root: Path
    sops: str
    env: dict[str, str]
    age: AgeKey
    pgp: PgpKey
    transit: Transit

    def write(self, rel: str, text: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def run_sops(self, *args: str, cwd: Path | None = None) -> bytes:
        done = subprocess.run(
            [self.sops, *args],
            capture_output=True,
            env=self.env,
            cwd=cwd or self.root,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout

    def encrypt(self, rel: str, *extra: str) -> None:
        """``sops encrypt --in-place`` from the repository root, as a user would."""
        self.run_sops("encrypt", *extra, "--in-place", rel)
        assert b"sops" in (self.root / rel).read_bytes()

    @contextlib.contextmanager
    def keys(self, **entries: bytes) -> Iterator[DecryptionKeys]:
        ring = keyring_from_secret_data(entries, vault_addresses=[self.transit.server.address])
        try:
            yield DecryptionKeys(sops=ring)
        finally:
            ring.close()

    def flux_secret(self) -> dict[str, bytes]:
        """The entries of the decryption Secret of Flux's test."""
        return {
            "pgp.asc": self.pgp.home.export_secret(self.pgp.fingerprint),
            "age.agekey": self.age.secret.encode(),
            "sops.vault-token": self.transit.server.token.encode(),
        }


def make_repo(
    root: Path,
    sops_binary: str,
    sops_env: dict[str, str],
    age_keys: list[AgeKey],
    pgp_key: PgpKey,
    transit: Transit,
) -> Repo:
    env = {
        **sops_env,
        "GNUPGHOME": str(pgp_key.home.path),
        "VAULT_TOKEN": transit.server.token,
        "VAULT_ADDR": transit.server.address,
    }
    made = Repo(root, sops_binary, env, age_keys[0], pgp_key, transit)
    made.write(".sops.yaml", SOPS_YAML.format(pgp=pgp_key.fingerprint, age=age_keys[0].public))
    return made


@pytest.fixture
def repo(
    tmp_path: Path,
    sops_binary: str,
    sops_env: dict[str, str],
    age_keys: list[AgeKey],
    pgp_key: PgpKey,
    transit: Transit,
) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    return make_repo(root, sops_binary, sops_env, age_keys, pgp_key, transit)


# -- the layouts, as Flux's testdata/sops has them -------------------------------------------


def algorithms(repo: Repo) -> None:
    repo.write(
        "algorithms/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: algo-\n"
        "resources:\n  - age.yaml\n  - pgp.yaml\n  - vault.yaml\n",
    )
    repo.write("algorithms/age.yaml", secret("age", "key", "value"))
    repo.encrypt("algorithms/age.yaml")
    repo.write("algorithms/pgp.yaml", secret("pgp", "key", "value"))
    repo.encrypt("algorithms/pgp.yaml")
    repo.write("algorithms/vault.yaml", secret("vault", "key", "value"))
    # as Flux's test does it: the transit key on the command line, over the .sops.yaml rules
    repo.encrypt(
        "algorithms/vault.yaml", "--hc-vault-transit", repo.transit.uri, "--encrypted-regex", REGEX
    )


def envs(repo: Repo) -> None:
    repo.write(
        "envs/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: envs-\n"
        "generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n- name: secret\n"
        "  envs:\n  - env.env\nconfigMapGenerator:\n- name: configmap\n  envs:\n  - env.env\n",
    )
    repo.write("envs/env.env", "key=value\n")
    repo.encrypt("envs/env.env")


def files(repo: Repo) -> None:
    repo.write(
        "files/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: files-\n"
        "generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n- name: secret\n"
        "  files:\n  - key=file.txt\nconfigMapGenerator:\n- name: configmap\n  files:\n"
        "  - key=file.txt\n",
    )
    repo.write("files/file.txt", "value")  # .txt: sops' binary store
    repo.encrypt("files/file.txt")


def _inner(repo: Repo, plain: bytes, *, input_type: str, output_type: str) -> str:
    """A SOPS document made by sops from ``plain``, outside the repository, base64 for data:."""
    scratch = repo.root.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    source = scratch / "inner"
    source.write_bytes(plain)
    encrypted = repo.run_sops(
        "encrypt",
        "--age",
        repo.age.public,
        "--input-type",
        input_type,
        "--output-type",
        output_type,
        str(source),
        cwd=scratch,
    )
    return base64.b64encode(encrypted).decode()


def inside(repo: Repo) -> None:
    repo.write(
        "inside/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: inside-\n"
        "resources:\n  - secret.yaml\n",
    )
    # Flux's inside/secret.yaml: data.key is a binary-store SOPS document (JSON) of "value".
    data = _inner(repo, b"value", input_type="binary", output_type="json")
    repo.write(
        "inside/secret.yaml",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret\ndata:\n  key: {data}\n",
    )


def _data_secret(repo: Repo, name: str, key: str, inner: str, *, type_: str = "Opaque") -> None:
    repo.write("formats/kustomization.yaml", "resources:\n  - secret.yaml\n")
    repo.write(
        "formats/secret.yaml",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: {type_}\ndata:\n"
        f"  {key}: {inner}\n",
    )


INI = b"[config]\napp = secret\n"
STRUCTURED = b"structured:\n    data:\n        key: value\n"


def inside_ini(repo: Repo) -> None:
    """decryptor_test.go "SOPS-encrypted binary-format Secret data field": an INI document,
    encrypted to sops' YAML store, in data["file.ini"]; decrypts to the INI text."""
    inner = _inner(repo, INI, input_type="ini", output_type="yaml")
    _data_secret(repo, "secret-data", "file.ini", inner)


def inside_yaml(repo: Repo) -> None:
    """decryptor_test.go "SOPS-encrypted YAML-format Secret data field"."""
    inner = _inner(repo, STRUCTURED, input_type="yaml", output_type="yaml")
    _data_secret(repo, "secret-data", "key.yaml", inner)


def patches(repo: Repo) -> None:
    """Flux's patches layout as Flux has it: a ``secretGenerator`` literal base (key=value) and
    two SOPS-encrypted patches; the first replaces the literal's value, the second adds a key, so
    every value the Secret ends with came from an encrypted patch."""
    repo.write(
        "patches/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: patches-\n"
        "patches:\n  - path: merge1.yaml\n  - path: merge2.yaml\ngeneratorOptions:\n"
        "  disableNameSuffixHash: true\nsecretGenerator:\n  - name: secret\n    literals:\n"
        "      - key=value\n",
    )
    for name, key, value in (("merge1", "key", "merge1"), ("merge2", "merge2", "merge2")):
        repo.write(f"patches/{name}.yaml", secret("secret", key, value))
        repo.encrypt(f"patches/{name}.yaml")


def component(repo: Repo) -> None:
    repo.write(
        "component/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ngeneratorOptions:\n"
        "  disableNameSuffixHash: true\nsecretGenerator:\n  - name: component\n    envs:\n"
        "      - env.env\n",
    )
    repo.write("component/env.env", "key=value\n")
    repo.encrypt("component/env.env")


def remote(repo: Repo) -> None:
    """Flux's remote layout, with its one remote resource (a Namespace from GitHub) made local:
    sealed-gitops builds local bases only. The rest is Flux's: an encrypted env file in a
    secretGenerator and a patch turning the Namespace into a ConfigMap."""
    repo.write(
        "remote/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: remote-\n"
        "resources:\n  - namespace.yaml\ngeneratorOptions:\n  disableNameSuffixHash: true\n"
        "secretGenerator:\n- name: secret\n  envs:\n  - env.env\npatches:\n  - patch: |-\n"
        "      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n"
        "        name: sops-remote-configmap\n      data:\n        key: value\n"
        "    target:\n      kind: Namespace\n    options:\n      allowNameChange: true\n"
        "      allowKindChange: true\n",
    )
    repo.write(
        "remote/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kustomize-system\n",
    )
    repo.write("remote/env.env", "key=value\n")
    repo.encrypt("remote/env.env")


def root(repo: Repo, resources: list[str], components: tuple[str, ...] = ()) -> None:
    text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: sops-\n"
    if resources:
        text += "resources:\n" + "".join(f"  - {r}\n" for r in resources)
    if components:
        text += "components:\n" + "".join(f"  - ./{c}\n" for c in components)
    repo.write("kustomization.yaml", text)


def values(obj: dict[str, Any]) -> dict[str, str]:
    """A Secret's values decoded (``data`` is base64, ``stringData`` plain); a ConfigMap's data."""
    if obj["kind"] != "Secret":
        return dict(obj.get("data") or {})
    out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    out.update(obj.get("stringData") or {})
    return out


def built(repo: Repo, **secret_entries: bytes) -> dict[tuple[str, str], dict[str, str]]:
    """``build`` of the repository root: {(kind, name): values} of the Secrets and ConfigMaps."""
    with repo.keys(**(secret_entries or repo.flux_secret())) as keys:
        result = build(root=repo.root, path=".", keys=keys)
    assert result.complete, [str(f) for f in result.failures]
    return {
        (o.id.kind, o.id.name): values(o.data)
        for o in result.objects
        if o.id.kind in ("Secret", "ConfigMap")
    }


# -- the tests: one per layout, then all of them together as Flux's root builds them ----------

LAYOUTS = {
    "algorithms": (
        algorithms,
        {
            ("Secret", "sops-algo-age"): {"key": "value"},
            ("Secret", "sops-algo-pgp"): {"key": "value"},
            ("Secret", "sops-algo-vault"): {"key": "value"},
        },
    ),
    "envs": (
        envs,
        {
            ("Secret", "sops-envs-secret"): {"key": "value"},
            ("ConfigMap", "sops-envs-configmap"): {"key": "value"},
        },
    ),
    "files": (
        files,
        {
            ("Secret", "sops-files-secret"): {"key": "value"},
            ("ConfigMap", "sops-files-configmap"): {"key": "value"},
        },
    ),
    "inside": (inside, {("Secret", "sops-inside-secret"): {"key": "value"}}),
    "inside-ini": (
        inside_ini,
        {("Secret", "sops-secret-data"): {"file.ini": INI.decode()}},
    ),
    "inside-yaml": (
        inside_yaml,
        {("Secret", "sops-secret-data"): {"key.yaml": STRUCTURED.decode()}},
    ),
    "patches": (
        patches,
        {("Secret", "sops-patches-secret"): {"key": "merge1", "merge2": "merge2"}},
    ),
    "remote": (
        remote,
        {
            ("Secret", "sops-remote-secret"): {"key": "value"},
            ("ConfigMap", "sops-remote-configmap"): {"key": "value"},
        },
    ),
}

#: the resource directory of each layout (the Secret-data formats live in formats/)
DIRECTORY = {"inside-ini": "formats", "inside-yaml": "formats"}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout(repo: Repo, layout: str) -> None:
    make, expected = LAYOUTS[layout]
    make(repo)
    root(repo, [DIRECTORY.get(layout, layout)])
    assert built(repo) == expected


def test_component(repo: Repo) -> None:
    component(repo)
    algorithms(repo)  # a component is applied over a kustomization's resources
    root(repo, ["algorithms"], ("component",))
    got = built(repo)
    assert got[("Secret", "sops-component")] == {"key": "value"}


def test_global_keys(repo: Repo) -> None:
    """Flux's "global SOPS age secret as fallback": a key Secret with an identity.agekey entry,
    and a Secret in namespace default encrypted for that key only."""
    global_key = repo.root.parent / "global.agekey"
    scratch = repo.root.parent / "g"
    scratch.mkdir()
    identity = pyrage.x25519.Identity.generate()
    global_key.write_text(f"{identity}\n")
    repo.write(
        "global/secret.yaml",
        secret("global-age-secret", "key", "global-value", namespace="default"),
    )
    repo.run_sops(
        "encrypt",
        "--age",
        str(identity.to_public()),
        "--encrypted-regex",
        REGEX,
        "--in-place",
        "global/secret.yaml",
    )
    repo.write(
        "global/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n- secret.yaml\n",
    )
    with repo.keys(**{"identity.agekey": str(identity).encode()}) as keys:
        result = build(root=repo.root, path="global", keys=keys)
    assert result.complete, [str(f) for f in result.failures]
    (obj,) = result.objects
    assert (obj.id.namespace, obj.id.name) == ("default", "global-age-secret")
    assert values(obj.data) == {"key": "global-value"}


def test_sops_yaml_stores_settings(repo: Repo) -> None:
    """A ``.sops.yaml`` with ``stores:`` (Flux's has indent 2): sops writes with that indent and
    the build reads the result; here with indent 4 so the setting is visible in the file."""
    (repo.root / ".sops.yaml").write_text(
        (repo.root / ".sops.yaml").read_text().replace("indent: 2", "indent: 4"), encoding="utf-8"
    )
    algorithms(repo)
    repo.write(
        "json/secret.json",
        '{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "json"},'
        ' "stringData": {"key": "value"}}',
    )
    # --age: no rule of Flux's .sops.yaml matches .json but the two-group fallback
    repo.encrypt("json/secret.json", "--age", repo.age.public, "--encrypted-regex", REGEX)
    repo.write("json/kustomization.yaml", "resources:\n  - secret.json\n")
    assert "\n    name: age\n" in (repo.root / "algorithms/age.yaml").read_text()
    assert '\n    "kind": "Secret"' in (repo.root / "json/secret.json").read_text()
    root(repo, ["algorithms", "json"])
    got = built(repo)
    assert got[("Secret", "sops-algo-age")] == {"key": "value"}
    assert got[("Secret", "sops-json")] == {"key": "value"}


def test_the_operator_applies_the_flux_layouts(
    setup: Setup,
    client: KubeClient,
    sops_binary: str,
    sops_env: dict[str, str],
    age_keys: list[AgeKey],
    pgp_key: PgpKey,
    transit: Transit,
    operator_factory: Callable[..., OperatorThread],
) -> None:
    """Flux's decryptor test, run by our operator: the repository in Git, a Sync with Flux's
    decryption Secret (age, PGP and a Vault token) and targetNamespace, the Secrets checked."""
    repo = make_repo(setup.repo.path, sops_binary, sops_env, age_keys, pgp_key, transit)
    for make in (algorithms, envs, files, inside, patches, remote, component):
        make(repo)
    root(repo, ["algorithms", "envs", "files", "inside", "patches", "remote"], ("component",))
    setup.repo.commit("flux sops layouts")
    setup.repo.push()
    setup.secret_object("sops-keys", dict(repo.flux_secret()))
    setup.objects(
        keys_secret=False,
        extra_spec={"path": "./", "targetNamespace": setup.namespace},
    )
    operator_factory(setup.namespace, vault_addresses=[transit.server.address])
    wait_for(lambda: is_ready(setup.kube.sync()), timeout=90, what="Sync Ready")
    for name in (
        "sops-algo-age",
        "sops-algo-pgp",
        "sops-algo-vault",
        "sops-component",
        "sops-envs-secret",
        "sops-files-secret",
        "sops-inside-secret",
        "sops-remote-secret",
    ):
        found = setup.kube.secret(name)
        assert found is not None, name
        assert values(found) == {"key": "value"}, name
    configmaps = {cm["metadata"]["name"]: cm.get("data") for cm in setup.kube.configmaps()}
    for name in ("sops-envs-configmap", "sops-files-configmap", "sops-remote-configmap"):
        assert configmaps[name] == {"key": "value"}, name
    patched = setup.kube.secret("sops-patches-secret")
    assert patched is not None
    assert values(patched) == {"key": "merge1", "merge2": "merge2"}

    # Flux's "does not emit change events for identical secrets": a new revision that changes
    # no object is applied without a create/update Event (the ciphertext differs per build; the
    # values do not)
    def applied() -> list[tuple[str, int]]:
        return sorted(
            (e.get("message", ""), int(e.get("count") or 1))
            for e in setup.kube.events()
            if e.get("reason") == "Applied"
        )

    # the Event is recorded after the status says Ready: wait for it, never read it once
    before = wait_for(applied, timeout=60, what="the first revision's Applied Event")
    repo.write("README.md", "a revision that changes no object\n")
    revision = setup.repo.commit("docs only")
    setup.repo.push()
    wait_for(
        lambda: (
            (setup.kube.sync().get("status") or {})
            .get("lastAppliedRevision", "")
            .endswith(revision)
        ),
        timeout=60,
        what="the docs-only revision applied",
    )
    assert applied() == before


# -- internal/decryptor/decryptor_test.go: TestDecryptor_decryptKustomizationSources ------------

GENERATED = (
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    "generatorOptions:\n  disableNameSuffixHash: true\nsecretGenerator:\n- name: env-secret\n"
)


@pytest.mark.parametrize("how", ["symlink", "reference"])
def test_a_source_outside_the_root_is_refused(repo: Repo, how: str) -> None:
    """ "error on symlink outside root" and "error on reference outside root": the file is
    encrypted and readable, but outside the repository; nothing of it may be read."""
    outside = repo.root.parent / "otherdir" / "data.env"
    outside.parent.mkdir()
    outside.write_text("key=outside-canary-31f\n", encoding="utf-8")
    repo.run_sops("encrypt", "--age", repo.age.public, "--in-place", str(outside))
    if how == "symlink":
        (repo.root / "symlink").symlink_to("../otherdir/data.env")
        source = "symlink"
    else:
        source = "../otherdir/data.env"
    repo.write("kustomization.yaml", GENERATED + f"  envs:\n  - {source}\n")
    with repo.keys(**repo.flux_secret()) as keys:
        try:
            result = build(root=repo.root, path=".", keys=keys)
        except SealedGitopsError as exc:
            assert "outside-canary-31f" not in str(exc)
            return
    assert not result.complete
    assert all("outside-canary-31f" not in str(o.data) for o in result.objects)


def _sync(setup: Setup, name: str, path: str, *, secret: str | None) -> None:
    spec: dict[str, Any] = {
        "repositoryRef": {"name": "app"},
        "path": path,
        "interval": "1s",
        "retryInterval": "1s",
        "targetNamespace": setup.namespace,
    }
    if secret:
        spec["decryption"] = {"secretRef": {"name": secret}}
    setup.kube.create(
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Sync",
            "metadata": {"name": name, "namespace": setup.namespace},
            "spec": spec,
        }
    )


def test_the_operator_global_key_and_a_syncs_own_keys_taking_precedence(
    setup: Setup,
    client: KubeClient,
    sops_binary: str,
    sops_env: dict[str, str],
    age_keys: list[AgeKey],
    pgp_key: PgpKey,
    transit: Transit,
    operator_factory: Callable[..., OperatorThread],
) -> None:
    """Flux's "global SOPS age secret as fallback" and "spec.decryption.secretRef takes
    precedence over global secret": the operator's --global-decryption-secret (Flux's
    --sops-age-secret, a Secret of the operator's own namespace with ``identity.agekey``) opens
    ``global/`` for a Sync that names no keys; a Sync with its own secretRef decrypts
    ``algorithms/`` with those, and does not fall back to the global key (over ``global/`` it
    fails, naming the missing key)."""
    repo = make_repo(setup.repo.path, sops_binary, sops_env, age_keys, pgp_key, transit)
    algorithms(repo)
    identity = pyrage.x25519.Identity.generate()
    repo.write("global/secret.yaml", secret("global-age-secret", "key", "global-value"))
    repo.run_sops("encrypt", "--age", str(identity.to_public()), "--encrypted-regex", REGEX,
                  "--in-place", "global/secret.yaml")  # fmt: skip
    repo.write("global/kustomization.yaml", "resources:\n- secret.yaml\n")
    setup.repo.commit("global and algorithms")
    setup.repo.push()
    system = f"sys-{setup.namespace}"
    setup.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": system}})
    setup.secret_object("sops-age", {"identity.agekey": str(identity)}, namespace=system)
    setup.secret_object("sops-keys", dict(repo.flux_secret()))
    setup.objects(keys_secret=False, extra_spec={"path": "./algorithms",
                                                 "targetNamespace": setup.namespace})  # fmt: skip
    _sync(setup, "global", "./global", secret=None)
    _sync(setup, "own-keys-only", "./global", secret="sops-keys")
    operator_factory(
        setup.namespace,
        vault_addresses=[transit.server.address],
        global_decryption_secret=f"{system}/sops-age",
    )
    try:
        wait_for(lambda: is_ready(setup.kube.sync("global")), timeout=90, what="global Ready")
        wait_for(lambda: is_ready(setup.kube.sync("app")), timeout=90, what="algorithms Ready")
        # its verdict, not its first status (DependencyNotReady until the first revision)
        failed = wait_for(
            lambda: (s := setup.kube.sync("own-keys-only"))
            and (ready(s) or {}).get("reason") == "DecryptionFailed"
            and s,
            timeout=60,
            what="own-keys-only Ready=False DecryptionFailed",
        )
        found = setup.kube.secret("global-age-secret")
        assert found is not None
        assert values(found) == {"key": "global-value"}
        algo = setup.kube.secret("algo-age")
        assert algo is not None
        assert values(algo) == {"key": "value"}
        message = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
        assert "global/secret.yaml" in message["message"], message
    finally:
        with contextlib.suppress(Exception):
            setup.kube.delete(f"/api/v1/namespaces/{system}")


@pytest.mark.parametrize("value", ["sops-age", "../kube-system/sops-age", "ns/../x", "ns/"])
def test_the_global_decryption_secret_flag_is_a_checked_namespace_and_name(value: str) -> None:
    result = CliRunner().invoke(
        cli, ["operator", "--kubeconfig", "/nonexistent", "--global-decryption-secret", value]
    )

    assert result.exit_code != 0
    assert "--global-decryption-secret" in result.output + str(result.exception)
