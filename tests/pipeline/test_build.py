"""The pipeline without the cluster: render, decrypt (SOPS made by the real sops, sealed), order."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest
import yaml

from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import parse_secret, seal_secret
from sealed_gitops.crypto.sealing_keys import SealingKey
from sealed_gitops.errors import (
    FormatError,
    IntegrityError,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
)
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.sealing import SealingKeyring
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render import DocKind
from sealed_gitops.render.decrypt import DecryptionKeys

from .conftest import AgeKey, Writer, config_map, secret


class SopsEncrypt(Protocol):
    """The ``sops_encrypt`` fixture: encrypt in place for the test's age key, or ``recipient``."""

    def __call__(
        self, path: Path, *, recipient: str | None = None, everything: bool = False
    ) -> None: ...


pytestmark = pytest.mark.usefixtures("clean_env")


def keys_for(age: AgeKey, sealing: SealingKeyring | None = None) -> DecryptionKeys:
    ring = discover_keyring(age_identity_files=[age.file], use_environment=False)
    return DecryptionKeys(sops=ring, sealing=sealing)


def test_sops_sealed_and_plain_documents_become_objects_in_apply_order(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey, sealing_key: SealingKey
) -> None:
    write(
        "deploy/ns.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    write("deploy/app.yaml", config_map("app", x="1"))
    sops_encrypt(write("deploy/db.yaml", secret("db", password="s3cret-db-password")))
    sealed = seal_secret(
        parse_secret(secret("api", token="s3cret-api-token")),
        recipients=[sealing_key.public_key],
        scope=Scope.STRICT,
    )
    write("deploy/api-sealed.yaml", sealed.to_manifest())

    result = build(
        root=repo,
        path="deploy",
        keys=keys_for(age_key, SealingKeyring([sealing_key.private_key])),
    )

    assert result.complete
    kinds = [(o.id.kind, o.id.name) for o in result.objects]
    assert kinds[0] == ("Namespace", "team-a")
    assert sorted(kinds[1:]) == [("ConfigMap", "app"), ("Secret", "api"), ("Secret", "db")]
    by_name = {o.id.name: o for o in result.objects}
    assert by_name["db"].data["stringData"] == {"password": "s3cret-db-password"}
    assert "sops" not in by_name["db"].data
    assert by_name["db"].source is DocKind.SOPS
    assert base64.b64decode(by_name["api"].data["data"]["token"]) == b"s3cret-api-token"
    assert by_name["api"].source is DocKind.SEALED


def test_multi_document_sops_file_opens_with_one_mac(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    sops_encrypt(
        write("a.yaml", secret("one", p="first-value-1"), secret("two", p="second-value-2"))
    )
    result = build(root=repo, keys=keys_for(age_key))
    assert {o.id.name: o.data["stringData"]["p"] for o in result.objects} == {
        "one": "first-value-1",
        "two": "second-value-2",
    }
    assert [o.index for o in sorted(result.objects, key=lambda o: o.index)] == [0, 1]


def test_plain_secret_is_refused_unless_allowed(repo: Path, write: Writer, age_key: AgeKey) -> None:
    write("leak.yaml", secret("leak", password="plain-in-git"))
    with pytest.raises(NotEncryptedError) as info:
        build(root=repo, keys=keys_for(age_key))
    assert info.value.file == "leak.yaml"
    assert "plain-in-git" not in str(info.value)
    allowed = build(root=repo, keys=keys_for(age_key), allow_plain_secrets=True)
    assert [o.id.name for o in allowed.objects] == ["leak"]


def _tamper(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    enc = doc["stringData"]["password"]
    # flip one character of the base64 ciphertext
    head, data = enc.split("data:", 1)
    flipped = ("B" if data[0] != "B" else "C") + data[1:]
    doc["stringData"]["password"] = head + "data:" + flipped
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_atomic_policy_fails_the_revision_and_names_the_file(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    write("ok.yaml", config_map("fine"))
    bad = write("bad.yaml", secret("db", password="tampered-value-1"))
    sops_encrypt(bad)
    _tamper(bad)
    with pytest.raises((MacMismatch, IntegrityError)) as info:
        build(root=repo, keys=keys_for(age_key))
    assert info.value.file == "bad.yaml"
    assert "tampered-value-1" not in str(info.value)


def test_isolate_policy_leaves_the_failing_document_out_and_lists_it(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey, other_age_key: AgeKey
) -> None:
    write("ok.yaml", config_map("fine"))
    sops_encrypt(write("good.yaml", secret("good", password="good-value-1")))
    sops_encrypt(
        write("foreign.yaml", secret("foreign", password="foreign-value")),
        recipient=other_age_key.public,
    )
    result = build(root=repo, keys=keys_for(age_key), policy=FailurePolicy.ISOLATE)
    assert sorted(o.id.name for o in result.objects) == ["fine", "good"]
    assert not result.complete
    [failure] = result.failures
    assert failure.file == "foreign.yaml"
    assert failure.index == 0
    assert isinstance(failure.error, NoMatchingKey)
    assert other_age_key.public in str(failure.error)  # names the key id it needed


def test_document_invalid_after_decryption_is_named(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    path = write(
        "nameless.yaml",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "x"},
            "stringData": {"k": "hidden-name-val"},
        },
    )
    # metadata encrypted too, so the name is only known after decryption
    sops_encrypt(path, everything=True)
    result = build(root=repo, keys=keys_for(age_key))
    assert [o.id.name for o in result.objects] == ["x"]

    # the same object twice, hidden by encryption until after decryption
    path2 = write(
        "dup.yaml",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "x"},
            "stringData": {"k": "dup-hidden-val"},
        },
    )
    sops_encrypt(path2, everything=True)
    with pytest.raises(FormatError) as info:
        build(root=repo, keys=keys_for(age_key))
    assert "also defined" in str(info.value)
    assert "dup-hidden-val" not in str(info.value)


def test_unchanged_file_costs_no_second_unwrap(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    for n in range(5):
        sops_encrypt(write(f"s{n}.yaml", secret(f"s{n}", password=f"value-number-{n}")))
    keys = keys_for(age_key)
    build(root=repo, keys=keys)
    ring = keys.sops
    first = ring.operation_count()  # type: ignore[union-attr]
    assert first == 5
    build(root=repo, keys=keys)
    assert ring.operation_count() == first  # type: ignore[union-attr]
    assert ring.cache_hits >= 5  # type: ignore[union-attr]


def test_sealed_without_keys_fails_clearly(
    repo: Path, write: Writer, sealing_key: SealingKey, age_key: AgeKey
) -> None:
    sealed = seal_secret(
        parse_secret(secret("api", token="sealed-no-key-val")),
        recipients=[sealing_key.public_key],
        scope=Scope.STRICT,
    )
    write("s.yaml", sealed.to_manifest())
    with pytest.raises(NoMatchingKey) as info:
        build(root=repo, keys=keys_for(age_key))
    assert info.value.file == "s.yaml"


def _cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealed_gitops", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_cli_build_masks_values_unless_asked(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    import os

    sops_encrypt(write("deploy/db.yaml", secret("db", password="cli-canary-password")))
    write("deploy/cm.yaml", config_map("cm", k="v"))
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(age_key.file)}
    masked = _cli("build", str(repo / "deploy"), env=env)
    assert masked.returncode == 0, masked.stderr
    assert "cli-canary-password" not in masked.stdout + masked.stderr
    docs = list(yaml.safe_load_all(masked.stdout))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Secret"]
    assert docs[1]["stringData"] == {"password": "[REDACTED]"}

    shown = _cli("build", str(repo / "deploy"), "--show-secrets", "-o", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "cli-canary-password" in shown.stdout


def test_cli_build_failure_is_one_line_without_traceback(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey, other_age_key: AgeKey
) -> None:
    import os

    sops_encrypt(write("db.yaml", secret("db", password="cli-canary-other")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env.update({"SOPS_AGE_KEY_FILE": str(other_age_key.file), "HOME": str(repo / ".home")})
    result = _cli("build", str(repo), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: db.yaml")
    assert age_key.public in result.stderr
    assert "cli-canary-other" not in result.stderr + result.stdout


def test_only_encrypted_values_are_registered_for_redaction(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    from sealed_gitops import redact

    sops_encrypt(write("s.yaml", secret("db", "plainns-visible", password="only-this-is-secret")))
    build(root=repo, keys=keys_for(age_key))
    assert redact.is_registered("only-this-is-secret")
    assert redact.redact("namespace plainns-visible") == "namespace plainns-visible"
    assert redact.redact("Opaque") == "Opaque"


def test_content_cache_reuses_unchanged_files_and_rechecks_changed_ones(
    repo: Path, write: Writer, sops_encrypt: SopsEncrypt, age_key: AgeKey
) -> None:
    from sealed_gitops.render.cache import ContentCache

    for n in range(3):
        sops_encrypt(write(f"s{n}.yaml", secret(f"s{n}", password=f"cached-value-{n}")))
    write("cm.yaml", config_map("cm", k="v"))
    cache = ContentCache()
    keys = keys_for(age_key)
    first = build(root=repo, keys=keys, cache=cache)
    assert cache.misses == 7 and cache.hits == 0  # 4 files parsed + 3 SOPS files decrypted
    again = build(root=repo, keys=keys, cache=cache)
    assert cache.hits == 7
    assert [o.data for o in again.objects] == [o.data for o in first.objects]

    # a changed file is parsed and decrypted again (MAC checked), the others are not
    _tamper(repo / "s1.yaml")
    with pytest.raises((MacMismatch, IntegrityError)):
        build(root=repo, keys=keys, cache=cache)
    sops_encrypt(write("s1.yaml", secret("s1", password="cached-value-new")))
    before = cache.misses
    result = build(root=repo, keys=keys, cache=cache)
    # the new s1 is parsed and decrypted; s2's decryption was swept by the failed (atomic) build,
    # which stopped before reaching it; s0, s2's parse and the ConfigMap come from the cache
    assert cache.misses == before + 3
    assert {o.id.name: o.data.get("stringData") for o in result.objects}["s1"] == {
        "password": "cached-value-new"
    }
    assert len(cache) == 7  # the tampered version is gone
