"""Issue 11, findings 4 and 9: where a Vault token may be sent, and which Vault path it may hit.

Finding 4, the attack: a tenant's decryption Secret holds ``sops.vault-token``; a committer (who
needs no key at all) pushes a SOPS file whose ``hc_vault`` stanza names the committer's own
server, over plain HTTP. The data key is needed before the MAC can be checked, so the operator
used to send the tenant's token there on the first reconcile. Now, in the default deployment (no
``--vault-address``) the operator sends that token nowhere, a listed ``https://`` address does
not let the same host be reached over ``http://``, the file fails with an error naming the file
and the address, and the other files still apply. A listed address still opens transit files
(a real OpenBao server).

The CLI side: ``sealed-gitops decrypt`` (and ``build``/``diff`` on a pull request) uses the
user's own ``VAULT_TOKEN``. A hostile file in a PR would send the reviewer's token to its
address, as sops does; the CLI sends it only to ``VAULT_ADDR`` or an address listed in
``SEALED_GITOPS_VAULT_ADDRESSES``.

Finding 9, the attack: ``key_name: ../../auth/token/revoke-self`` in a stanza naming the
tenant's own (allowed) Vault made the operator POST to ``/v1/auth/token/revoke-self``: the
tenant's token was revoked. ``engine_path`` and ``key_name`` are now checked as Vault path
segments when the metadata is parsed, and quoted when the URL is built.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml
from click.testing import CliRunner

from sealed_gitops.cli.main import cli
from sealed_gitops.crypto.sops import KeyStanza, encrypt_bytes
from sealed_gitops.crypto.sops.ops import master_key_ids
from sealed_gitops.errors import FormatError
from sealed_gitops.keys.vault import VaultTransitKey
from tests.conftest_tools import Transit
from tests.operator.conftest import (
    Setup,
    wait_for,
)

#: The tenant's Vault token: the canary the committer's server must never see.
TENANT_TOKEN = "tenant-vault-token-canary-5e1f"


# -- the committer's "Vault" -------------------------------------------------------------------


@dataclass
class Recorder:
    """A server of the committer's: records every request (and its token), answers 403."""

    address: str
    seen: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        recorder: Recorder = self.server.recorder  # type: ignore[attr-defined]
        recorder.seen.append(f"{self.command} {self.path} {self.headers.get('X-Vault-Token')}")
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errors": ["permission denied"]}')

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def committer_vault() -> Iterator[Recorder]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    recorder = Recorder(address=f"http://127.0.0.1:{server.server_address[1]}")
    server.recorder = recorder  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ForgedVaultKey:
    """What a committer writes: an ``hc_vault`` stanza of their choosing, no Vault involved."""

    address: str
    engine_path: str = "transit"
    key_name: str = "app"

    kind = "hc_vault"

    @property
    def key_id(self) -> str:
        return f"{self.address}/v1/{self.engine_path}/keys/{self.key_name}"

    def wrap(self, data_key: bytes) -> KeyStanza:
        return KeyStanza(
            "hc_vault",
            {
                "vault_address": self.address,
                "engine_path": self.engine_path,
                "key_name": self.key_name,
                "created_at": "2026-01-01T00:00:00Z",
                "enc": "vault:v1:" + "A" * 60,
            },
        )


def _secret(name: str, ns: str, value: str) -> bytes:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"value": value},
    }
    return yaml.safe_dump(doc, sort_keys=False).encode()


def _forged_file(name: str, ns: str, key: _ForgedVaultKey) -> str:
    return encrypt_bytes(_secret(name, ns, "x"), key_groups=[[key]], file="f.yaml").decode()


def _transit_file(name: str, ns: str, *, uri: str, token: str, value: str) -> str:
    key = VaultTransitKey.from_uri(uri, token=token)
    return encrypt_bytes(_secret(name, ns, value), key_groups=[[key]], file="t.yaml").decode()


def _tenant_objects(env: Setup, token: str) -> None:
    """The tenant's decryption Secret (age key and Vault token), Repository and Sync (Isolate:
    a failing file is left out and listed, the rest applies)."""
    env.secret_object("sops-keys", {"identity.agekey": env.age_secret, "sops.vault-token": token})
    env.objects(policy="Isolate", keys_secret=False)


def _failures(env: Setup) -> list[dict[str, Any]]:
    sync = wait_for(
        lambda: (s := env.kube.sync()) and (s.get("status") or {}).get("failures") and s,
        what="failures in the Sync's status",
    )
    return list(sync["status"]["failures"])


def _failure_text(failure: dict[str, Any]) -> str:
    return " ".join(str(v) for v in failure.values())


# -- finding 4: the operator ---------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("listed", ["nothing", "https-of-the-same-host"])
def test_committed_stanza_cannot_collect_the_tenants_token(
    setup: Setup,
    operator_factory: Any,
    committer_vault: Recorder,
    listed: str,
) -> None:
    """Default deployment (no --vault-address), and a list naming the same host with https:
    the committer's http:// server gets nothing, the file fails naming file and address, the
    tenant's other file applies."""
    ns = setup.namespace
    setup.push(
        {
            "deploy/good.yaml": setup.encrypt(yaml.safe_load(_secret("good", ns, "good-value-4"))),
            "deploy/evil.yaml": _forged_file(
                "evil", ns, _ForgedVaultKey(address=committer_vault.address)
            ),
        }
    )
    _tenant_objects(setup, TENANT_TOKEN)
    allowed = {
        "nothing": [],
        "https-of-the-same-host": [f"https://127.0.0.1:{committer_vault.port}"],
    }[listed]
    operator_factory(ns, vault_addresses=allowed)
    wait_for(lambda: setup.kube.secret("good"), what="the good file's Secret")
    [failure] = _failures(setup)
    assert failure["file"] == "deploy/evil.yaml"
    assert committer_vault.address in _failure_text(failure)
    time.sleep(1.0)  # another reconcile or two: a late request would show up here
    assert committer_vault.seen == []
    assert setup.kube.secret("evil") is None
    assert TENANT_TOKEN not in str(setup.kube.sync())


@pytest.mark.e2e
@pytest.mark.slow
def test_a_listed_vault_still_opens_transit_files(
    setup: Setup,
    operator_factory: Any,
    transit: Transit,
) -> None:
    """The admin lists the Vault (here plain http on loopback, written as http:// on purpose):
    the tenant's token opens the transit file there."""
    ns = setup.namespace
    server = transit.server
    setup.push(
        {
            "deploy/api.yaml": _transit_file(
                "api", ns, uri=transit.uri, token=server.token, value="transit-value-4"
            )
        }
    )
    _tenant_objects(setup, server.token)
    operator_factory(ns, vault_addresses=[server.address])
    secret = wait_for(lambda: setup.kube.secret("api"), what="the transit file's Secret")
    assert secret["data"]["value"] == "dHJhbnNpdC12YWx1ZS00"  # base64 of transit-value-4


# -- finding 4: the CLI --------------------------------------------------------------------------


@pytest.fixture
def user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A CLI user with a Vault token and VAULT_ADDR naming their own Vault, nothing else."""
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "SEALED_GITOPS_VAULT_ADDRESSES", "SOPS_AGE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "no-gnupg"))
    monkeypatch.setenv("VAULT_TOKEN", TENANT_TOKEN)
    monkeypatch.setenv("VAULT_ADDR", "https://vault.example.invalid:8200")
    return tmp_path


def test_cli_sends_the_users_token_only_to_its_own_vault(
    user_env: Path, committer_vault: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file from a pull request names the committer's server: the reviewer's VAULT_TOKEN is
    not sent there unless the reviewer lists that address."""
    path = user_env / "pr.yaml"
    path.write_text(_forged_file("evil", "team", _ForgedVaultKey(address=committer_vault.address)))
    result = CliRunner().invoke(cli, ["decrypt", str(path)], catch_exceptions=False)
    # 128 is sops' "could not retrieve the data key": the refused address leaves no usable key.
    assert result.exit_code == 128
    assert str(path) in result.stderr and committer_vault.address in result.stderr
    assert "SEALED_GITOPS_VAULT_ADDRESSES" in result.stderr
    assert committer_vault.seen == []
    # Listing it is the user's explicit choice, and then (only then) the token goes there.
    monkeypatch.setenv("SEALED_GITOPS_VAULT_ADDRESSES", committer_vault.address)
    result = CliRunner().invoke(cli, ["decrypt", str(path)], catch_exceptions=False)
    assert result.exit_code == 128  # the recorder is no Vault: it answers nothing useful
    assert any(TENANT_TOKEN in line for line in committer_vault.seen)


# -- finding 9 -----------------------------------------------------------------------------------


def _token_works(address: str, token: str) -> bool:
    try:
        hvac.Client(url=address, token=token, timeout=10).auth.token.lookup_self()
    except hvac.exceptions.VaultError:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.slow
def test_key_name_cannot_walk_out_of_transit(
    setup: Setup,
    operator_factory: Any,
    transit: Transit,
) -> None:
    """``key_name: ../../auth/token/revoke-self`` used to revoke the tenant's token."""
    ns = setup.namespace
    server = transit.server
    root = hvac.Client(url=server.address, token=server.token, timeout=10)
    tenant_token = root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    assert _token_works(server.address, tenant_token)
    hostile = _ForgedVaultKey(
        address=server.address, engine_path="sops", key_name="../../auth/token/revoke-self"
    )
    setup.push(
        {
            "deploy/good.yaml": setup.encrypt(yaml.safe_load(_secret("good", ns, "good-value-9"))),
            "deploy/evil.yaml": _forged_file("evil", ns, hostile),
        }
    )
    _tenant_objects(setup, tenant_token)
    operator_factory(ns, vault_addresses=[server.address])
    wait_for(lambda: setup.kube.secret("good"), what="the good file's Secret")
    [failure] = _failures(setup)
    time.sleep(1.0)  # a few more reconciles of the hostile file
    assert _token_works(server.address, tenant_token), "the hostile stanza revoked the token"
    assert failure["file"] == "deploy/evil.yaml"
    assert "key_name" in _failure_text(failure)


@pytest.mark.parametrize(
    ("engine_path", "key_name"),
    [
        ("sops", "../../auth/token/revoke-self"),
        ("sops", ".."),
        ("sops", "."),
        ("sops", "a/b"),
        ("sops", ""),
        ("sops", "k%2F..%2F.."),
        ("sops", "k?x=1"),
        ("sops", "k#frag"),
        ("sops", "k\\..\\x"),
        ("sops", "k\nx"),
        ("../auth/token", "revoke-self"),
        ("sops/../../sys", "k"),
        ("sops/./x", "k"),
        ("sops//x", "k"),
        ("%2e%2e/sys", "k"),
        ("", "k"),
    ],
)
def test_vault_path_segments_are_checked_when_the_file_is_parsed(
    engine_path: str, key_name: str
) -> None:
    key = _ForgedVaultKey(
        address="https://vault.example.invalid:8200", engine_path=engine_path, key_name=key_name
    )
    data = encrypt_bytes(_secret("s", "ns", "x"), key_groups=[[key]], file="f.yaml")
    with pytest.raises(FormatError) as caught:
        master_key_ids(data, file="deploy/evil.yaml")
    assert "deploy/evil.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("engine_path", "key_name"),
    [("transit", "app"), ("team/a/transit", "second"), ("sops", "my.key-v2_x")],
)
def test_ordinary_vault_paths_still_parse(engine_path: str, key_name: str) -> None:
    key = _ForgedVaultKey(
        address="https://vault.example.invalid:8200", engine_path=engine_path, key_name=key_name
    )
    data = encrypt_bytes(_secret("s", "ns", "x"), key_groups=[[key]], file="f.yaml")
    assert master_key_ids(data, file="f.yaml") == [key.key_id]


def test_the_unwrapper_checks_and_quotes_the_path_itself(committer_vault: Recorder) -> None:
    """Defence in depth below the parser (a stanza may come from elsewhere, e.g. re-encrypt):
    a dot segment never leaves the process, and every segment is percent-quoted."""
    from sealed_gitops.errors import IntegrityError, KeyProviderError
    from sealed_gitops.keys.vault import VaultUnwrapper

    unwrapper = VaultUnwrapper(token=TENANT_TOKEN, allowed_addresses=[committer_vault.address])
    hostile = _ForgedVaultKey(committer_vault.address, "sops", "../../auth/token/revoke-self")
    with pytest.raises(IntegrityError, match="key_name"):
        unwrapper.unwrap(hostile.wrap(b""))
    assert committer_vault.seen == []
    odd = _ForgedVaultKey(committer_vault.address, "team:a/transit", "k:é")
    with pytest.raises(KeyProviderError, match="denied"):
        unwrapper.unwrap(odd.wrap(b""))
    assert [line.split()[1] for line in committer_vault.seen] == [
        "/v1/team%3Aa/transit/decrypt/k%3A%C3%A9"
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, frozenset()),
        ({"VAULT_ADDR": "HTTPS://Vault.example:8200/"}, {"https://vault.example:8200"}),
        (
            {
                "VAULT_ADDR": "https://a:8200",
                "SEALED_GITOPS_VAULT_ADDRESSES": "https://b, http://c:1",
            },
            {"https://a:8200", "https://b", "http://c:1"},
        ),
        ({"SEALED_GITOPS_VAULT_ADDRESSES": "*"}, None),
    ],
)
def test_cli_allow_list_from_the_environment(
    env: dict[str, str], expected: frozenset[str] | None
) -> None:
    from sealed_gitops.keys.vault_addresses import cli_vault_addresses

    assert cli_vault_addresses(env) == expected


def test_cli_allow_list_refuses_what_is_not_an_address() -> None:
    from sealed_gitops.errors import ConfigError
    from sealed_gitops.keys.vault_addresses import cli_vault_addresses

    with pytest.raises(ConfigError, match="SEALED_GITOPS_VAULT_ADDRESSES"):
        cli_vault_addresses({"SEALED_GITOPS_VAULT_ADDRESSES": "vault:8200"})
