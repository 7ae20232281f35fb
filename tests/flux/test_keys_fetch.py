"""``keys fetch`` never weakens a repository's own ``.sops.yaml`` (issue 12, Must 4).

The attack (as it happened): a Flux + SOPS repository has its own rules, one for ``.env`` files
(every value encrypted) and one for manifests (``encrypted_regex: ^(data|stringData)$``).
``keys fetch`` used to rewrite the file with PyYAML, dropping every comment, and put a catch-all
``path_regex: .*`` rule with the manifest regex first; the real ``sops -e -i app.env`` then left
``NEW_TOKEN=...`` in plaintext. These tests fetch from a fake API server (a KeyRing's published
keys), then run the real sops on the result.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pyrage
import pytest
from click.testing import CliRunner, Result

import sealed_gitops.cluster
from sealed_gitops.cli.main import cli
from sealed_gitops.crypto.age import AgeIdentities
from sealed_gitops.crypto.sops import decrypt_file, master_key_ids

TEAM = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
OTHER_CLUSTER = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"
CANARY = "canary-token-Qm4kz7"
CERT = "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"

RULES = f"""\
# Rules of the team, reviewed in PR 12: keep the order (first match wins).
creation_rules:
  # dotenv files are encrypted whole
  - path_regex: .*\\.env$
    age: {TEAM}   # the team's laptop key

  # manifests: only the Secret's values
  - path_regex: .*\\.yaml$
    encrypted_regex: ^(data|stringData)$
    age:
      - {TEAM}
"""


class FakeCluster:
    """Answers the KeyRing GET of ``keys fetch`` with the keys a test publishes."""

    def __init__(self) -> None:
        self.keys: list[dict[str, str]] = []

    def publish(self, identity: pyrage.x25519.Identity, *, state: str = "active") -> None:
        for key in self.keys:
            if state == "active" and key["state"] == "active":
                key["state"] = "previous"
        public = str(identity.to_public())
        self.keys.append(
            {
                "fingerprint": f"{len(self.keys):02d}" + "ab" * 31,
                "state": state,
                "created": "2026-12-05T00:00:00Z",
                "ageRecipient": public,
                "sealingCertificate": CERT,
            }
        )

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        assert method == "GET" and path.endswith("/keyrings/cluster")
        return {"metadata": {"name": "cluster"}, "status": {"keys": [dict(k) for k in self.keys]}}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(sealed_gitops.cluster, "connect", lambda *_a, **_k: fake)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").mkdir()
    monkeypatch.chdir(repo)
    return fake


def fetch(*extra: str) -> Result:
    args = ["keys", "fetch", "--keyring", "flux-system/cluster", "--dir", "keys/prod", *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def sops(binary: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [binary, *args], env=env, capture_output=True, timeout=60, check=False, cwd=Path.cwd()
    )


def opened_by(data: bytes, identity: pyrage.x25519.Identity, *, file: str) -> bytes:
    return decrypt_file(data, unwrapper=AgeIdentities.from_text(f"{identity}\n"), file=file)


def test_fetch_keeps_the_rules_and_sops_still_encrypts_dotenv_whole(
    cluster: FakeCluster, sops_binary: str, sops_env: dict[str, str]
) -> None:
    identity = pyrage.x25519.Identity.generate()
    cluster.publish(identity)
    recipient = str(identity.to_public())
    Path(".sops.yaml").write_text(RULES)

    result = fetch()

    assert result.exit_code == 0, result.output
    expected = RULES.replace(f"age: {TEAM}   #", f"age: {TEAM},{recipient}   #").replace(
        f"      - {TEAM}\n", f"      - {TEAM}\n      - {recipient}\n"
    )
    assert Path(".sops.yaml").read_text() == expected
    # the change is shown, rule by rule
    assert f"+    age: {TEAM},{recipient}   # the team's laptop key" in result.output
    assert f"+      - {recipient}" in result.output

    Path("app.env").write_text(f"NEW_TOKEN={CANARY}\nPORT=5432\n")
    done = sops(sops_binary, sops_env, "-e", "-i", "app.env")
    assert done.returncode == 0, done.stderr
    encrypted = Path("app.env").read_bytes()
    assert CANARY.encode() not in encrypted
    assert b"PORT=5432" not in encrypted
    assert set(master_key_ids(encrypted, file="app.env")) == {TEAM, recipient}
    assert CANARY.encode() in opened_by(encrypted, identity, file="app.env")

    Path("secret.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  token: {CANARY}\n"
    )
    done = sops(sops_binary, sops_env, "-e", "-i", "secret.yaml")
    assert done.returncode == 0, done.stderr
    manifest = Path("secret.yaml").read_bytes()
    assert CANARY.encode() not in manifest and b"name: db" in manifest
    assert CANARY.encode() in opened_by(manifest, identity, file="secret.yaml")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # a folded scalar, as sops' own documentation writes it
        (
            "creation_rules:\n- path_regex: secrets/.*\n  age: >-\n    {team},\n    {other}\n"
            "  # trailing comment\n",
            "creation_rules:\n- path_regex: secrets/.*\n  age: >-\n    {team},\n    {other},\n"
            "    {new}\n  # trailing comment\n",
        ),
        # a flow sequence and a quoted string, and a rule without age at all
        (
            "creation_rules:\n  - {{path_regex: a/.*, age: [{team}]}}\n"
            "  - path_regex: 'b/.*'\n    age: \"{team}\"\n"
            "  - path_regex: c/.*\n    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4  # ops\n"
            "stores:\n  yaml:\n    indent: 4\n",
            "creation_rules:\n  - {{path_regex: a/.*, age: [{team}, {new}]}}\n"
            "  - path_regex: 'b/.*'\n    age: \"{team},{new}\"\n"
            "  - path_regex: c/.*\n    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4  # ops\n"
            "    age: {new}\n"
            "stores:\n  yaml:\n    indent: 4\n",
        ),
        # one key group: the cluster joins it, so it can open the data key on its own
        (
            "creation_rules:\n  - path_regex: .*\n    key_groups:\n      - age:\n"
            "          - {team}\n        pgp: [FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4]\n",
            "creation_rules:\n  - path_regex: .*\n    key_groups:\n      - age:\n"
            "          - {team}\n          - {new}\n"
            "        pgp: [FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4]\n",
        ),
    ],
    ids=["folded", "flow-quoted-missing", "one-key-group"],
)
def test_fetch_changes_only_the_recipients(cluster: FakeCluster, before: str, after: str) -> None:
    identity = pyrage.x25519.Identity.generate()
    cluster.publish(identity)
    names = {"team": TEAM, "other": OTHER_CLUSTER, "new": str(identity.to_public())}
    Path(".sops.yaml").write_text(before.format(**names))

    result = fetch()

    assert result.exit_code == 0, result.output
    assert Path(".sops.yaml").read_text() == after.format(**names)


def test_rotation_swaps_this_keyrings_recipient_in_the_rules_that_hold_it(
    cluster: FakeCluster,
) -> None:
    """After the first fetch, the rules that carry the KeyRing's key are the ones it extends: a
    rule the operator left for another cluster is not widened to this one on rotation."""
    first = pyrage.x25519.Identity.generate()
    cluster.publish(first)
    Path(".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: prod/.*\n    age: TEAM\n"
        "  - path_regex: staging/.*\n    age: OTHER  # staging cluster only\n".replace(
            "TEAM", TEAM
        ).replace("OTHER", OTHER_CLUSTER)
    )
    assert fetch("--rule-regex", "prod/.*").exit_code == 0
    second = pyrage.x25519.Identity.generate()
    cluster.publish(second)

    result = fetch()

    assert result.exit_code == 0, result.output
    assert Path(".sops.yaml").read_text() == (
        f"creation_rules:\n  - path_regex: prod/.*\n    age: {TEAM},{second.to_public()}\n"
        f"  - path_regex: staging/.*\n    age: {OTHER_CLUSTER}  # staging cluster only\n"
    )


@pytest.mark.parametrize(
    ("config", "args", "expected"),
    [
        (
            "creation_rules:\n  - path_regex: .*\n    shamir_threshold: 2\n    key_groups:\n"
            "      - age: [{team}]\n      - age: [{other}]\n",
            (),
            "key_groups",
        ),
        (
            "creation_rules:\n  - path_regex: prod/.*\n    age: {team}\n",
            ("--rule-regex", "x/.*"),
            "x/.*",
        ),
        ("creation_rules:\n  - path_regex: .*\n    age: *team\n", (), "alias"),
        ("creation_rules: [1, 2]\n", (), "creation_rules[0]"),
    ],
    ids=["two-key-groups", "unknown-rule", "alias", "not-a-rule"],
)
def test_fetch_refuses_when_it_cannot_tell_which_rules_to_extend(
    cluster: FakeCluster, config: str, args: tuple[str, ...], expected: str
) -> None:
    cluster.publish(pyrage.x25519.Identity.generate())
    text = config.format(team=TEAM, other=OTHER_CLUSTER)
    Path(".sops.yaml").write_text(text)

    result = CliRunner().invoke(
        cli, ["keys", "fetch", "--keyring", "flux-system/cluster", "--dir", "keys/prod", *args]
    )

    assert result.exit_code != 0
    assert expected in result.output and "by hand" in result.output
    assert Path(".sops.yaml").read_text() == text  # nothing written


def test_fetch_without_sops_yaml_writes_rules_that_encrypt_dotenv_whole(
    cluster: FakeCluster, sops_binary: str, sops_env: dict[str, str]
) -> None:
    identity = pyrage.x25519.Identity.generate()
    cluster.publish(identity)

    result = fetch()

    assert result.exit_code == 0, result.output
    text = Path(".sops.yaml").read_text()
    assert text.startswith("# ") and str(identity.to_public()) in text
    Path("app.env").write_text(f"NEW_TOKEN={CANARY}\n")
    Path("app.ini").write_text(f"[db]\npassword={CANARY}\n")
    for name in ("app.env", "app.ini"):
        done = sops(sops_binary, sops_env, "-e", "-i", name)
        assert done.returncode == 0, done.stderr
        assert CANARY.encode() not in Path(name).read_bytes()
        # opened by the cluster's key alone (the real sops: our INI store is helper S's part)
        opened = sops(sops_binary, {**sops_env, "SOPS_AGE_KEY": str(identity)}, "-d", name)
        assert opened.returncode == 0, opened.stderr
        assert CANARY.encode() in opened.stdout


def test_a_second_fetch_changes_nothing(cluster: FakeCluster) -> None:
    """Already a recipient (wherever it stands in the list): the file is left as it is."""
    identity = pyrage.x25519.Identity.generate()
    cluster.publish(identity)
    text = f"creation_rules:\n  - path_regex: .*\n    age: {identity.to_public()},{TEAM}\n"
    Path(".sops.yaml").write_text(text)

    result = fetch()

    assert result.exit_code == 0, result.output
    assert "unchanged" in result.output
    assert Path(".sops.yaml").read_text() == text


@pytest.mark.parametrize(
    "ref",
    [
        "flux-system/cluster/../../../../api/v1/namespaces/kube-system/secrets/admin",
        "flux-system/cluster?dryRun=All",
        "../api/cluster",
    ],
)
def test_a_keyring_record_from_git_cannot_steer_the_api_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ref: str
) -> None:
    # keys/*/keyring.yaml comes from the repository (a commit anyone may have written): its
    # NAMESPACE/NAME is refused unless it is a namespace and an object name, before any request.
    paths: list[str] = []

    class Recorder:
        def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
            paths.append(path)
            return {"metadata": {"name": "cluster"}, "status": {"keys": []}}

    monkeypatch.setattr(sealed_gitops.cluster, "connect", lambda *_a, **_k: Recorder())
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "keys" / "prod").mkdir(parents=True)
    (repo / "keys" / "prod" / "keyring.yaml").write_text(f"keyring: {ref}\nkeys: []\n")
    monkeypatch.chdir(repo)

    result = CliRunner().invoke(cli, ["keys", "fetch", "--dir", "keys/prod"])

    assert result.exit_code == 1, result.output
    assert "not a valid" in result.output
    assert paths == []
