"""postBuild substitution (render/substitute.py): Flux's grammar, the Secret rule, the bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_gitops.errors import FormatError, LimitExceeded, RenderError
from sealed_gitops.plan import ObjectId
from sealed_gitops.redact import redact
from sealed_gitops.render.decrypt import RenderedObject
from sealed_gitops.render.document import DocKind, Document, Failure, make_document
from sealed_gitops.render.substitute import (
    DISABLE_KEY,
    Bounds,
    Origin,
    Substitution,
    Variable,
    Variables,
    expand,
)

INLINE = "spec.postBuild.substitute"


def _vars(**values: str) -> dict[str, Variable]:
    return {k: Variable(v, Origin.INLINE, INLINE) for k, v in values.items()}


def _rendered(obj: dict[str, Any], *, source: DocKind = DocKind.SOPS) -> RenderedObject:
    """A decrypted object (substituted after decryption)."""
    return RenderedObject(
        id=ObjectId.of(obj), data=obj, file="deploy/x.yaml", index=0, source=source
    )


def _plain(
    objs: list[dict[str, Any]],
    variables: Variables,
    *,
    bounds: Bounds | None = None,
    failures: list[Failure] | None = None,
) -> list[Document]:
    """Plain documents (substituted before decryption)."""
    docs = [make_document(o, file="deploy/x.yaml", index=i) for i, o in enumerate(objs)]
    run = Substitution(variables, bounds=bounds or Bounds())
    return run.documents(docs, failures=failures)


def _decrypted(objs: list[RenderedObject], variables: Variables) -> list[RenderedObject]:
    return Substitution(variables).objects(objs)


def _cm(data: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "team-a", **meta},
        "data": data,
    }


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${MISSING}", {}, ""),
        ("${MISSING:=dflt}", {}, "dflt"),
        ("${MISSING:-dflt}", {}, "dflt"),
        ("${EMPTY:-dflt}", {"EMPTY": ""}, "dflt"),
        ("${EMPTY:=dflt}", {"EMPTY": ""}, "dflt"),
        ("${EMPTY-dflt}", {"EMPTY": ""}, ""),
        ("${MISSING-dflt}", {}, "dflt"),
        ("${A:=dflt}", {"A": "set"}, "set"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("$${A} and ${A}", {"A": "x"}, "${A} and x"),
        ("$A stays", {"A": "x"}, "$A stays"),
        ("${1A} and ${a.b}", {}, "${1A} and ${a.b}"),
        ("${_under_1}", {"_under_1": "u"}, "u"),
        ("cost: $5", {}, "cost: $5"),
    ],
)
def test_expand_grammar(text: str, values: dict[str, str], expected: str) -> None:
    assert expand(text, _vars(**values)) == expected


def test_one_pass_no_recursion() -> None:
    # A value that looks like a variable is not scanned again: no expansion chain, no bomb.
    variables = _vars(A="${B}", B="${A}${A}${A}")
    assert expand("${A}", variables) == "${B}"
    assert expand("${B}", variables) == "${A}${A}${A}"


@given(st.text().filter(lambda t: "$" not in t))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert expand(text, _vars(A="x")) == text
    obj = _cm({"k": text})
    out = _plain([obj], Variables.layered([_vars(A="x")]))
    assert out[0].data is obj


def test_layer_order_later_wins() -> None:
    first = {"A": Variable("from-cm", Origin.CONFIG_MAP, "ConfigMap ns/one")}
    second = {"A": Variable("from-secret", Origin.SECRET, "Secret ns/two")}
    inline = {"A": Variable("inline", Origin.INLINE, INLINE)}
    assert Variables.layered([first, second]).lookup()["A"].value == "from-secret"
    assert Variables.layered([first, second, inline]).lookup()["A"].origin is Origin.INLINE


def test_bad_variable_name_refused() -> None:
    with pytest.raises(FormatError, match="not a variable name"):
        Variables.layered([{"1bad": Variable("x", Origin.INLINE, INLINE)}])


def test_value_size_and_growth_bounded() -> None:
    bounds = Bounds(max_value_bytes=10, max_growth_bytes=100)
    with pytest.raises(LimitExceeded, match="over 10 bytes"):
        Variables.layered([_vars(A="x" * 11)], bounds=bounds)
    variables = Variables.layered([_vars(A="y" * 10)], bounds=bounds)
    obj = _cm({f"k{i}": "${A}" for i in range(20)})
    with pytest.raises(LimitExceeded, match="grows the build"):
        _plain([obj], variables, bounds=bounds)


def test_types_follow_the_field() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"replicas": "${R}"}},
        "spec": {
            "replicas": "${R}",
            "paused": "${FLAG}",
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "args": ["${R}"],
                            "env": [{"name": "PORT", "value": "${R}"}],
                            "image": "nginx:${R}",
                        }
                    ]
                }
            },
        },
    }
    out = _plain([obj], Variables.layered([_vars(R="3", FLAG="false")]))[0].data
    container = out["spec"]["template"]["spec"]["containers"][0]
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["paused"] is False
    assert out["metadata"]["labels"]["replicas"] == "3"
    assert container["args"] == ["3"]
    assert container["env"][0]["value"] == "3"
    assert container["image"] == "nginx:3"
    assert obj["spec"]["replicas"] == "${R}"  # the build's own object is not changed


@pytest.mark.parametrize("block", ["annotations", "labels"])
def test_disabled_objects_are_left_alone(block: str) -> None:
    obj = _cm({"script": "echo ${HOME}"}, **{block: {DISABLE_KEY: "disabled"}})
    out = _plain([obj], Variables.layered([_vars(HOME="/x")]))
    assert out[0].data["data"]["script"] == "echo ${HOME}"


CANARY = "canary-0f3c9d1e-never-print-me"


def _secret_vars() -> Variables:
    return Variables.layered([{"PASS": Variable(CANARY, Origin.SECRET, "Secret team-a/vars")}])


def test_secret_values_go_into_secret_data() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "team-a"},
        "stringData": {"url": "postgres://u:${PASS}@db"},
        "data": {"raw": "${PASS}"},
    }
    out = _decrypted([_rendered(obj)], _secret_vars())[0].data
    assert out["stringData"]["url"] == f"postgres://u:{CANARY}@db"
    assert out["data"]["raw"] == CANARY


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        (_cm({"url": "${PASS}"}), "data.url"),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db", "namespace": "team-a", "labels": {"x": "${PASS}"}},
                "stringData": {"a": "b"},
            },
            "metadata.labels.x",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db", "namespace": "team-a"},
                "stringData": {"${PASS}": "b"},
            },
            "a key under stringData",
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "team-a"},
                "spec": {"template": {"spec": {"containers": [{"env": [{"value": "${PASS}"}]}]}}},
            },
            "spec.template.spec.containers[0].env[0].value",
        ),
    ],
)
def test_secret_values_refused_elsewhere(obj: dict[str, Any], where: str) -> None:
    with pytest.raises(RenderError) as caught:
        if obj["kind"] == "Secret":
            _decrypted([_rendered(obj)], _secret_vars())
        else:
            _plain([obj], _secret_vars())
    message = str(caught.value)
    assert "PASS" in message and "Secret team-a/vars" in message and where in message
    assert "deploy/x.yaml" in message
    assert CANARY not in message and CANARY not in redact(message)


def test_isolate_lists_the_failure_and_keeps_the_rest() -> None:
    good = _cm({"a": "${A}"})
    bad = _cm({"b": "${PASS}"})
    bad["metadata"]["name"] = "other"
    variables = Variables.layered(
        [_vars(A="x"), {"PASS": Variable(CANARY, Origin.SECRET, "Secret team-a/vars")}]
    )
    failures: list[Failure] = []
    out = _plain([good, bad], variables, failures=failures)
    assert [o.id.name for o in out if o.id] == ["app"]
    assert len(failures) == 1 and "PASS" in str(failures[0]) and CANARY not in str(failures[0])


def test_names_are_checked_after_substitution() -> None:
    obj = _cm({}, name="app-${ENV}")
    out = _plain([obj], Variables.layered([_vars(ENV="prod")]))
    assert out[0].id is not None and out[0].id.name == "app-prod"
    with pytest.raises(RenderError, match="not a valid object name"):
        _plain([obj], Variables.layered([_vars(ENV="x/../../y")]))


def test_a_variable_in_the_namespace_defers_the_id() -> None:
    obj = _cm({}, namespace="${NS}")
    assert make_document(obj, file="a.yaml", index=0).id is None
    out = _plain([obj], Variables.layered([_vars(NS="team-b")]))
    assert out[0].id == ObjectId("team-b", "app", "", "ConfigMap")


def test_encrypted_object_may_not_move() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "${NS}"},
        "stringData": {"a": "b"},
    }
    rendered = RenderedObject(
        id=ObjectId("team-a", "db", "", "Secret"),
        data=obj,
        file="s.yaml",
        index=0,
        source=DocKind.SOPS,
    )
    with pytest.raises(RenderError, match="identity of an object decrypted"):
        _decrypted([rendered], Variables.layered([_vars(NS="team-b")]))


def test_each_string_is_substituted_once() -> None:
    # A plain object done before decryption is not done again after it.
    variables = Variables.layered([_vars(A="${B}", B="boom")])
    docs = _plain([_cm({"a": "${A}"})], variables)
    rendered = RenderedObject(
        id=docs[0].id or ObjectId("x", "x", "", "X"),
        data=dict(docs[0].data),
        file="deploy/x.yaml",
        index=0,
        source=DocKind.PLAIN,
    )
    assert _decrypted([rendered], variables)[0].data["data"] == {"a": "${B}"}


def test_nested_default_refused() -> None:
    with pytest.raises(RenderError, match="may not hold another variable"):
        _plain([_cm({"a": "${A:=${B}}"})], Variables.layered([_vars(B="x")]))


def test_unclosed_defaults_scan_in_linear_time() -> None:
    """A committed string of many ``${A:-`` openings with no ``}`` after them: the regex tried
    each opening up to the end of the text (quadratic; 200 KB took ~50 s). The text after the
    last ``}`` holds no variable, only ``$${`` escapes."""
    import time

    text = "${A:-" * 40_000 + "$${"
    start = time.monotonic()
    out = expand(text, _vars(A="x"))
    assert time.monotonic() - start < 2.0
    assert out == "${A:-" * 40_000 + "${"
    assert expand("${A}-$${B}-${C" * 3 + "$${", _vars(A="x")) == "x-${B}-${C" * 3 + "${"


def test_a_huge_number_stays_a_string() -> None:
    """``replicas: ${N}`` with thousands of digits: int() refuses over 4300 digits with a
    ValueError, which escaped the render's error tree (not a SealedGitopsError) and so the
    isolate policy; such a value is no number Kubernetes takes, it stays a string."""
    digits = "1" * 5000
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {"replicas": "${N}"},
    }
    out = _plain([obj], Variables.layered([_vars(N=digits)]))
    assert out[0].data["spec"]["replicas"] == digits
    small = _plain([obj], Variables.layered([_vars(N="3")]))[0].data
    assert small["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "Secret"), ("apiVersion", "v1")],
)
def test_a_variable_may_not_turn_a_document_into_a_plain_secret(field: str, value: str) -> None:
    """``kind: ${K}`` with K=Secret: the document was classified (plain, not "a plain Secret in
    Git", which is refused) before substitution, so committed plaintext reached a Secret."""
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app", "namespace": "team-a"},
        "stringData": {"password": "committed-in-plaintext"},
        field: "${V}",
    }
    with pytest.raises(RenderError, match="plain Secret"):
        _plain([obj], Variables.layered([_vars(V=value)]))
    failures: list[Failure] = []
    assert _plain([obj], Variables.layered([_vars(V=value)]), failures=failures) == []
    assert len(failures) == 1
