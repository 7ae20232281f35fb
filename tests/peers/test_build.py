"""The peers' build: the generated wrapper module and the cache's completeness rule (no Go needed).

The build itself runs in the session fixture ``peers`` (and ``python -m
sealed_gitops.testing.peers.build``); these tests pin what it writes and when it trusts its cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sealed_gitops.testing.peers import build, versions


def _upstream(go: str, *replaces: tuple[str, str, str, str]) -> dict[str, object]:
    """What ``go mod edit -json`` prints for a go.mod with these replaces."""
    return {
        "Go": go,
        "Replace": [
            {"Old": {"Path": old, **({"Version": ov} if ov else {})},
             "New": {"Path": new, **({"Version": nv} if nv else {})}}
            for old, ov, new, nv in replaces
        ],
    }  # fmt: skip


def test_wrapper_keeps_version_replaces_drops_directories_and_adds_substitutes() -> None:
    digest = "github.com/opencontainers/go-digest"
    text = build._wrapper_go_mod(
        versions.SOURCE_CONTROLLER,
        _upstream(
            "1.26.0",
            ("github.com/fluxcd/source-controller/api", "", "./api", ""),
            (digest, "", digest, "v1.0.1-0.20220411205349-bde1400a84be"),
        ),
    )
    assert "go 1.26.0\n" in text
    assert "require github.com/fluxcd/source-controller v1.9.6\n" in text
    assert f"\t{digest} => {digest} v1.0.1-0.20220411205349-bde1400a84be\n" in text
    assert "./api" not in text
    artifact = "github.com/fluxcd/pkg/artifact"
    assert f"\t{artifact} => {artifact} v0.18.0\n" in text


def test_wrapper_requires_sealed_secrets_by_its_declared_path() -> None:
    text = build._wrapper_go_mod(versions.SEALED_SECRETS, _upstream("1.26.8"))
    assert "require github.com/bitnami/sealed-secrets v0.40.0\n" in text
    assert (
        "\tgithub.com/bitnami/sealed-secrets => github.com/bitnami-labs/sealed-secrets v0.40.0\n"
        in text
    )
    assert "go 1.26.8\n" in text


def test_every_peer_pins_a_release_and_its_own_cache_directory(tmp_path: Path) -> None:
    directories = {build.cache_directory(p, root=tmp_path) for p in versions.PEERS.values()}
    assert len(directories) == len(versions.PEERS)
    for peer in versions.PEERS.values():
        assert peer.version.startswith("v") and "-0." not in peer.version  # a tag, no pseudo
        assert build.cache_directory(peer, root=tmp_path).name == f"{peer.name}-{peer.version}"


def test_cache_root_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert build.cache_directory(versions.SEALED_SECRETS) == (
        tmp_path / "elsewhere" / "sealed-secrets-v0.40.0"
    )


def _fake_build(directory: Path, names: list[str], *, stamp: bool) -> None:
    directory.mkdir(parents=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    if stamp:
        (directory / "stamp.json").write_text(json.dumps({"version": "x"}))


@pytest.mark.parametrize(
    ("binaries", "stamp", "complete"),
    [
        (["controller", "kubeseal"], True, True),
        (["controller", "kubeseal"], False, False),  # killed before the rename: never trusted
        (["controller"], True, False),  # a binary missing
    ],
)
def test_a_cached_build_is_used_only_when_complete(
    tmp_path: Path, binaries: list[str], stamp: bool, complete: bool
) -> None:
    peer = versions.SEALED_SECRETS
    _fake_build(build.cache_directory(peer, root=tmp_path), binaries, stamp=stamp)
    found = build.cached(peer, root=tmp_path)
    assert (found is not None) is complete
    if found is not None:
        # ensure_built returns it without looking for Go at all
        assert build.ensure_built(peer, root=tmp_path).directory == found.directory


def test_find_go_never_picks_a_go_older_than_the_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "go"
    old.write_text("#!/bin/sh\necho go1.19.8\n")
    old.chmod(0o755)
    monkeypatch.setattr(build, "_GO_CANDIDATES", (old,))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert build.find_go() is None
    new = tmp_path / "new" / "go"
    new.parent.mkdir()
    new.write_text("#!/bin/sh\necho go1.26.8\n")
    new.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{new.parent}")
    monkeypatch.setattr(build, "_GO_CANDIDATES", (old, new))
    assert build.find_go() == new
