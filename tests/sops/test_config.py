"""The ``.sops.yaml`` parser: creation rules read the way sops reads them, first match wins."""

from __future__ import annotations

import pytest

from sealed_gitops.crypto.sops import (
    CreationRule,
    KeyGroupSpec,
    Rules,
    load_creation_rules,
    match_creation_rule,
)
from sealed_gitops.errors import ConfigError

AGE1 = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
AGE2 = "age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg"
FPR = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
VAULT = "http://127.0.0.1:8200/v1/transit/keys/app"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            f"creation_rules:\n  - age: {AGE1}\n",
            CreationRule(key_groups=(KeyGroupSpec(age=(AGE1,)),)),
        ),
        (
            f"creation_rules:\n  - age: '{AGE1}, {AGE2}'\n",
            CreationRule(key_groups=(KeyGroupSpec(age=(AGE1, AGE2)),)),
        ),
        (
            f"creation_rules:\n  - age:\n      - {AGE1}\n      - {AGE2}\n",
            CreationRule(key_groups=(KeyGroupSpec(age=(AGE1, AGE2)),)),
        ),
        (
            f"creation_rules:\n  - pgp: {FPR}\n    hc_vault_transit_uri: {VAULT}\n",
            CreationRule(key_groups=(KeyGroupSpec(pgp=(FPR,), hc_vault=(VAULT,)),)),
        ),
        (
            "creation_rules:\n"
            "  - path_regex: secrets/.*\\.yaml$\n"
            "    shamir_threshold: 2\n"
            "    key_groups:\n"
            f"      - age: [{AGE1}]\n"
            f"        pgp: [{FPR}]\n"
            f"      - age: [{AGE2}]\n"
            f"      - hc_vault: [{VAULT}]\n",
            CreationRule(
                path_regex="secrets/.*\\.yaml$",
                shamir_threshold=2,
                key_groups=(
                    KeyGroupSpec(age=(AGE1,), pgp=(FPR,)),
                    KeyGroupSpec(age=(AGE2,)),
                    KeyGroupSpec(hc_vault=(VAULT,)),
                ),
            ),
        ),
        (
            f"creation_rules:\n  - age: {AGE1}\n    encrypted_regex: ^(data|stringData)$\n",
            CreationRule(
                key_groups=(KeyGroupSpec(age=(AGE1,)),),
                rules=Rules(encrypted_regex="^(data|stringData)$"),
                has_rule=True,
            ),
        ),
        (
            f"creation_rules:\n  - age: {AGE1}\n    unencrypted_suffix: _plain\n"
            "    mac_only_encrypted: true\n",
            CreationRule(
                key_groups=(KeyGroupSpec(age=(AGE1,)),),
                rules=Rules(unencrypted_suffix="_plain", mac_only_encrypted=True),
                has_rule=True,
            ),
        ),
        ("", None),
        ("creation_rules: []\n", None),
    ],
    ids=["age-string", "age-comma-list", "age-yaml-list", "pgp-and-vault", "key-groups-shamir",
         "encrypted-regex", "suffix-mac-only", "empty-file", "no-rules"],
)
def test_a_rule_is_read_as_sops_reads_it(text: str, want: CreationRule | None) -> None:
    rules = load_creation_rules(text)
    assert (rules[0] if rules else None) == want


@pytest.mark.parametrize(
    "rule",
    ["encrypted_regex", "unencrypted_regex", "encrypted_suffix", "unencrypted_suffix",
     "encrypted_comment_regex", "unencrypted_comment_regex"],
)
def test_each_encryption_rule_is_carried(rule: str) -> None:
    (parsed,) = load_creation_rules(f"creation_rules:\n  - age: {AGE1}\n    {rule}: x\n")
    assert getattr(parsed.rules, rule) == "x" and parsed.has_rule


RULES = f"""\
creation_rules:
  - path_regex: ^prod/.*\\.yaml$
    age: {AGE1}
  - path_regex: \\.json$
    pgp: {FPR}
  - path_regex: prod/
    age: {AGE2}
  - age: {AGE2}
    encrypted_regex: ^secret$
"""


@pytest.mark.parametrize(
    ("path", "index"),
    [
        ("prod/db.yaml", 0),  # rules 0 and 2 match: the first wins
        ("prod/db.json", 1),
        ("staging/prod/x.yaml", 2),  # searched, not anchored, like Go's MatchString
        ("dev/app.yaml", 3),  # a rule without path_regex matches everything
    ],
)
def test_first_matching_rule_wins(path: str, index: int) -> None:
    rules = load_creation_rules(RULES)
    assert match_creation_rule(rules, path) is rules[index]


def test_no_rule_matches_when_none_has_a_catch_all() -> None:
    rules = load_creation_rules(f"creation_rules:\n  - path_regex: ^only/\n    age: {AGE1}\n")
    assert match_creation_rule(rules, "elsewhere/a.yaml") is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("creation_rules: {}\n", "creation_rules must be a list"),
        ("- a\n- b\n", "must be a mapping"),
        ("creation_rules:\n  - just-a-string\n", "must be a mapping"),
        ("creation_rules:\n  - path_regex: '('\n", "invalid regular expression"),
        ("creation_rules:\n  - encrypted_regex: a\n    unencrypted_suffix: b\n",
         "more than one encryption rule"),
        ("creation_rules:\n  - age: 12\n", "age must be a string or a list"),
        ("creation_rules:\n  - key_groups: {age: x}\n", "key_groups must be a list"),
        ("creation_rules:\n  - key_groups: [x]\n", "key group must be a mapping"),
        ("creation_rules:\n  - shamir_threshold: -1\n", "shamir_threshold"),
        ("creation_rules:\n  - shamir_threshold: true\n", "shamir_threshold"),
        ("creation_rules: [\n", "not valid YAML"),
    ],
)
def test_bad_configuration_is_a_config_error(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_creation_rules(text)
