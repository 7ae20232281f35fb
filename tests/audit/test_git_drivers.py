"""``git-setup``'s drivers under real git: masked ``git diff``/``git log -p`` and SOPS merges."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sealed_gitops.crypto.sops import decrypt_document, encrypt_bytes, set_value, update_keys

from .conftest import VALUES, AgeKeys, GitRepo, History, init_repo, leaked, secret_yaml

COMMAND = shlex.join([sys.executable, "-m", "sealed_gitops"])
A = '["stringData"]["a"]'
B = '["stringData"]["b"]'


def _setup(repo: GitRepo, *patterns: str) -> None:
    extra = [arg for p in patterns for arg in ("--pattern", p)]
    proc = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "git-setup", str(repo.path), "--command", COMMAND,
         *extra],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_git_setup_writes_attributes_and_config(history: History, tmp_path: Path) -> None:
    clone = GitRepo(tmp_path / "c")
    GitRepo(tmp_path).git("clone", "-q", str(history.repo.path), str(clone.path))
    _setup(clone)
    attributes = (clone.path / ".gitattributes").read_text()
    assert "*.sops.yaml diff=sealed-gitops merge=sealed-gitops" in attributes
    for tracked in ("/secrets-db.yaml", "/cache.yaml", "/sealed/moved.yaml"):
        assert f"{tracked} diff=sealed-gitops" in attributes
    assert clone.git("config", "diff.sealed-gitops.textconv").strip() == f"{COMMAND} git-textconv"
    assert "%O %A %B %P" in clone.git("config", "merge.sealed-gitops.driver")
    _setup(clone)  # idempotent: no duplicate lines
    assert (clone.path / ".gitattributes").read_text() == attributes


def test_textconv_shows_which_keys_changed_masked(history: History, tmp_path: Path) -> None:
    clone = GitRepo(tmp_path / "c")
    GitRepo(tmp_path).git("clone", "-q", str(history.repo.path), str(clone.path))
    _setup(clone, "sealed/*.yaml")  # the file was renamed: its old name needs a pattern
    log = clone.git("log", "-p", "--all")
    assert "<encrypted sha256:" in log
    assert not leaked(log)
    # sops set: the diff is the one value's line, no mac/lastmodified noise
    show = clone.git("show", "--format=", history.commits["sops-set"])
    changed = [line for line in show.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2
    assert all("password: <encrypted sha256:" in line for line in changed)
    # engine updatekeys: only the recipients and the wrapping digest
    show = clone.git("show", "--format=", history.commits["updatekeys"])
    assert "<encrypted" not in "".join(
        line for line in show.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    )
    # a reseal: every sealed value's marker changes
    show = clone.git("show", "--format=", history.commits["reseal"])
    lines = show.splitlines()
    for sign in "-+":
        assert any(ln.startswith(sign) and "key: <encrypted sha256:" in ln for ln in lines)
    assert not leaked(show)


def _branches(tmp_path: Path, age_keys: AgeKeys) -> GitRepo:
    """main and feature, both from a file with values a and b."""
    repo = init_repo(tmp_path / "repo")
    values = {"a": f"{VALUES['db-user']}-a", "b": f"{VALUES['db-user']}-b"}
    repo.write("app.sops.yaml", encrypt_bytes(
        secret_yaml("app", values), key_groups=[[age_keys.recipients[0]]], file="app.sops.yaml"))
    repo.commit("base", who="Alice", day=1)
    _setup(repo)
    repo.git("add", ".gitattributes")
    repo.commit("drivers", who="Alice", day=1)
    return repo


def _edit(repo: GitRepo, age_keys: AgeKeys, path: str, value: str) -> None:
    repo.write("app.sops.yaml", set_value(repo.read("app.sops.yaml"), path, f'"{value}"',
                                          unwrapper=age_keys.unwrapper, file="app.sops.yaml"))


def _key_env(age_keys: AgeKeys) -> dict[str, str]:
    return {"SOPS_AGE_KEY_FILE": str(age_keys.identity_file)}


def test_merge_of_different_values_succeeds_with_a_valid_mac(
    tmp_path: Path, age_keys: AgeKeys
) -> None:
    repo = _branches(tmp_path, age_keys)
    repo.git("checkout", "-q", "-b", "feature")
    _edit(repo, age_keys, A, VALUES["feature"])
    repo.commit("a on feature", who="Bob", day=2)
    feature_a = repo.read("app.sops.yaml")
    repo.git("checkout", "-q", "main")
    _edit(repo, age_keys, B, VALUES["main-user"])
    repo.commit("b on main", who="Carol", day=3)
    main_b = repo.read("app.sops.yaml")
    out = repo.git("merge", "--no-edit", "feature", env=_key_env(age_keys))
    assert not leaked(out)
    merged = repo.read("app.sops.yaml")
    doc = decrypt_document(merged, unwrapper=age_keys.unwrapper, file="app.sops.yaml")
    data = dict(doc.branches[0].get("stringData"))
    assert data == {"a": VALUES["feature"], "b": VALUES["main-user"]}
    # each side's ciphertext was kept: the merged a line is feature's, the b line main's
    a_line = next(ln for ln in feature_a.splitlines() if ln.strip().startswith(b"a:"))
    b_line = next(ln for ln in main_b.splitlines() if ln.strip().startswith(b"b:"))
    assert a_line in merged.splitlines() and b_line in merged.splitlines()


def test_merge_takes_the_recipients_of_the_side_that_changed_them(
    tmp_path: Path, age_keys: AgeKeys
) -> None:
    repo = _branches(tmp_path, age_keys)
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app.sops.yaml", update_keys(
        repo.read("app.sops.yaml"), unwrapper=age_keys.unwrapper,
        key_groups=[list(age_keys.recipients[:2])], file="app.sops.yaml"))
    repo.commit("add a recipient", who="Bob", day=2)
    repo.git("checkout", "-q", "main")
    _edit(repo, age_keys, B, VALUES["main-user"])
    repo.commit("b on main", who="Carol", day=3)
    repo.git("merge", "--no-edit", "feature", env=_key_env(age_keys))
    doc = decrypt_document(repo.read("app.sops.yaml"), unwrapper=age_keys.unwrapper,
                           file="app.sops.yaml")
    assert len(doc.metadata.key_ids()) == 2
    assert doc.branches[0].get("stringData").get("b") == VALUES["main-user"]


@pytest.mark.parametrize("case", ["same-key-both-sides", "no-key"])
def test_merge_conflicts_cleanly(tmp_path: Path, age_keys: AgeKeys, case: str) -> None:
    repo = _branches(tmp_path, age_keys)
    repo.git("checkout", "-q", "-b", "feature")
    _edit(repo, age_keys, A, VALUES["feature"])
    repo.commit("a on feature", who="Bob", day=2)
    repo.git("checkout", "-q", "main")
    _edit(repo, age_keys, A if case == "same-key-both-sides" else B, VALUES["main-user"])
    repo.commit("a on main", who="Carol", day=3)
    before = repo.read("app.sops.yaml")
    env = _key_env(age_keys) if case == "same-key-both-sides" else {}
    repo.git("merge", "--no-edit", "feature", env=env, check=False)
    status = repo.git("status", "--porcelain")
    assert "UU app.sops.yaml" in status
    # what git reported (stdout and stderr of the driver) names no value
    proc = subprocess.run(["git", "merge", "--abort"], cwd=repo.path, check=False,
                          capture_output=True)
    assert proc.returncode == 0
    assert repo.read("app.sops.yaml") == before
    retry = subprocess.run(
        ["git", "merge", "--no-edit", "feature"], cwd=repo.path, capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
             **env},
        check=False, timeout=60,
    )
    assert retry.returncode != 0
    message = retry.stdout + retry.stderr
    assert b"sealed-gitops merge driver" in message
    expected = b"both branches changed" if case == "same-key-both-sides" else b"no available key"
    assert expected in message
    assert not leaked(message)


def test_merge_driver_leaves_non_sops_files_to_git(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    repo.write("plain.sops.yaml", b"a: 1\nb: 2\nc: 3\n")
    repo.commit("base", who="Alice", day=1)
    _setup(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("plain.sops.yaml", b"a: 10\nb: 2\nc: 3\n")
    repo.commit("a", who="Bob", day=2)
    repo.git("checkout", "-q", "main")
    repo.write("plain.sops.yaml", b"a: 1\nb: 2\nc: 30\n")
    repo.commit("c", who="Carol", day=3)
    repo.git("merge", "--no-edit", "feature")
    assert repo.read("plain.sops.yaml") == b"a: 10\nb: 2\nc: 30\n"
