"""Fuzzing of every parser that reads attacker-controlled bytes (issue 11, "Must").

Whoever can commit to a repository, or reach the webhook, controls the bytes these parsers read:
SOPS documents (YAML and JSON) and their ``ENC[...]`` values, SealedSecret documents,
``.sops.yaml``, ``.sgignore``, kustomize's output (its input is the repository), the safe YAML
loader, a whole file through the pipeline's render and decrypt phases, and the webhook request.
The property is the same for each: whatever the input, only errors of ``sealed_gitops.errors``
come out (never a KeyError, TypeError, RecursionError, UnicodeError, ...: those are crashes, and
in the operator a 500 or a reconcile that dies with a traceback), and every input is handled
within the deadline.

Inputs are a mix of random bytes, YAML/JSON fragments joined at random (aliases, tags, merge keys,
deep nesting, odd scalars, ``ENC[`` pieces), and mutations (insertions, deletions, splices) of real
documents made with the real keys, so the fuzzer gets past the first parse and reaches MAC checks,
metadata parsing and unsealing.

Two runs, one harness: ``pytest`` runs a short bounded pass (profile ``fuzz-ci``, 200 examples per
parser); ``make fuzz`` runs the same tests with ``SEALED_GITOPS_FUZZ=long`` (profile ``fuzz-long``,
``SEALED_GITOPS_FUZZ_EXAMPLES`` examples each, 20,000 by default). A crash found is fixed in the
parser's own module and its input kept below as a regression example (``@example``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml
from aiohttp import web
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sealed_gitops.cluster import KubeClient, connect
from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient
from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import parse_sealed_secret, parse_secret, seal_secret
from sealed_gitops.crypto.sealing_keys import SealingKey, generate_sealing_key
from sealed_gitops.crypto.sops import (
    decrypt_document,
    encrypt_bytes,
    is_sops_document,
    load_creation_rules,
    master_key_ids,
    match_creation_rule,
)
from sealed_gitops.crypto.sops.document import load_tree
from sealed_gitops.crypto.sops.values import decrypt_value, encrypt_value
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.keys.sealing import SealingKeyring
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.settings import OperatorSettings
from sealed_gitops.operator.webhook import SIGNATURE_HEADER, sign, webhook_app
from sealed_gitops.pipeline import FailurePolicy, build
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.render.document import make_document
from sealed_gitops.render.kustomize import OUTPUT_LIMITS, _run_capped
from sealed_gitops.render.loader import load_bytes
from sealed_gitops.render.walk import IgnoreRules

_DEADLINE_MS = 5000  # per input; generous for a shared 2-core machine, tiny next to a freeze
settings.register_profile(
    "fuzz-ci",
    max_examples=200,
    deadline=_DEADLINE_MS,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-long",
    max_examples=int(os.environ.get("SEALED_GITOPS_FUZZ_EXAMPLES", "20000")),
    deadline=_DEADLINE_MS,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: the profile the harnesses run under (``make fuzz`` sets SEALED_GITOPS_FUZZ=long)
FUZZ = settings.get_profile("fuzz-long" if os.environ.get("SEALED_GITOPS_FUZZ") else "fuzz-ci")


# --- material: real documents made with real keys, to mutate ------------------------------------


@dataclass(frozen=True)
class _Material:
    identities: AgeIdentities
    sealing: SealingKey
    data_key: bytes
    sops_yaml: bytes
    sops_json: bytes
    sealed_yaml: bytes
    enc_values: tuple[str, ...]


@cache
def _material() -> _Material:
    identity = pyrage.x25519.Identity.generate()
    recipient = AgeRecipient(str(identity.to_public()))
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: team-a\n"
        "type: Opaque\nstringData:\n  password: hunter2-fuzz\n  port: 5432\n"
        "  list: [1, two, 3.5, true]\n"
    )
    sops_yaml = encrypt_bytes(manifest.encode(), key_groups=[[recipient]], file="s.yaml")
    sops_json = encrypt_bytes(
        json.dumps({"a": "b", "n": 1, "f": 1.5, "t": True, "l": ["x", None]}).encode(),
        key_groups=[[recipient]],
        file="s.json",
    )
    sealing = generate_sealing_key(bits=2048)
    secret = parse_secret(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "team-a"},
            "data": {"password": base64.b64encode(b"hunter2-fuzz").decode(), "port": "NTQzMg=="},
        }
    )
    sealed_doc = seal_secret(secret, recipients=[sealing.public_key], scope=Scope.STRICT)
    sealed_yaml = yaml.safe_dump(sealed_doc.to_manifest(), sort_keys=False).encode()
    data_key = os.urandom(32)
    aead = AESGCM(data_key)
    enc_values = tuple(
        str(encrypt_value(aead, v, "a:b:")) for v in ("text", 42, 1.5, True, b"\x00\xff")
    )
    return _Material(
        identities=AgeIdentities([identity]),
        sealing=sealing,
        data_key=data_key,
        sops_yaml=sops_yaml,
        sops_json=sops_json,
        sealed_yaml=sealed_yaml,
        enc_values=enc_values,
    )


# --- strategies -----------------------------------------------------------------------------------

_FRAGMENTS = [
    "a",
    "key",
    "b: ",
    ": ",
    "- ",
    "\n",
    "  ",
    "    ",
    "\t",
    "&x ",
    "*x",
    "&y ",
    "*y",
    "<<: *x",
    "<<: [*x, *y]",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "'",
    '"',
    "\\",
    "!!binary ",
    "!!int ",
    "!!str ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!timestamp ",
    "!!map ",
    "!!seq ",
    "!!set ",
    "!custom ",
    "!!python/object:os.system ",
    "---\n",
    "...\n",
    "# c\n",
    "|\n",
    ">-\n",
    "|+2\n",
    "? ",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "sops:\n",
    "  mac: ",
    "  lastmodified: ",
    "  version: 3.9.0\n",
    "  age:\n",
    "    - recipient: ",
    "      enc: ",
    "  encrypted_regex: ",
    "  unencrypted_suffix: _u\n",
    "  shamir_threshold: ",
    "  key_groups:\n",
    "  hc_vault:\n",
    "ENC[AES256_GCM,data:",
    "AAAA",
    "====",
    ",iv:",
    ",tag:",
    ",type:str]",
    ",type:int]",
    ",type:bytes]",
    ",type:comment]",
    "]",
    "0x1F",
    "0o17",
    "0777",
    "1_000",
    "1e400",
    "-.inf",
    ".nan",
    "~",
    "null",
    "yes",
    "2001-12-14t21:59:43.10-05:00",
    "2001-13-45",
    "\x00",
    "\ufeff",
    "\u2028",
    "é",
    "\udcff",
    "😀",
    "apiVersion: v1\n",
    "kind: Secret\n",
    "kind: SealedSecret\n",
    "apiVersion: bitnami.com/v1alpha1\n",
    "metadata:\n  name: x\n",
    "spec:\n  encryptedData:\n",
    "data:\n",
    "stringData:\n",
    "creation_rules:\n",
    "  - path_regex: ",
    "(a+)+$",
    "[",
    "**/",
    "!",
    "/",
    "\\*",
    "[!a-",
    '{"a": ',
    '"\\ud800"',
    "1" * 30,
    "-" * 3,
]


@st.composite
def _fragments(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from(_FRAGMENTS), max_size=80))
    return "".join(parts).encode("utf-8", "surrogatepass")


@st.composite
def _nesting(draw: st.DrawFn) -> bytes:
    """Deep nesting: the shape that turns into RecursionError in a recursive walk."""
    depth = draw(st.integers(min_value=50, max_value=5000))
    opener, closer = draw(
        st.sampled_from([("[", "]"), ("{a: ", "}"), ('{"a": ', "}"), ("- ", ""), ("a:\n ", "")])
    )
    if opener in ("- ", "a:\n "):
        lines = [" " * i + opener.strip() for i in range(depth)]
        return ("\n".join(lines) + " x\n").encode()
    return (opener * depth + "1" + closer * depth).encode()


@st.composite
def _mutated(draw: st.DrawFn, seeds: Callable[[], tuple[bytes, ...]]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        where = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "splice", "truncate"]))
        if op == "insert":
            data[where:where] = draw(st.sampled_from(_FRAGMENTS)).encode("utf-8", "surrogatepass")
        elif op == "delete":
            del data[where : where + draw(st.integers(min_value=1, max_value=40))]
        elif op == "replace" and data:
            data[where] = draw(st.integers(min_value=0, max_value=255))
        elif op == "splice":
            start = draw(st.integers(min_value=0, max_value=len(data)))
            data[where:where] = data[start : start + draw(st.integers(1, 200))]
        else:
            del data[where:]
    return bytes(data)


def _inputs(seeds: Callable[[], tuple[bytes, ...]]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=600),
        _fragments(),
        _nesting(),
        _mutated(seeds),
        _mutated(seeds),
    )


def _sops_seeds() -> tuple[bytes, ...]:
    m = _material()
    return (m.sops_yaml, m.sops_json)


def _manifest_seeds() -> tuple[bytes, ...]:
    m = _material()
    return (
        m.sops_yaml,
        m.sealed_yaml,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: n\ndata:\n"
        b"  a: &a x\n  b: *a\n  c: '1'\nbase: &m {k: v}\nother:\n  <<: *m\n---\n"
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: dg==\n",
    )


def _enc_seeds() -> tuple[bytes, ...]:
    return tuple(v.encode() for v in _material().enc_values)


#: nine levels of ten aliases each: 10**9 strings once anything walks or prints it
_ALIAS_BOMB = (
    b'l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]\n'
    + b"".join(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 10)}]\n".encode() for i in range(1, 9))
    + b"creation_rules:\n  - path_regex: *l8\n"
)


def _only_project_errors(call: Callable[[], object]) -> None:
    """The property: the call returns, or raises an error of the project's tree."""
    with contextlib.suppress(SealedGitopsError):
        call()


# --- harnesses ---------------------------------------------------------------------------------


@FUZZ
@given(data=_inputs(_manifest_seeds), as_json=st.booleans())
@example(data=b"[" * 3000 + b"]" * 3000, as_json=True)
@example(data=b"a: &a [*a]\n", as_json=False)
def test_safe_yaml_loader(data: bytes, as_json: bool) -> None:
    _only_project_errors(lambda: load_bytes(data, file="f.yaml", json_format=as_json))


@FUZZ
@given(data=_inputs(_manifest_seeds))
def test_kustomize_output_reader(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    """kustomize's output read from its pipe with the caps, parsed and classified, as
    ``render.build`` does with a build's output."""
    out = tmp_path_factory.getbasetemp() / "kustomize-output.yaml"
    out.write_bytes(data)

    def read() -> None:
        code, stdout, _ = _run_capped(["cat", str(out)], timeout=10.0, limits=OUTPUT_LIMITS)
        assert code == 0 and stdout == data
        for index, value in load_bytes(stdout, file="k", limits=OUTPUT_LIMITS):
            make_document(value, file="k", index=index, via="k")

    _only_project_errors(read)


@FUZZ
@given(data=_inputs(_sops_seeds), as_json=st.booleans())
def test_sops_documents(data: bytes, as_json: bool) -> None:
    """Load, metadata and the whole decrypt (data key unwrap, values, MAC) of a SOPS file."""
    file = "s.json" if as_json else "s.yaml"
    m = _material()
    _only_project_errors(lambda: load_tree(data, fmt="json" if as_json else "yaml", file=file))
    _only_project_errors(lambda: is_sops_document(data, file=file))
    _only_project_errors(lambda: master_key_ids(data, file=file))
    _only_project_errors(lambda: decrypt_document(data, unwrapper=m.identities, file=file))


@FUZZ
@given(data=_inputs(_enc_seeds), aad=st.sampled_from(["a:b:", "", "x:"]))
def test_enc_values(data: bytes, aad: str) -> None:
    text = data.decode("utf-8", "replace")
    aead = AESGCM(_material().data_key)
    _only_project_errors(lambda: decrypt_value(aead, text, aad))


@FUZZ
@given(data=_inputs(lambda: (_material().sealed_yaml,)))
def test_sealed_documents(data: bytes) -> None:
    """A SealedSecret manifest: parsed as the loader gives it, then unsealed with a real key."""
    ring = SealingKeyring([_material().sealing.private_key])

    def unseal() -> None:
        for _, value in load_bytes(data, file="sealed.yaml"):
            if isinstance(value, dict):
                ring.unseal(parse_sealed_secret(value, file="sealed.yaml"), file="sealed.yaml")

    _only_project_errors(unseal)


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=8),
)
_TREES = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=4)
    ),
    max_leaves=25,
)


@FUZZ
@given(
    tree=st.fixed_dictionaries(
        {},
        optional={
            "apiVersion": st.sampled_from(["bitnami.com/v1alpha1"]) | _TREES,
            "kind": st.sampled_from(["SealedSecret"]) | _TREES,
            "metadata": st.fixed_dictionaries(
                {},
                optional={
                    "name": st.text(max_size=8) | _TREES,
                    "namespace": _TREES,
                    "annotations": st.dictionaries(
                        st.sampled_from(
                            [
                                "sealedsecrets.bitnami.com/cluster-wide",
                                "sealedsecrets.bitnami.com/namespace-wide",
                                "sealed-gitops.io/key-ids",
                                "sealed-gitops.io/additional",
                                "sealed-gitops.io/scope-digest",
                            ]
                        ),
                        _TREES,
                        max_size=3,
                    ),
                },
            )
            | _TREES,
            "spec": st.fixed_dictionaries(
                {}, optional={"encryptedData": _TREES, "template": _TREES, "data": _TREES}
            )
            | _TREES,
        },
    )
)
def test_sealed_document_trees(tree: dict[str, Any]) -> None:
    """Every shape of value in every field of a SealedSecret (YAML gives any JSON-like tree)."""
    ring = SealingKeyring([_material().sealing.private_key])
    _only_project_errors(lambda: ring.unseal(parse_sealed_secret(tree, file="s.yaml")))


@FUZZ
@given(
    data=_inputs(
        lambda: (
            b"creation_rules:\n  - path_regex: .*\\.yaml$\n    age: age1x\n"
            b"    encrypted_regex: ^(data|stringData)$\n  - key_groups:\n      - age: [a, b]\n"
            b"    shamir_threshold: 1\n",
        )
    ),
    path=st.text(max_size=40),
)
@example(data=b"creation_rules: &r [*r]\n", path="x")
@example(data=b"[" * 3000 + b"]" * 3000, path="")  # was a RecursionError
@example(data=_ALIAS_BOMB, path="x")  # was str() of a 10**9-item list
def test_sops_config(data: bytes, path: str) -> None:
    text = data.decode("utf-8", "replace")

    def parse_and_match() -> None:
        match_creation_rule(load_creation_rules(text), path)

    _only_project_errors(parse_and_match)


@FUZZ
@given(
    lines=st.lists(st.one_of(st.text(max_size=30), st.sampled_from(_FRAGMENTS)), max_size=12),
    path=st.text(max_size=60),
    is_dir=st.booleans(),
)
def test_sgignore(lines: list[str], path: str, is_dir: bool) -> None:
    _only_project_errors(lambda: IgnoreRules(lines).ignored(path, is_dir=is_dir))


@FUZZ
@given(
    data=_inputs(_manifest_seeds),
    policy=st.sampled_from(list(FailurePolicy)),
    name=st.sampled_from(["f.yaml", "f.json", "f.yml"]),
)
# was an AttributeError in ObjectId.of (plan/ids.py), naming the failed object
@example(data=b"metadata: .", policy=FailurePolicy.ISOLATE, name="f.yaml")
@example(data=b"metadata: [a]\nkind: x\n", policy=FailurePolicy.ATOMIC, name="f.yaml")
def test_pipeline_one_file(
    data: bytes, policy: FailurePolicy, name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A commit of one file, end to end through render and decrypt with real keys."""
    root = tmp_path_factory.getbasetemp() / "fuzz-repo"
    root.mkdir(exist_ok=True)
    for old in root.iterdir():
        old.unlink()
    (root / name).write_bytes(data)
    m = _material()
    keys = DecryptionKeys(sops=m.identities, sealing=SealingKeyring([m.sealing.private_key]))
    _only_project_errors(lambda: build(root=root, keys=keys, policy=policy))


# --- the webhook ---------------------------------------------------------------------------------

_HOOK_TOKEN = b"fuzz-webhook-token"
#: 400 is aiohttp's own answer to a request it cannot parse (a NUL in a header), before our code
_ANSWERS = {200, 202, 400, 401, 404, 405, 413, 429, 503}


@dataclass
class _Hook:
    port: int
    namespace: str


@pytest.fixture(scope="module")
def hook(kubeconfig: Path, crds: None) -> Iterator[_Hook]:
    """The webhook receiver on 127.0.0.1 (its own loop in a thread), over the test cluster, with
    one Repository whose webhook secret is known (so signed inputs get past the signature)."""
    client = connect(kubeconfig)
    namespace = f"fuzz-{os.urandom(4).hex()}"
    _create(client, "/api/v1/namespaces", {"metadata": {"name": namespace}}, "Namespace")
    _create(
        client,
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "metadata": {"name": "hook"},
            "data": {"token": base64.b64encode(_HOOK_TOKEN).decode()},
        },
        "Secret",
    )
    _create(
        client,
        f"/apis/sealed-gitops.io/v1alpha1/namespaces/{namespace}/repositories",
        {
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "app"},
            "spec": {
                "url": "https://example.invalid/x.git",
                "ref": {"branch": "main"},
                "interval": "1h",
                "webhook": {"secretRef": {"name": "hook"}},
            },
        },
        "Repository",
    )
    ctx = OperatorContext(OperatorSettings(), client=client)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(webhook_app(ctx))
    asyncio.run_coroutine_threadsafe(runner.setup(), loop).result(10)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    asyncio.run_coroutine_threadsafe(site.start(), loop).result(10)
    port = runner.addresses[0][1]
    try:
        yield _Hook(port=port, namespace=namespace)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        with contextlib.suppress(SealedGitopsError):
            client.request(
                "DELETE", f"/api/v1/namespaces/{namespace}", action="delete", what="namespace"
            )
        client.close()


def _create(client: KubeClient, path: str, body: dict[str, Any], kind: str) -> None:
    body = {"apiVersion": "v1", "kind": kind, **body}
    client.request("POST", path, body=body, action="create", what=kind)


@pytest.mark.e2e
@FUZZ
@given(
    body=st.one_of(st.binary(max_size=400), _fragments()),
    signature=st.one_of(
        st.binary(max_size=80),
        st.just(b"signed"),
        st.sampled_from([b"sha256=", b"sha256=" + b"0" * 64, "sha256=é".encode()]),
    ),
    segments=st.one_of(
        st.just(None),
        st.tuples(st.text(max_size=20), st.text(max_size=20)),
    ),
    delivery=st.one_of(st.none(), st.binary(max_size=40)),
    event=st.sampled_from([None, b"push", b"ping", b"\xff"]),
)
def test_webhook_request(
    hook: _Hook,
    body: bytes,
    signature: bytes,
    segments: tuple[str, str] | None,
    delivery: bytes | None,
    event: bytes | None,
) -> None:
    """Any path, body and headers: an answer from the expected set, never a 500."""
    if segments is None:
        path = f"/hook/{hook.namespace}/app"
    else:
        path = "/hook/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
    if signature == b"signed":
        signature = sign(_HOOK_TOKEN, body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=15)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader(SIGNATURE_HEADER, signature.replace(b"\r", b"").replace(b"\n", b""))
        if delivery is not None:
            conn.putheader("X-GitHub-Delivery", delivery.replace(b"\r", b"").replace(b"\n", b""))
        if event is not None:
            conn.putheader("X-GitHub-Event", event)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status in _ANSWERS, (status, path)


# --- make fuzz: the same harnesses under atheris (coverage-guided), when it is installed ---------

#: the harnesses that take no fixture, so atheris can drive them through hypothesis
ATHERIS_HARNESSES: dict[str, Any] = {
    "safe_yaml_loader": test_safe_yaml_loader,
    "sops_documents": test_sops_documents,
    "enc_values": test_enc_values,
    "sealed_documents": test_sealed_documents,
    "sealed_document_trees": test_sealed_document_trees,
    "sops_config": test_sops_config,
    "sgignore": test_sgignore,
}


def _atheris_main(argv: list[str]) -> None:
    """``python -m tests.security.test_fuzz HARNESS [libFuzzer flags, e.g. -runs=100000]``."""
    import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

    if len(argv) < 2 or argv[1] not in ATHERIS_HARNESSES:
        raise SystemExit(f"usage: {argv[0]} {{{','.join(ATHERIS_HARNESSES)}}} [libFuzzer flags]")
    harness = ATHERIS_HARNESSES[argv[1]]
    atheris.instrument_all()
    atheris.Setup([argv[0], *argv[2:]], harness.hypothesis.fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    import sys

    _atheris_main(sys.argv)
