"""The build's cache rules and error messages, without running a real build.

The real build is exercised by the session fixture (conftest.py); here a stand-in ``go`` (a shell
script behind the ``find_go`` seam) shows what a person sees when Go is missing or fails.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sealed_gitops.errors import ControlPlaneError
from sealed_gitops.testing.control_plane import build, versions


def test_the_staging_tag_follows_the_release() -> None:
    assert versions.staging_version("v1.37.2") == "v0.37.2"
    with pytest.raises(ValueError):
        versions.staging_version("v2.0.0")


def test_the_cache_is_keyed_by_both_versions_and_can_be_moved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "elsewhere"))
    key = f"{versions.KUBERNETES_VERSION}-{versions.ETCD_VERSION}-{versions.BUILD_RECIPE}"
    expected = tmp_path / "elsewhere" / key
    assert build.cache_directory() == expected
    monkeypatch.delenv(build.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_directory().parent == tmp_path / "xdg" / "sealed-gitops" / "control-plane"


def test_binaries_without_a_stamp_are_not_trusted(tmp_path: Path) -> None:
    directory = build.cache_directory(root=tmp_path)
    directory.mkdir(parents=True)
    for path in build.Binaries(directory).all():
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    assert build.cached_binaries(root=tmp_path) is None  # a build interrupted before the stamp
    (directory / "stamp.json").write_text(json.dumps({"kubernetes": versions.KUBERNETES_VERSION}))
    assert build.cached_binaries(root=tmp_path) == build.Binaries(directory)


def test_missing_go_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build, "find_go", lambda: None)
    with pytest.raises(ControlPlaneError, match="Go was not found"):
        build.ensure_binaries(root=tmp_path)
    assert not build.cache_directory(root=tmp_path).exists()


def test_a_failed_go_command_is_quoted_and_nothing_is_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = env ]; then echo go1.26.8; exit 0; fi\n'
        "echo 'go: k8s.io/kubernetes@v1.37.2: reading proxy: 404 Not Found' >&2\n"
        "exit 1\n"
    )
    fake_go.chmod(0o755)
    monkeypatch.setattr(build, "find_go", lambda: fake_go)
    lines: list[str] = []
    with pytest.raises(ControlPlaneError) as failure:
        build.ensure_binaries(root=tmp_path / "cache", progress=lines.append)
    assert "404 Not Found" in str(failure.value)
    assert "exit status 1" in str(failure.value)
    assert lines and "staging modules" in lines[0]
    # Neither the version directory nor the temporary build directory is left behind.
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_an_old_go_is_refused_with_the_version_needed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text("#!/bin/sh\necho go1.21.0\n")
    fake_go.chmod(0o755)
    monkeypatch.setattr(build, "find_go", lambda: fake_go)
    monkeypatch.delenv("GOTOOLCHAIN", raising=False)
    with pytest.raises(ControlPlaneError, match=r"Go 1\.21.*needs Go 1\.26"):
        build.ensure_binaries(root=tmp_path / "cache")


FAKE_GO = """#!/bin/sh
# A stand-in for `go`: answers the three commands build.py runs, counting the builds.
case "$1" in
  env) echo go1.26.8 ;;
  list) printf '{"GoMod": "%s"}\\n' "{go_mod}" ;;
  build)
    echo build >> "{counter}"
    sleep 1
    for arg; do
      case "$arg" in */) out="$arg" ;; esac
    done
    for name in kube-apiserver kube-controller-manager server; do
      printf '#!/bin/sh\\n' > "$out$name"; chmod +x "$out$name"
    done ;;
esac
"""


def test_concurrent_callers_build_once_and_share_the_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    go_mod = tmp_path / "kubernetes.mod"
    go_mod.write_text("replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\n")
    counter = tmp_path / "builds"
    fake_go = tmp_path / "go"
    fake_go.write_text(FAKE_GO.replace("{go_mod}", str(go_mod)).replace("{counter}", str(counter)))
    fake_go.chmod(0o755)
    monkeypatch.setattr(build, "find_go", lambda: fake_go)
    root = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _i: build.ensure_binaries(root=root), range(2)))
    assert counter.read_text().splitlines() == ["build"]  # the second caller waited, then reused
    assert results[0] == results[1] == build.Binaries(build.cache_directory(root=root))
    assert all(path.is_file() for path in results[0].all())  # etcd renamed from `server`
    stamp = json.loads((results[0].directory / "stamp.json").read_text())
    assert (stamp["kubernetes"], stamp["etcd"]) == (
        versions.KUBERNETES_VERSION,
        versions.ETCD_VERSION,
    )
    generated = (results[0].directory / "module" / "go.mod").read_text()
    assert f"\tk8s.io/api => k8s.io/api {versions.staging_version()}\n" in generated
    assert build.ensure_binaries(root=root) == results[0]
    assert counter.read_text().splitlines() == ["build"]  # a later call builds nothing
