"""Issue 11, finding 6: regular expressions and globs from Git must cost linear time.

The review froze the operator with ``encrypted_regex: ^(a+)+$`` in a SOPS file's metadata (which
the MAC does not cover, so any committer can write it) and a key of 27 ``a`` followed by ``!``:
about 14 s per file, doubling with every ``a``, and ``/healthz`` stopped answering because the
match held the interpreter. The same shape reaches every pattern a repository supplies: the four
regex rules of the metadata, ``path_regex`` and the rules of ``.sops.yaml``, and the globs of
``.sgignore``.

Each attack runs in a child process with a hard timeout, so a regression fails the test instead
of hanging the suite; the child reports how long the attacked call took, which must be short.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sealed_gitops.crypto.patterns import compile_pattern, glob_regex
from sealed_gitops.crypto.sops import encrypt_bytes, load_creation_rules, match_creation_rule
from sealed_gitops.crypto.sops.tree import Rules
from sealed_gitops.errors import ConfigError, FormatError
from sealed_gitops.render.walk import IgnoreRules
from tests.conftest_tools import AgeKey

#: 2^40 backtracking steps for ``^(a+)+$``: hours with a backtracking engine, microseconds with RE2.
HOSTILE_KEY = "a" * 40 + "!"
HOSTILE_REGEX = "^(a+)+$"
#: Killed after this long: far above a linear run, far below the attack's cost.
HARD_TIMEOUT = 20.0
#: What the attacked call itself may take (the child's start-up is not counted).
BOUND = 2.0

_BUILD = """
import sys, time
from pathlib import Path
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.pipeline import build
from sealed_gitops.render.decrypt import DecryptionKeys

ring = discover_keyring(age_identity_files=[Path(sys.argv[2])], use_environment=False)
keys = DecryptionKeys(sops=ring, sealing=None)
start = time.monotonic()
try:
    outcome = f"{len(build(root=Path(sys.argv[1]), keys=keys).objects)} objects"
except SealedGitopsError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(f"{time.monotonic() - start:.3f}")
print(outcome)
"""


def _bounded(args: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=HARD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the operator's code froze: still matching after {HARD_TIMEOUT:.0f} s")


def _build(root: Path, key: AgeKey) -> tuple[float, str]:
    """Run the pipeline's build (render + decrypt, as the operator does) in a child process."""
    done = _bounded([sys.executable, "-c", _BUILD, str(root), str(key.file)])
    assert done.returncode == 0, done.stderr[-2000:]
    elapsed, outcome = done.stdout.splitlines()[:2]
    return float(elapsed), outcome


def _hostile_sops_file(field: str, key: AgeKey) -> bytes:
    """A Secret encrypted by us, then edited as a committer can without the key: the metadata's
    rule replaced by a backtracking regex, and a plain comment (comments are outside the MAC)."""
    plain = yaml.safe_dump(
        {
            HOSTILE_KEY: "value",
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "team-a"},
            "stringData": {"password": "s3cret-canary-pw"},
        },
        sort_keys=False,
    ).encode()
    encrypted = encrypt_bytes(plain, key_groups=[[key.recipient]], rules=Rules(), file="db.yaml")
    assert b"    unencrypted_suffix: _unencrypted\n" in encrypted
    hostile = encrypted.replace(
        b"    unencrypted_suffix: _unencrypted\n", f"    {field}: {HOSTILE_REGEX}\n".encode()
    )
    return f"#{HOSTILE_KEY}\n".encode() + hostile


@pytest.mark.parametrize(
    "field",
    [
        "encrypted_regex",
        "unencrypted_regex",
        "encrypted_comment_regex",
        "unencrypted_comment_regex",
    ],
)
def test_a_backtracking_regex_in_sops_metadata_does_not_freeze_a_build(
    *, field: str, age_keys: list[AgeKey], tmp_path: Path
) -> None:
    (tmp_path / "db.yaml").write_bytes(_hostile_sops_file(field, age_keys[0]))
    elapsed, outcome = _build(tmp_path, age_keys[0])
    assert elapsed < BOUND, f"the build took {elapsed:.1f} s"
    # Whether the changed rule still selects what the MAC was made over decides between the
    # object and a MAC refusal; either way the answer comes at once and never quotes the secret.
    assert outcome == "1 objects" or outcome.startswith("MacMismatch"), outcome
    assert "s3cret-canary-pw" not in outcome


def test_a_backtracking_sgignore_glob_does_not_freeze_a_build(
    *, age_keys: list[AgeKey], tmp_path: Path
) -> None:
    # Ten stars and no ``b`` at the end: a backtracking translation tries C(n, 10) splits.
    (tmp_path / ".sgignore").write_text("*a*a*a*a*a*a*a*a*a*a*b\n")
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    (tmp_path / f"{'a' * 150}.yaml").write_text(yaml.safe_dump(manifest))
    elapsed, outcome = _build(tmp_path, age_keys[0])
    assert elapsed < BOUND, f"the build took {elapsed:.1f} s"
    assert outcome == "1 objects"


@pytest.mark.parametrize(
    ("rule", "name"),
    [
        ({"path_regex": HOSTILE_REGEX}, f"{HOSTILE_KEY}.yaml"),
        ({"encrypted_regex": HOSTILE_REGEX}, "x.yaml"),
        ({"unencrypted_regex": HOSTILE_REGEX}, "x.yaml"),
        ({"encrypted_comment_regex": HOSTILE_REGEX}, "x.yaml"),
        ({"unencrypted_comment_regex": HOSTILE_REGEX}, "x.yaml"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_a_backtracking_rule_in_a_repositorys_sops_yaml_does_not_freeze_encrypt(
    *, rule: dict[str, str], name: str, age_keys: list[AgeKey], tmp_path: Path
) -> None:
    # A developer runs `sealed-gitops encrypt` in a checkout whose .sops.yaml a committer wrote.
    # The hostile rule first, then a catch-all: the path_regex case falls through to it.
    rules = [{**rule, "age": age_keys[0].public}, {"age": age_keys[0].public}]
    config = {"creation_rules": rules}
    (tmp_path / ".sops.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / name).write_text(f"#{HOSTILE_KEY}\n{HOSTILE_KEY}: value\nplain: text\n")
    done = _bounded(
        [sys.executable, "-m", "sealed_gitops", "encrypt", "--in-place", name], cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"ENC[AES256_GCM" in (tmp_path / name).read_bytes()


# -- the one place patterns are compiled: errors and the syntax sops (Go) accepts ---------------


@pytest.mark.parametrize("pattern", ["(?=x)", r"(a)\1", "(?<!a)b", "(", "a{2000}"])
def test_a_pattern_re2_refuses_is_a_format_error_naming_the_field(pattern: str) -> None:
    with pytest.raises(FormatError) as caught:
        compile_pattern(pattern, what="sops metadata encrypted_regex")
    assert "encrypted_regex" in str(caught.value)


def test_a_bad_sops_yaml_pattern_is_a_config_error_naming_the_rule_and_field() -> None:
    text = "creation_rules:\n  - path_regex: ok/\n  - path_regex: (?=lookahead)\n"
    with pytest.raises(ConfigError, match=r"creation_rules\[1\]\.path_regex"):
        load_creation_rules(text)
    with pytest.raises(ConfigError, match="encrypted_comment_regex"):
        load_creation_rules("creation_rules:\n  - encrypted_comment_regex: (a)\\1\n")


def test_a_too_long_pattern_is_refused() -> None:
    with pytest.raises(FormatError, match="longer than"):
        compile_pattern("a" * 100_000, what="x")


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("(?i)^PASS", "password", True),  # flags, as Go's sops writes them
        (r"^\pL+$", "héllo", True),  # Unicode classes: Go and RE2, not Python's re
        (r"^\d+$", "١٢٣", False),  # \d is ASCII in Go (Python's re says True)
        ("^data$", "data\n", False),  # $ is the end of the text in Go (Python's re says True)
        (r"^(data|stringData)$", "stringData", True),
        (r"\Qa.b\E", "a.b", True),
        (r"[[:alpha:]]+_key$", "db_key", True),
    ],
)
def test_patterns_match_as_gos_regexp_does(pattern: str, text: str, *, found: bool) -> None:
    assert compile_pattern(pattern, what="x").search(text) is found


def test_sops_yaml_matching_uses_the_same_engine() -> None:
    rules = load_creation_rules("creation_rules:\n  - path_regex: (?i)\\.ENC\\.yaml$\n    age: a\n")
    assert match_creation_rule(rules, "dir/x.enc.yaml") is rules[0]
    assert match_creation_rule(rules, "dir/x.yaml") is None


@pytest.mark.parametrize(
    ("glob", "path", "ignored"),
    [
        ("*.tmp", "a/b/c.tmp", True),
        ("/top.yaml", "sub/top.yaml", False),
        ("docs/**/*.md", "docs/a/b/c.md", True),
        ("[!a]x.yaml", "bx.yaml", True),
        ("[!a]x.yaml", "ax.yaml", False),
        ("[]]x", "]x", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("weird(name)+.yaml", "weird(name)+.yaml", True),
        ("*", "dir\nwith-newline/x.yaml", True),
    ],
)
def test_sgignore_globs_keep_their_gitignore_meaning(
    glob: str, path: str, *, ignored: bool
) -> None:
    assert IgnoreRules([glob]).ignored(path, is_dir=False) is ignored


def test_a_glob_translation_never_reaches_the_engine_as_raw_syntax() -> None:
    # Every character outside the glob's own syntax is a literal for the engine.
    assert compile_pattern(glob_regex("(?i)X|y"), what="x").search("(?i)X|y")
    assert not compile_pattern(glob_regex("(?i)X|y"), what="x").search("x")
