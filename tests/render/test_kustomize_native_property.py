"""Property tests of the native build against the real ``kubectl kustomize``.

Two properties over random trees of kustomizations (random names, namespaces, nesting, key
orders, document separators, comments):

- **eligible trees build natively, and as kustomize does**: a tree that only lists files, with
  ``namespace:`` only over Secrets and ConfigMaps, is built without kustomize (unless the
  conservative byte screen ``reads_otherwise`` turns a file away: counted as an event), and its
  objects equal kustomize's, in kustomize's order, as JSON (types included);
- **the native build is sound**: for trees with values kustomize's YAML reader and JSON round
  trip treat their own way (plain ``0777``, ``1_000``, dates, floats, ``0x1F``, anchors, tags,
  non-string keys, nulls, ``namespace:`` over other kinds, repeated names), the native build
  either falls back (None) or gives exactly kustomize's objects; where kustomize fails, it falls
  back.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sealed_gitops.render.kustomize_native import reads_otherwise
from tests.render.kustomize_differential import as_text, kustomize_objects, native_objects

#: a file: documents, each a list of (top-level key, value as YAML text) chunks
Doc = list[tuple[str, str]]

_LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
_KEY = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,12}\Z")
#: strings as people write them, among them words other YAML readers resolve otherwise
_TEXT = st.one_of(
    st.sampled_from(
        [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "~",
            "null",
            "true",
            "False",
            "0777",
            "1_000",
            "2001-12-14",
            "0x1F",
            "1e3",
            ".inf",
            "-",
            "#not-a-comment",
            "a: b",
            "- x",
            "@at",
            "%pct",
            "",
            " padded ",
            "line one\nline two\n",
            "tab\tinside",
            "3.11.0",
            "+5",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
)
#: plain (unquoted) scalars, written as they are: the soundness property's hard cases
_RAW = st.sampled_from(
    [
        "0777",
        "0o17",
        "0x1F",
        "0X1F",
        "1_000",
        "2001-12-14",
        "2001-12-14T10:00:00Z",
        "1.0",
        "1e3",
        ".5",
        "+5",
        "-0",
        "012",
        "08",
        "99999999999999999999",
        "yes",
        "null",
        "~",
        "true",
        "&anchor v",
        "!!str 12",
        "!!int '7'",
        "{}",
        "[]",
        "[a, 1]",
        "{a: 1}",
        "3.11.0",
        "x y",
        "'quoted'",
        '"dq"',
        "2001-12-14 10:00:00",
        "-.inf",
        "0b101",
        "1_0.5",
    ]
)


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@st.composite
def _data(draw: st.DrawFn, *, raw: bool) -> str:
    """A ``data:`` block (or flow mapping) with random keys and values."""
    keys = draw(st.lists(_KEY, min_size=0, max_size=4, unique=True))
    values = [draw(_RAW) if raw and draw(st.booleans()) else _quoted(draw(_TEXT)) for _ in keys]
    if not keys:
        return "{}"
    if draw(st.booleans()):
        return (
            "{" + ", ".join(f"{_quoted(k)}: {v}" for k, v in zip(keys, values, strict=True)) + "}"
        )
    written = [k if raw and draw(st.booleans()) else _quoted(k) for k in keys]
    return "".join(f"\n  {k}: {v}" for k, v in zip(written, values, strict=True))


@st.composite
def _document(draw: st.DrawFn, *, kinds: list[tuple[str, str]], name: str, raw: bool) -> str:
    api, kind = draw(st.sampled_from(kinds))
    meta = [f"  name: {name if raw and draw(st.booleans()) else _quoted(name)}"]
    if draw(st.booleans()):
        meta.append(f"  namespace: {_quoted(draw(_LABEL))}")
    if draw(st.booleans()):
        labels = draw(st.dictionaries(_KEY, _TEXT, min_size=1, max_size=2))
        meta.append(
            "  labels:" + "".join(f"\n    {_quoted(k)}: {_quoted(v)}" for k, v in labels.items())
        )
    if raw and draw(st.integers(0, 9)) == 0:
        meta.append(
            draw(st.sampled_from(["  annotations:", "  annotations: {}", "  labels: null"]))
        )
    meta = draw(st.permutations(meta))
    chunks = [f"apiVersion: {api}", f"kind: {kind}", "metadata:\n" + "\n".join(meta)]
    body = "data" if kind in ("ConfigMap", "Secret") else "spec"
    chunks.append(f"{body}: {draw(_data(raw=raw))}")
    if draw(st.booleans()):
        chunks.append(f"extra: {draw(st.integers(-(2**40), 2**40))}")
    if raw and draw(st.booleans()):
        chunks.append(draw(st.sampled_from(["status: null", "x: 1.5", "7: seven", "n: 0777"])))
    chunks = draw(st.permutations(chunks))
    if draw(st.booleans()):
        chunks.insert(draw(st.integers(0, len(chunks))), "# a comment line")
    return "\n".join(chunks) + draw(st.sampled_from(["\n", "  # trailing\n", "\n\n"]))


@st.composite
def _file(draw: st.DrawFn, *, kinds: list[tuple[str, str]], names: list[str], raw: bool) -> str:
    docs = [draw(_document(kinds=kinds, name=n, raw=raw)) for n in names]
    separators = st.sampled_from(["---\n", "--- # next\n", "---\n# comment only\n---\n"])
    text = docs[0] if docs else ""
    for doc in docs[1:]:
        text += draw(separators) + doc
    return draw(st.sampled_from(["", "---\n", "# header\n---\n"])) + text


ANY_KIND = [
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("example.com/v1", "Widget"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("apps/v1", "ConfigMap"),
]
MOVABLE = [("v1", "ConfigMap"), ("v1", "Secret")]


@st.composite
def _tree(draw: st.DrawFn, *, raw: bool) -> dict[str, str]:
    """Files of a random tree under ``app/``; names unique per kind unless ``raw``."""
    files: dict[str, str] = {}
    counter = iter(range(10_000))

    def name() -> str:
        if raw and draw(st.integers(0, 7)) == 0:
            return "same"
        return f"{draw(_LABEL)}-{next(counter)}"

    def directory(path: str, depth: int, moved: bool) -> None:
        namespace = draw(st.one_of(st.none(), _LABEL))
        moved = moved or namespace is not None
        kinds = ANY_KIND if raw or not moved else MOVABLE
        entries: list[str] = []
        for n in range(draw(st.integers(1, 3))):  # an empty kustomization goes to kustomize
            rel = draw(st.sampled_from([f"f{n}.yaml", f"f{n}.yml", f"sub{n}/f.yaml"]))
            count = draw(st.integers(0, 3))
            files[f"{path}/{rel}"] = draw(
                _file(kinds=kinds, names=[name() for _ in range(count)], raw=raw)
            )
            entries.append(draw(st.sampled_from([rel, f"./{rel}"])))
        if depth < 2:
            for n in range(draw(st.integers(0, 2))):
                directory(f"{path}/base{n}", depth + 1, moved)
                entries.append(f"base{n}")
        entries = draw(st.permutations(entries))
        head = draw(
            st.sampled_from(
                [
                    "",
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
                    "# a kustomization\n",
                    "kind: Kustomization\n",
                ]
            )
        )
        listed = "".join(f"- {e}\n" for e in entries)
        parts = [f"resources:\n{listed}" if entries else "resources: []\n"]
        if namespace is not None:
            parts.append(f"namespace: {_quoted(namespace)}\n")
        parts = draw(st.permutations(parts))
        kname = draw(st.sampled_from(["kustomization.yaml", "kustomization.yml", "Kustomization"]))
        files[f"{path}/{kname}"] = head + "".join(parts)

    directory("app", 0, False)
    return files


def _run(kubectl: str, files: dict[str, str], check: Callable[[Any, Any], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="sg-native-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        check(native_objects(root, root / "app"), kustomize_objects(kubectl, root / "app"))


_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(files=_tree(raw=False))
def test_eligible_trees_build_natively_as_kustomize_does(
    kubectl: str, files: dict[str, str]
) -> None:
    # the one screen allowed to turn an eligible tree away: the byte-level look for scalars
    # kustomize may read otherwise, which is conservative (it also fires inside some strings)
    screened = any(reads_otherwise(text.encode()) for text in files.values())
    event("screened out by reads_otherwise" if screened else "not screened")

    def check(native: Any, expected: Any) -> None:
        assert expected is not None, "kustomize failed on an eligible tree"
        if screened and native is None:
            return
        assert native is not None, "an eligible tree fell back to kustomize"
        assert as_text(native) == as_text(expected)

    _run(kubectl, files, check)


@_SETTINGS
@given(files=_tree(raw=True))
def test_the_native_build_is_kustomize_or_nothing(kubectl: str, files: dict[str, str]) -> None:
    def check(native: Any, expected: Any) -> None:
        event("native build" if native is not None else "fell back")
        event("kustomize failed" if expected is None else "kustomize built it")
        if native is None:
            return
        assert expected is not None, "native built a tree kustomize refuses"
        assert as_text(native) == as_text(expected)

    _run(kubectl, files, check)
