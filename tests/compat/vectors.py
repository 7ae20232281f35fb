"""Published SOPS test vectors of other projects, and the published keys that open them.

Why a table: every vector is checked the same ways (our library, our CLI, the real sops), so each
one is a row here and the tests are parametrized over the rows. The files themselves live under
``tests/data/compat/<project>/`` at the path they have in their own repository; the README.md there
names the commit and the license of each.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.testing.gnupg import GnupgHome, gnupg_home

DATA = Path(__file__).resolve().parents[1] / "data" / "compat"

#: key name -> (project, path of the published private key)
KEYS: dict[str, tuple[str, str]] = {
    "sops-pgp": ("sops", "pgp/sops_functional_tests_key.asc"),
    "helm-pgp": ("helm-secrets", "tests/assets/gpg/private.gpg"),
    "helm-pgp2": ("helm-secrets", "tests/assets/gpg/private2.gpg"),
    "helm-age": ("helm-secrets", "tests/assets/age/key.txt"),
    "ksops-pgp": ("kustomize-sops", "test/key.asc"),
    "nix-pgp": ("sops-nix", "pkgs/sops-install-secrets/test-assets/key.asc"),
    "nix-ssh-pgp": ("sops-nix", "pkgs/sops-install-secrets/test-assets/ssh-key.asc"),
    "nix-age": ("sops-nix", "pkgs/sops-install-secrets/test-assets/age-keys.txt"),
    "tf-pgp": ("terraform-provider-sops", "test/testing-key.pgp"),
    "sso-age": ("sops-secrets-operator", "config/age-test-key/key-file.txt"),
}


@dataclass(frozen=True)
class Vector:
    """One published encrypted file, the key that opens it, and how to read it."""

    project: str
    path: str
    key: str
    #: ``--input-type`` / ``--output-type`` (None: sops' pick by file name)
    fmt: str | None = None
    #: check the file out with CRLF line ends, as its project's .gitattributes does
    crlf: bool = False
    #: the same file is listed once per key that opens it: the id then names the key
    by_key: bool = False

    @property
    def id(self) -> str:
        suffix = (":crlf" if self.crlf else "") + (f"@{self.key}" if self.by_key else "")
        return f"{self.project}:{self.path}{suffix}"

    @property
    def source(self) -> Path:
        return DATA / self.project / self.path

    @property
    def expected(self) -> Path:
        """What the real sops 3.11.0 printed for the file (see the project's README.md)."""
        return DATA / self.project / "expected" / self.path

    def encrypted_bytes(self) -> bytes:
        data = self.source.read_bytes()
        return data.replace(b"\n", b"\r\n") if self.crlf else data

    def materialize(self, folder: Path) -> Path:
        """The file as a user has it on disk (CRLF where its project checks it out so)."""
        target = folder / Path(self.path).name
        target.write_bytes(self.encrypted_bytes())
        return target


def _helm(path: str, key: str = "helm-pgp", **kwargs: object) -> Vector:
    return Vector("helm-secrets", f"tests/assets/values/sops/{path}", key, **kwargs)  # type: ignore[arg-type]


def _ksops(path: str) -> Vector:
    return Vector("kustomize-sops", f"test/krm/{path}", "ksops-pgp")


def _nix(name: str, key: str = "nix-pgp", *, by_key: bool = False) -> Vector:
    return Vector("sops-nix", f"pkgs/sops-install-secrets/test-assets/{name}", key, by_key=by_key)


def _sso(name: str) -> Vector:
    return Vector("sops-secrets-operator", f"config/age-test-key/{name}", "sso-age")


def _tf(name: str) -> Vector:
    return Vector("terraform-provider-sops", f"sops/test-fixtures/{name}", "tf-pgp")


VECTORS: list[Vector] = [
    Vector("sops", "functional-tests/res/comments_unencrypted_comments.yaml", "sops-pgp"),
    Vector("sops", "functional-tests/res/format.enc.env", "sops-pgp"),
    Vector("sops", "functional-tests/res/format.enc.ini", "sops-pgp"),
    Vector("sops", "functional-tests/res/format-2.enc.ini", "sops-pgp"),
    Vector("sops", "example.ini", "sops-pgp"),
    Vector("sops", "example.txt", "sops-pgp"),
    Vector("sops", "examples/all_in_one/config/secret.enc.json", "sops-pgp"),
    Vector("sops", "examples/per_file/config.enc/static_github.json", "sops-pgp"),
    _helm("secrets.yaml"),
    _helm("http.secrets.yaml"),
    _helm("some-secrets.yaml"),
    _helm("some-secrets.windows.yaml", crlf=True),
    _helm("secrets.age.yaml", key="helm-age"),
    _helm("secrets.gpg_key.yaml", key="helm-pgp2"),
    _helm("secrets.yaml.gotpl", fmt="yaml"),
    _helm("secrets.trailing-newline.yaml"),
    _helm("secrets.trailing-newline.raw"),
    _helm("files/file.json"),
    _helm("files/file.yaml"),
    _helm("files/file.properties"),
    _ksops("single/secret.enc.yaml"),
    _ksops("multiple/secret-A.enc.yaml"),
    _ksops("multiple/secret-B.enc.yaml"),
    _ksops("multiple/secret-C.enc.yaml"),
    _ksops("hash/secret.enc.yaml"),
    _ksops("behaviors/secret.enc.yaml"),
    _ksops("file/secret.enc.yaml"),
    _ksops("binaryfile/secret.enc.yaml"),
    _ksops("override/secret.enc.yaml"),
    _ksops("envs/secret.enc.env"),
    _ksops("metadata/secret.enc.env"),
    _nix("secrets.yaml", by_key=True),
    _nix("secrets.yaml", "nix-age", by_key=True),
    _nix("secrets.yaml", "nix-ssh-pgp", by_key=True),
    _nix("secrets.json"),
    _nix("secrets.bin"),
    _nix("secrets.env"),
    _nix("secrets.env", "nix-ssh-pgp", by_key=True),
    _nix("secrets.ini"),
    _tf("basic.yaml"),
    _tf("basic.json"),
    _tf("nested.yaml"),
    _tf("simple-list.yaml"),
    _tf("complex-list.yaml"),
    _tf("raw.txt"),
    _sso("00-test-secrets.yaml"),
    _sso("02-test-secrets.yaml"),
    _sso("03-test-secrets-enforce-ownership.yaml"),
    _sso("04-test-secrets-mac-only.yaml"),
]

BY_ID = {vector.id: vector for vector in VECTORS}


@dataclass(frozen=True)
class Opened:
    """A temporary GnuPG home (and age identity files) holding exactly one published key."""

    home: GnupgHome
    age_files: tuple[Path, ...]

    def keyring(self) -> KeyRing:
        return discover_keyring(
            gnupghome=self.home.path, age_identity_files=self.age_files, use_environment=False
        )

    def cli_args(self) -> list[str]:
        args = ["--gnupghome", str(self.home.path)]
        for path in self.age_files:
            args += ["--age-identity", str(path)]
        return args

    def sops_env(self) -> dict[str, str]:
        env = _clean_env()
        env["GNUPGHOME"] = str(self.home.path)
        if self.age_files:
            env["SOPS_AGE_KEY_FILE"] = str(self.age_files[0])
        return env


@contextlib.contextmanager
def opened_with(key: str) -> Iterator[Opened]:
    """A fresh GNUPGHOME for one test with the published key imported (or its age file named);
    the home's gpg-agent is killed and the home removed on exit."""
    project, path = KEYS[key]
    source = DATA / project / path
    with gnupg_home() as home:
        if source.suffix == ".txt":
            yield Opened(home=home, age_files=(source,))
        else:
            home.import_key(source.read_bytes())
            yield Opened(home=home, age_files=())


def _clean_env() -> dict[str, str]:
    """No key from the developer's environment reaches the process under test."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOPS_", "VAULT_", "SEALED_GITOPS_"))
        and k not in ("GNUPGHOME", "EDITOR", "VISUAL", "XDG_CONFIG_HOME")
    }
    env["SOPS_DISABLE_VERSION_CHECK"] = "true"
    return env


def run_cli(args: list[str], *, home: Path) -> subprocess.CompletedProcess[bytes]:
    """``sealed-gitops ARGS`` as a user runs it, with HOME in the test folder."""
    env = _clean_env()
    env["HOME"] = str(home)
    return subprocess.run(
        [str(Path(sys.executable).parent / "sealed-gitops"), *args],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
