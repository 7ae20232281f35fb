"""A malformed kubeconfig is a ConfigError that never quotes the file's content."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.cluster import connect
from sealed_gitops.errors import ConfigError


def test_broken_kubeconfig_yaml_is_named_without_its_content(tmp_path: Path) -> None:
    token = "kubeconfig-token-canary-5f2b"
    path = tmp_path / "kubeconfig"
    path.write_text(f"users:\n- name: a\n  user: {{token: {token}\n   : [broken\n")
    with pytest.raises(ConfigError) as info:
        connect(path)
    text = str(info.value) + repr(info.value)
    assert "not valid YAML at line" in text
    assert token not in text
