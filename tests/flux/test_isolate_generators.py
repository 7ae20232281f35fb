"""The isolate rebuild of a kustomization with an encrypted generator source (issue 12, Must 5).

A file that fails to parse makes the first kustomize build fail; the rebuild without it goes
through the same generators path. The encrypted source must be decrypted once per render, not
again for the rebuild (a SOPS decryption per build is the work the content cache saves).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render import generators, sops_sources
from tests.conftest_tools import AgeKey
from tests.flux.conftest_render import keys_for, sops_encrypt, write

CANARY = "canary-isolate-gen-5e1a"
BROKEN = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata: [unclosed\n"


def test_an_isolate_rebuild_does_not_decrypt_a_generator_source_again(
    tmp_path: Path, sops_binary: str, age_keys: list[AgeKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    age = age_keys[0]
    sops_encrypt(
        sops_binary, write(tmp_path, "app/db.env", f"PASSWORD={CANARY}\n"), age=age, regex=None
    )
    write(tmp_path, "app/bad.yaml", BROKEN)
    write(
        tmp_path,
        "app/kustomization.yaml",
        "resources:\n- bad.yaml\nsecretGenerator:\n- name: db\n  envs:\n  - db.env\n",
    )
    calls: list[str] = []
    real = sops_sources.decrypt_source  # what generators imported under that name

    def counted(data: bytes, **kwargs: object) -> bytes:
        calls.append(str(kwargs["file"]))
        return real(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(generators, "decrypt_source", counted)

    result = build(root=tmp_path, path="app", keys=keys_for(age), policy=FailurePolicy.ISOLATE)
    (secret,) = result.objects
    assert secret.id.kind == "Secret" and secret.id.name.startswith("db-")
    assert [f.file for f in result.failures] == ["app/bad.yaml"]
    assert calls == ["app/db.env"]
