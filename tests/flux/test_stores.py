"""sops' dotenv and binary stores and ``.sops.yaml`` ``stores:``, byte-compatible both ways with the
real sops 3.11: files sops writes open with ours to the same bytes ``sops -d`` prints, files we
write open with ``sops -d`` to the plaintext we started from, and our encrypted files have sops'
layout line for line (only the random parts differ: ciphertexts, IVs, tags, the age stanza, MAC
and timestamp).

The environment is emptied of the developer's keys (HOME is the test's folder); the one age key
is handed over through SOPS_AGE_KEY_FILE, as a sops user would.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealed_gitops.cli.main import cli
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import decrypt_file, encrypt_bytes, sops_format
from sealed_gitops.crypto.sops.document import dump_tree, load_tree
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.keys.discovery import discover_keyring
from sealed_gitops.testing.sops_tool import run_sops
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import isolate_environment

CANARY = "canary-stores-9Kq4"

#: sops' dotenv rules: split at the first '=', '#' starts a comment, '\n' is a newline, blank
#: lines vanish; a value may hold '=', spaces, quotes and '#'.
DOTENV = (
    "# database settings\n"
    f"DB_PASSWORD={CANARY}\n"
    "DB_URL=postgres://u@h:5432/db?x=1&y=2\n"
    "\n"
    'QUOTED="kept as is" # not a comment\n'
    "MULTI=line one\\nline two\n"
    "EMPTY=\n"
    "PORT_unencrypted=5432\n"
)

#: Bytes no text format could carry: NUL, invalid UTF-8, CR, no final newline.
BLOB = b"\x00\x01binary\xff\xfe\r\n" + CANARY.encode() + b"\x80"

# What differs between two encryptions of the same file: random ciphertexts and key material.
_RANDOM = [
    (re.compile(r"ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:(\w+)\]"), r"ENC[\1]"),
    (
        re.compile(r"-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----", re.S),
        "AGE",
    ),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "TIME"),
]


def _shape(data: bytes) -> str:
    """The file with its random parts masked: what must be equal, byte for byte, to sops'."""
    text = data.decode("utf-8", "surrogateescape")
    for pattern, replacement in _RANDOM:
        text = pattern.sub(replacement, text)
    return text


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, age_keys: list[AgeKey]) -> Path:
    """Only key 0, through SOPS_AGE_KEY_FILE; HOME and the cwd inside the test folder."""
    work = isolate_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys[0].file))
    return work


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sops(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return run_sops(list(args), cwd=str(Path.cwd()), check=check)


def both_encrypted(folder: Path, suffix: str, plain: str, age: AgeKey) -> tuple[Path, Path]:
    """``plain`` in ours{suffix} encrypted for ``age`` by our CLI, and in theirs{suffix} by sops."""
    ours, theirs = folder / f"ours{suffix}", folder / f"theirs{suffix}"
    ours.write_text(plain)
    theirs.write_text(plain)
    assert run("encrypt", "-i", "--age", age.public, str(ours)).exit_code == 0
    sops("-e", "-i", "--age", age.public, str(theirs))
    return ours, theirs


def ours_decrypt(path: Path) -> bytes:
    result = run("decrypt", str(path))
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


# -- dotenv -----------------------------------------------------------------------------------


def test_dotenv_made_by_sops_decrypts_to_sops_bytes(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    path = isolated_env / "app.env"
    path.write_text(DOTENV)
    sops("-e", "-i", "--age", age_keys[0].public, str(path))
    assert CANARY.encode() not in path.read_bytes()
    assert b"sops_age__list_0__map_recipient=" in path.read_bytes()
    assert ours_decrypt(path) == sops("-d", str(path)).stdout


def test_dotenv_we_write_opens_with_sops_and_has_its_layout(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    ours, theirs = both_encrypted(isolated_env, ".env", DOTENV, age_keys[0])
    assert CANARY.encode() not in ours.read_bytes()
    # sops -d gives back exactly what sops itself gives for its own file
    assert sops("-d", str(ours)).stdout == sops("-d", str(theirs)).stdout
    assert _shape(ours.read_bytes()) == _shape(theirs.read_bytes())


def test_dotenv_set_unset_rotate_edit_updatekeys_stay_sops_readable(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = isolated_env / "app.env"
    path.write_text(DOTENV)
    sops("-e", "-i", "--age", age_keys[0].public, str(path))
    before = path.read_text().splitlines()
    assert run("set", str(path), '["NEW_TOKEN"]', '"tok-1"').exit_code == 0
    assert run("unset", str(path), '["EMPTY"]').exit_code == 0
    after = path.read_text().splitlines()
    # unchanged values keep their ciphertext (only NEW_TOKEN, EMPTY, mac, lastmodified differ)
    assert before[1] in after and before[2] in after
    plain = sops("-d", str(path)).stdout.decode()
    assert "NEW_TOKEN=tok-1\n" in plain and "EMPTY=" not in plain
    # the editor named by SOPS_EDITOR wins over EDITOR, as in sops
    editor = isolated_env.parent / "append.sh"
    editor.write_text('#!/bin/sh\nprintf "EDITED=yes\\n" >> "$1"\n')
    editor.chmod(0o700)
    monkeypatch.setenv("SOPS_EDITOR", str(editor))
    monkeypatch.setenv("EDITOR", "false")
    assert run("edit", str(path)).exit_code == 0
    assert "EDITED=yes\n" in sops("-d", str(path)).stdout.decode()
    # updatekeys (via .sops.yaml) and rotate go through the same store
    (isolated_env / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {age_keys[0].public},{age_keys[1].public}\n"
    )
    assert run("updatekeys", "-y", str(path)).exit_code == 0
    assert age_keys[1].public in path.read_text()
    assert run("rotate", "-i", str(path)).exit_code == 0
    assert sops("-d", str(path)).stdout == ours_decrypt(path)


def test_dotenv_already_encrypted_and_bad_line(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    path = isolated_env / "app.env"
    path.write_text(DOTENV)
    sops("-e", "-i", "--age", age_keys[0].public, str(path))
    again = run("encrypt", "--age", age_keys[0].public, str(path))
    assert (
        again.exit_code
        == 203
        == sops("-e", "--age", age_keys[0].public, str(path), check=False).returncode
    )
    bad = isolated_env / "bad.env"
    bad.write_text(f"OK=1\n{CANARY}\n")
    result = run("encrypt", "--age", age_keys[0].public, str(bad))
    assert (
        result.exit_code
        == 2
        == sops("-e", "--age", age_keys[0].public, str(bad), check=False).returncode
    )
    assert "line 2" in result.stderr and CANARY not in result.stderr


# -- binary -----------------------------------------------------------------------------------


def test_binary_made_by_sops_decrypts_to_raw_bytes(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    """The finding: a binary-store file decrypted to a YAML wrapper, not its bytes."""
    path = isolated_env / "tls.crt"
    path.write_bytes(BLOB)
    sops("-e", "-i", "--age", age_keys[0].public, str(path))
    assert path.read_bytes().startswith(b'{\n\t"data": "ENC[')
    assert ours_decrypt(path) == BLOB == sops("-d", str(path)).stdout
    # --extract of the one value works too, as in sops
    extracted = run("decrypt", "--extract", '["data"]', str(path))
    assert extracted.stdout_bytes == BLOB


def test_binary_we_write_opens_with_sops(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    ours, theirs = isolated_env / "blob.bin", isolated_env / "theirs.bin"
    ours.write_bytes(BLOB)
    theirs.write_bytes(BLOB)
    assert run("encrypt", "-i", "--age", age_keys[0].public, str(ours)).exit_code == 0
    sops("-e", "-i", "--age", age_keys[0].public, str(theirs))
    assert sops("-d", str(ours)).stdout == BLOB
    assert _shape(ours.read_bytes()) == _shape(theirs.read_bytes())


def test_input_type_overrides_the_extension(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    path = isolated_env / "settings.txt"
    path.write_text("A=1\nB=2\n")
    enc = run("encrypt", "--input-type", "dotenv", "--age", age_keys[0].public, str(path))
    assert enc.exit_code == 0, enc.stderr
    assert b"sops_mac=" in enc.stdout_bytes
    out = isolated_env / "settings.enc.txt"
    out.write_bytes(enc.stdout_bytes)
    # sops takes the output type from the extension too: both flags are needed there
    decrypted = sops("-d", "--input-type", "dotenv", "--output-type", "dotenv", str(out))
    assert decrypted.stdout == b"A=1\nB=2\n"
    ours = run("decrypt", "--input-type", "dotenv", "--output-type", "dotenv", str(out))
    assert ours.stdout_bytes == b"A=1\nB=2\n"
    # without the flag both take .txt for the binary store
    assert run("decrypt", str(out)).exit_code != 0
    assert sops_format("x.txt") == "binary" and sops_format("x.YAML") == "binary"
    assert sops_format("a.env") == "dotenv" and sops_format("a.yml") == "yaml"


# -- INI --------------------------------------------------------------------------------------

#: go-ini's quirks that sops inherits: ':' as delimiter, '#'/';' anywhere starts an inline
#: comment, quotes stripped, backquoted and triple-quoted values verbatim, continuation lines, a
#: repeated key keeps its place, an empty section, keys before any header in DEFAULT.
INI = f"""; top comment
global = 1

[database]
# the password
password = {CANARY}#inline
user: admin ; after
url = "quoted value"
spaces = `  padded  `
multi = \"\"\"line1
line2\"\"\"
cont = first \\
  second
empty =
dup = a
dup = b

[empty_section]

[other]
x=1
"""


def _ini_shape(data: bytes) -> str:
    """The masked file with the [sops] section's lines sorted: sops writes them in Go's random
    map order (and we sorted)."""
    head, _, meta = _shape(data).partition("[sops]\n")
    return head + "[sops]\n" + "".join(sorted(meta.splitlines(keepends=True)))


def test_ini_made_by_sops_decrypts_to_sops_bytes(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    path = isolated_env / "app.ini"
    path.write_text(INI)
    sops("-e", "-i", "--age", age_keys[0].public, str(path))
    assert CANARY.encode() not in path.read_bytes() and b"[sops]" in path.read_bytes()
    assert ours_decrypt(path) == sops("-d", str(path)).stdout


def test_ini_we_write_opens_with_sops_and_has_its_layout(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    ours, theirs = both_encrypted(isolated_env, ".ini", INI, age_keys[0])
    assert CANARY.encode() not in ours.read_bytes()
    assert sops("-d", str(ours)).stdout == sops("-d", str(theirs)).stdout
    assert _ini_shape(ours.read_bytes()) == _ini_shape(theirs.read_bytes())
    assert run("set", str(ours), '["database"]["token"]', '"t-2"').exit_code == 0
    assert run("unset", str(ours), '["other"]["x"]').exit_code == 0
    plain = sops("-d", str(ours)).stdout.decode()
    assert "token    = t-2\n" in plain and "x = 1" not in plain


# -- JSON numbers ---------------------------------------------------------------------------


def test_json_numbers_are_go_floats_like_sops(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    """sops reads JSON numbers as float64: type:float, 2**53 + 1 rounds, -0 stays -0."""
    plain = '{"a": 5, "b": 9007199254740993, "c": -0, "d": 1.5, "e": 12345678901234567890123}\n'
    ours, theirs = both_encrypted(isolated_env, ".json", plain, age_keys[0])
    assert _shape(ours.read_bytes()) == _shape(theirs.read_bytes())
    assert sops("-d", str(ours)).stdout == sops("-d", str(theirs)).stdout == ours_decrypt(theirs)


# -- the public API G and F call ----------------------------------------------------------------


def test_decrypt_file_api_gives_each_format_its_own_bytes(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path
) -> None:
    files = {
        "a.env": DOTENV.encode(),
        "b.bin": BLOB,
        "c.json": b'{"k": "v", "n": 1}\n',
        "d.ini": INI.encode(),
        "e.yaml": b"k: v\n",
    }
    ring = discover_keyring(age_identity_files=(age_keys[0].file,))
    with ring:
        for name, plain in files.items():
            path = isolated_env / name
            path.write_bytes(plain)
            sops("-e", "-i", "--age", age_keys[0].public, str(path))
            data = path.read_bytes()
            assert decrypt_file(data, unwrapper=ring, file=name) == sops("-d", str(path)).stdout


_KEY = st.text(
    st.characters(codec="utf-8", exclude_characters="=\n\r"), min_size=1, max_size=12
).filter(lambda k: not k.startswith(("#", "sops_")) and k != "sops")
_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\\"), max_size=30)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.dictionaries(_KEY, _VALUE, min_size=1, max_size=6))
def test_dotenv_round_trip(pairs: dict[str, str], age_keys: list[AgeKey]) -> None:
    plain = "".join(f"{k}={v}\n" for k, v in pairs.items()).encode()
    encrypted = encrypt_bytes(
        plain, key_groups=[[AgeRecipient(age_keys[0].public)]], file="x.env", fmt="dotenv"
    )
    with discover_keyring(age_identity_files=(age_keys[0].file,)) as ring:
        assert decrypt_file(encrypted, unwrapper=ring, file="x.env") == plain


# -- hostile input: the new parsers raise only the project's errors -----------------------------

_FRAGMENTS = [
    "sops_",
    "__list_",
    "__map_",
    "__list_99999",
    "=",
    ":",
    "\n",
    "[",
    "]",
    "[sops]\n",
    "#",
    ";",
    "`",
    '"""',
    "\\\n",
    "sops_mac=",
    "sops_shamir_threshold=",
    "sops_key_groups__list_0__map_age__list_0__map_recipient=",
    "ENC[AES256_GCM,data:,iv:,tag:,type:str]",
]


@st.composite
def _hostile(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        where = draw(st.integers(0, len(data)))
        data[where:where] = draw(
            st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=8))
        ).encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and data:
        del data[draw(st.integers(0, len(data) - 1))]
    return bytes(data)


_SEEDS: dict[str, dict[str, list[bytes]]] = {}


def _seeds(age_keys: list[AgeKey]) -> dict[str, list[bytes]]:
    """Made once per key: hypothesis replays draws, so the seeds must not change between runs."""
    if age_keys[0].public in _SEEDS:
        return _SEEDS[age_keys[0].public]
    groups = [[AgeRecipient(age_keys[0].public)]]
    out = _SEEDS[age_keys[0].public] = {}
    for fmt, plain in (("dotenv", DOTENV), ("ini", INI), ("binary", CANARY)):
        sealed = encrypt_bytes(plain.encode(), key_groups=groups, file=f"s.{fmt}", fmt=fmt)
        out[fmt] = [plain.encode(), sealed]
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hostile_dotenv_ini_binary_raise_only_project_errors(
    data: st.DataObject, age_keys: list[AgeKey]
) -> None:
    seeds = _seeds(age_keys)
    fmt = data.draw(st.sampled_from(sorted(seeds)))
    raw = data.draw(_hostile(seeds[fmt]))
    with discover_keyring(age_identity_files=(age_keys[0].file,)) as ring:
        for call in (
            lambda: load_tree(raw, fmt=fmt, file="f", encrypted=True),
            lambda: load_tree(raw, fmt=fmt, file="f", encrypted=False),
            lambda: decrypt_file(raw, unwrapper=ring, file="f", fmt=fmt),
            lambda: dump_tree(load_tree(raw, fmt=fmt, file="f", encrypted=False), fmt=fmt),
        ):
            with contextlib.suppress(SealedGitopsError):
                call()


def test_flattened_list_indexes_cannot_exhaust_memory() -> None:
    lines = "".join(f"sops_k{n}__list_9999=x\n" for n in range(20))
    with pytest.raises(SealedGitopsError, match="too many list items"):
        load_tree(f"A=1\n{lines}".encode(), fmt="dotenv", file="x.env")


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("dotenv", "A=1\nsops_a" + "__map_b" * 5000 + "=x\n"),
        ("ini", "[sops]\na" + "__list_0" * 5000 + "=x\n"),
    ],
)
def test_flattened_metadata_nesting_is_bounded(fmt: str, text: str) -> None:
    """A committed key nesting 5 000 maps or lists deep: a FormatError, not a RecursionError
    out of the unflattening."""
    with pytest.raises(SealedGitopsError, match="nested too deep"):
        load_tree(text.encode(), fmt=fmt, file="x")


@pytest.mark.parametrize(
    "line",
    [
        "sops_" + "k" * 100_000 + "__list_99999999=x",  # list index out of range
        # a value, then a map under it: mixes a map, a list or a value
        "sops_" + "k" * 100_000 + "__list_0=y\nsops_" + "k" * 100_000 + "__list_0__map_a=x",
    ],
)
def test_flattened_metadata_errors_name_a_bounded_key(line: str) -> None:
    """A committed key of 100 000 characters is named in the error (a status, an Event)
    by its first 64 only."""
    with pytest.raises(SealedGitopsError) as raised:
        load_tree(f"A=1\n{line}\n".encode(), fmt="dotenv", file="x.env")
    assert "sops metadata" in str(raised.value)
    assert len(str(raised.value)) < 300


# -- .sops.yaml stores: --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "plain", "stores"),
    [
        ("s.yaml", "a:\n  b:\n    - c: 1\n      d: [x, y]\n", "yaml:\n    indent: 2"),
        ("s.json", '{"a": {"b": [1, {"c": "d"}]}}\n', "json:\n    indent: 2"),
        ("s.json", '{"a": {"b": [1]}}\n', "json:\n    indent: 0"),
        ("s.bin", CANARY, "json_binary:\n    indent: 3"),
    ],
)
def test_stores_indent_matches_sops(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path, name: str, plain: str, stores: str
) -> None:
    (isolated_env / ".sops.yaml").write_text(
        f"stores:\n  {stores}\ncreation_rules:\n  - age: {age_keys[0].public}\n"
    )
    ours, theirs = isolated_env / f"ours-{name}", isolated_env / f"theirs-{name}"
    ours.write_text(plain)
    theirs.write_text(plain)
    assert run("encrypt", "-i", str(ours)).exit_code == 0
    sops("-e", "-i", str(theirs))
    assert _shape(ours.read_bytes()) == _shape(theirs.read_bytes())
    assert ours_decrypt(ours) == sops("-d", str(ours)).stdout == sops("-d", str(theirs)).stdout


@pytest.mark.parametrize(
    ("name", "plain", "stores"),
    [
        ("r.yaml", "a:\n  b:\n    - c: 1\n      d: [x, y]\n", "yaml:\n    indent: 2"),
        ("r.json", '{"a": {"b": [1, {"c": "d"}]}}\n', "json:\n    indent: 2"),
    ],
)
def test_rotate_and_updatekeys_keep_the_stores_indent(
    sops_binary: str, age_keys: list[AgeKey], isolated_env: Path, name: str, plain: str, stores: str
) -> None:
    """updatekeys and rotate rewrite the file: with the indent of ``stores:``, as sops does."""
    (isolated_env / ".sops.yaml").write_text(
        f"stores:\n  {stores}\ncreation_rules:\n  - age: {age_keys[0].public}\n"
    )
    ours, theirs = isolated_env / f"ours-{name}", isolated_env / f"theirs-{name}"
    ours.write_text(plain)
    theirs.write_text(plain)
    sops("-e", "-i", str(theirs))
    assert run("encrypt", "-i", str(ours)).exit_code == 0
    assert run("rotate", "-i", str(ours)).exit_code == 0
    assert _shape(ours.read_bytes()) == _shape(theirs.read_bytes())
    (isolated_env / ".sops.yaml").write_text(
        f"stores:\n  {stores}\ncreation_rules:\n"
        f"  - age: {age_keys[0].public},{age_keys[1].public}\n"
    )
    assert run("updatekeys", "-y", str(ours)).exit_code == 0
    sops("updatekeys", "-y", str(theirs))
    assert _shape(ours.read_bytes()) == _shape(theirs.read_bytes())
    assert ours_decrypt(ours) == sops("-d", str(ours)).stdout == sops("-d", str(theirs)).stdout


def _load_ini_seconds(text: str) -> float:
    # CPU seconds, not wall: a loaded CI machine stretches wall time, never a linear parse's CPU
    started = time.process_time()
    load_tree(text.encode(), fmt="ini", file="x.ini", encrypted=False)
    return time.process_time() - started


def test_ini_continuation_lines_cost_linear_time() -> None:
    """A committer's file of 1 MiB of ``\\``-continued lines: each line copied the whole value so
    far (quadratic: about 2 s here, a minute at the 5 MiB input cap)."""
    text = "a = x\\\n" + "y\\\n" * (1024 * 1024 // 3)
    assert _load_ini_seconds(text) < 1.0


def test_ini_auto_increment_keys_cost_linear_time() -> None:
    """go-ini names each ``-`` key ``#1``, ``#2``... with a counter per section; counting the
    section's ``#`` keys again for each one was quadratic (20 000 keys: about 18 s)."""
    text = "[a]\n" + "-=x\n" * 20_000
    assert _load_ini_seconds(text) < 1.0
    tree = load_tree(b"[a]\n-=x\n-=y\n[b]\n-=z\n", fmt="ini", file="x.ini", encrypted=False)
    assert [list(section) for _, section in tree[0]] == [
        [],
        [("#1", "x"), ("#2", "y")],
        [("#1", "z")],
    ]
