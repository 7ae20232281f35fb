"""Recipient strings and creation-rule key groups to MasterKeys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pyrage
import pytest

from sealed_gitops.crypto.sops import load_creation_rules, match_creation_rule
from sealed_gitops.crypto.sops.masterkey import MasterKey
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.keys.pgp import GnuPG
from sealed_gitops.keys.recipients import (
    KeyFactory,
    classify_recipient,
    key_groups_from_rule,
    master_key,
    master_keys,
    split_list,
)
from tests.conftest_tools import PgpKey, Transit

AGE = str(pyrage.x25519.Identity.generate().to_public())


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (AGE, "age"),
        ("FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4", "pgp"),
        ("0x3D16CEE4A27381B4", "pgp"),
        ("https://vault.example.com:8200/v1/transit/keys/app", "hc_vault"),
        ("http://127.0.0.1:8200/v1/a/b/keys/c", "hc_vault"),
    ],
    ids=["age", "pgp-fingerprint", "pgp-keyid", "vault-https", "vault-nested"],
)
def test_classify_recipient(text: str, kind: str) -> None:
    assert classify_recipient(text) == kind


@pytest.mark.parametrize("text", ["", "age1short", "arn:aws:kms:eu-west-1:1:key/x", "hello"])
def test_unrecognised_recipient(text: str) -> None:
    with pytest.raises(ConfigError):
        classify_recipient(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("a,b", ["a", "b"]),
        (" a , ,b ", ["a", "b"]),
        (["a", "b,c"], ["a", "b", "c"]),
    ],
)
def test_split_list(value: str | list[str] | None, expected: list[str]) -> None:
    assert split_list(value) == expected


@dataclass
class Group:
    age: list[str] = field(default_factory=list)
    pgp: list[str] = field(default_factory=list)
    hc_vault: list[str] = field(default_factory=list)


@dataclass
class Rule:
    age: str | None = None
    pgp: str | None = None
    hc_vault_transit_uri: str | None = None
    key_groups: list[Group] = field(default_factory=list)


def test_flags_and_rules_make_keys_that_round_trip(
    pgp_key: PgpKey, transit: Transit, tmp_path: object
) -> None:
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    factory = KeyFactory(
        gnupg_home=GnuPG(home=str(pgp_key.home.path)), vault_token=transit.server.token
    )
    keys = master_keys(
        age=[recipient], pgp=[pgp_key.fingerprint], vault=[transit.uri], factory=factory
    )
    assert [k.kind for k in keys] == ["age", "pgp", "hc_vault"]
    assert [k.key_id for k in keys] == [recipient, pgp_key.fingerprint, transit.uri]
    assert all(isinstance(k, MasterKey) for k in keys)

    id_file = pgp_key.home.path.parent / f"age-{os.getpid()}-{id(keys)}.txt"
    id_file.write_text(f"{identity}\n")
    try:
        ring = discover_keyring(
            age_identity_files=[id_file],
            gnupghome=pgp_key.home.path,
            vault_token=transit.server.token,
            use_environment=False,
        )
        data_key = os.urandom(32)
        for key in keys:
            assert ring.unwrap(key.wrap(data_key)) == data_key
    finally:
        id_file.unlink()


def test_rule_without_key_groups_is_one_group(pgp_key: PgpKey) -> None:
    factory = KeyFactory(gnupg_home=GnuPG(home=str(pgp_key.home.path)))
    rule = Rule(age=f"{AGE},{AGE}", pgp=pgp_key.fingerprint)
    groups = key_groups_from_rule(rule, factory=factory)
    assert [[k.kind for k in g] for g in groups] == [["age", "age", "pgp"]]


def test_rule_with_key_groups(pgp_key: PgpKey, transit: Transit) -> None:
    factory = KeyFactory(gnupg_home=GnuPG(home=str(pgp_key.home.path)))
    rule = Rule(
        age="ignored-when-key-groups-exist",
        key_groups=[
            Group(age=[AGE]),
            Group(pgp=[pgp_key.fingerprint], hc_vault=[transit.uri]),
        ],
    )
    groups = key_groups_from_rule(rule, factory=factory)
    assert [[k.kind for k in g] for g in groups] == [["age"], ["pgp", "hc_vault"]]


def test_plain_mapping_rules_work_too() -> None:
    groups = key_groups_from_rule({"key_groups": [{"age": [AGE]}, {"age": AGE}]})
    assert [[k.key_id for k in g] for g in groups] == [[AGE], [AGE]]


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({}, "names no age"),
        ({"kms": "arn:aws:kms:x"}, "sops binary"),
        ({"key_groups": [{"gcp_kms": [{"resource_id": "x"}]}]}, "sops binary"),
        ({"age": "age1nope"}, "not an age"),
    ],
)
def test_unusable_rules(rule: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        key_groups_from_rule(rule)


def test_master_key_recognises_the_kind() -> None:
    assert master_key(AGE).kind == "age"
    with pytest.raises(ConfigError):
        master_key("arn:aws:kms:eu-west-1:1:key/x")


def test_rules_from_the_engines_sops_yaml_parser(pgp_key: PgpKey, transit: Transit) -> None:
    rules = load_creation_rules(
        "creation_rules:\n"
        "  - path_regex: flat\\.yaml$\n"
        f"    age: '{AGE}'\n"
        f"    pgp: '{pgp_key.fingerprint}'\n"
        f"    hc_vault_transit_uri: '{transit.nested_uri}'\n"
        "  - path_regex: grouped\\.yaml$\n"
        "    shamir_threshold: 2\n"
        "    key_groups:\n"
        f"      - age: ['{AGE}']\n"
        f"      - pgp: ['{pgp_key.fingerprint}']\n"
        f"        hc_vault: ['{transit.uri}']\n"
    )
    factory = KeyFactory(gnupg_home=GnuPG(home=str(pgp_key.home.path)))
    flat = match_creation_rule(rules, "app/flat.yaml")
    grouped = match_creation_rule(rules, "app/grouped.yaml")
    assert flat is not None and grouped is not None
    assert [[k.key_id for k in g] for g in key_groups_from_rule(flat, factory=factory)] == [
        [AGE, pgp_key.fingerprint, transit.nested_uri]
    ]
    assert [[k.kind for k in g] for g in key_groups_from_rule(grouped, factory=factory)] == [
        ["age"],
        ["pgp", "hc_vault"],
    ]
