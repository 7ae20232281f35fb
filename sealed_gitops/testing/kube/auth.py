"""Who is calling the emulator: bearer tokens, service-account tokens and impersonation.

Why this module exists: the emulator has to answer 401 for unknown tokens and know *who* a request
comes from before RBAC can answer 403, exactly as a real API server does. Three sources of identity
are covered:

* static tokens (the kubeconfig's token, extra users a test adds), fixed at start-up;
* service-account tokens issued through TokenRequest (``serviceaccounts/NAME/token``), kept in
  memory with their audiences and expiry, and answered for by TokenReview;
* the ``Impersonate-User`` / ``Impersonate-Group`` headers, parsed by :func:`impersonation_target`
  (whether the caller *may* impersonate is an RBAC question, see ``rbac.py``).

Issued tokens are JWT-shaped on purpose, not bare random strings: Vault's (and OpenBao's) Kubernetes
auth method parses the token's claims (namespace, service-account name and uid, audiences) *before*
it calls TokenReview, and refuses anything that is not a compact JWS. The signature part is random
bytes from :mod:`secrets`, so the token cannot be forged or verified offline; the emulator only ever
accepts a token by looking the whole string up in memory.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "API_AUDIENCES",
    "AUTHENTICATED_GROUP",
    "SERVICE_ACCOUNT_ISSUER",
    "Authenticator",
    "ImpersonationError",
    "UserInfo",
    "impersonation_target",
    "service_account_username",
]

#: The ``iss`` claim of issued tokens; the value kind and kubeadm clusters use.
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: The audiences the API server itself accepts. A token requested for other audiences only (say
#: ``vault``) is refused as a bearer token but still answered for by a TokenReview naming them.
API_AUDIENCES: tuple[str, ...] = (SERVICE_ACCOUNT_ISSUER,)

#: Group every authenticated user belongs to, added by the real server after authentication.
AUTHENTICATED_GROUP = "system:authenticated"

_SA_PREFIX = "system:serviceaccount:"
_SA_GROUP = "system:serviceaccounts"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as RBAC and TokenReview see it."""

    username: str
    groups: tuple[str, ...]
    uid: str = ""


class ImpersonationError(ValueError):
    """Impersonation headers that cannot be honoured (groups without a user).

    The real server answers such a request with 500 and the message below; the emulator's core
    may map this exception to the same answer.
    """


@dataclass(frozen=True)
class _Issued:
    user: UserInfo
    audiences: tuple[str, ...]
    expires: datetime


def service_account_username(namespace: str, name: str) -> str:
    """The username Kubernetes gives a service account."""
    return f"{_SA_PREFIX}{namespace}:{name}"


def _service_account_user(namespace: str, name: str, uid: str) -> UserInfo:
    return UserInfo(
        username=service_account_username(namespace, name),
        groups=(_SA_GROUP, f"{_SA_GROUP}:{namespace}", AUTHENTICATED_GROUP),
        uid=uid,
    )


def _with_authenticated(user: UserInfo) -> UserInfo:
    # The real server appends system:authenticated to every user an authenticator returns.
    if AUTHENTICATED_GROUP in user.groups or user.username == "system:anonymous":
        return user
    return UserInfo(user.username, (*user.groups, AUTHENTICATED_GROUP), user.uid)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _bearer(authorization_header: str | None) -> str | None:
    if not authorization_header:
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    # The scheme is case-insensitive (RFC 9110); an empty token is no token.
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class Authenticator:
    """Maps bearer tokens to users; issues and reviews service-account tokens.

    Thread-safe: the emulator may serve from several threads (tests call it in-process) and a
    TokenRequest can race a request that uses an earlier token.
    """

    def __init__(
        self,
        *,
        static_tokens: Mapping[str, UserInfo],
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._static = {token: _with_authenticated(user) for token, user in static_tokens.items()}
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()
        # A seam for tests of expiry; the emulator itself always uses the wall clock.
        self._clock = clock

    def add_static_token(self, token: str, user: UserInfo) -> None:
        """Accept one more static token (a test adding a user after start-up)."""
        with self._lock:
            self._static[token] = _with_authenticated(user)

    def _lookup(self, token: str) -> tuple[UserInfo, tuple[str, ...] | None] | None:
        """The user behind a token and the token's audiences (None: audience-agnostic)."""
        with self._lock:
            static = self._static.get(token)
            if static is not None:
                return static, None
            issued = self._issued.get(token)
            if issued is None:
                return None
            if issued.expires <= self._clock():
                del self._issued[token]
                return None
            return issued.user, issued.audiences

    def authenticate(self, authorization_header: str | None) -> UserInfo | None:
        """The user behind an ``Authorization`` header, or None (the caller answers 401)."""
        token = _bearer(authorization_header)
        if token is None:
            return None
        found = self._lookup(token)
        if found is None:
            return None
        user, audiences = found
        # A token requested for someone else (audience "vault") is not a key to the API itself.
        if audiences is not None and not set(audiences) & set(API_AUDIENCES):
            return None
        return user

    def issue_token(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        audiences: list[str],
        expiration_seconds: int,
    ) -> tuple[str, datetime]:
        """A new token for service account ``namespace/name`` and its expiry (TokenRequest).

        An empty ``audiences`` list means the API server's own audiences, as on a real cluster.
        """
        if expiration_seconds <= 0:
            raise ValueError("expiration_seconds must be positive")
        auds = tuple(audiences) if audiences else API_AUDIENCES
        now = self._clock()
        expires = now + timedelta(seconds=expiration_seconds)
        issued_at = int(now.timestamp())
        claims = {
            "aud": list(auds),
            "exp": int(expires.timestamp()),
            "iat": issued_at,
            "iss": SERVICE_ACCOUNT_ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": uid},
            },
            "nbf": issued_at,
            "sub": service_account_username(namespace, name),
        }
        header = {"alg": "RS256", "kid": _b64url(secrets.token_bytes(16))}
        token = ".".join(
            (
                _b64url(json.dumps(header, separators=(",", ":")).encode()),
                _b64url(json.dumps(claims, separators=(",", ":")).encode()),
                # Random, not a signature: nobody can verify or forge it, only the lookup counts.
                _b64url(secrets.token_bytes(256)),
            )
        )
        with self._lock:
            self._purge_expired(now)
            self._issued[token] = _Issued(
                user=_service_account_user(namespace, name, uid),
                audiences=auds,
                expires=expires,
            )
        return token, expires

    def revoke_service_account(self, *, namespace: str, name: str) -> int:
        """Forget every token of a deleted service account; returns how many were dropped."""
        username = service_account_username(namespace, name)
        with self._lock:
            doomed = [t for t, i in self._issued.items() if i.user.username == username]
            for token in doomed:
                del self._issued[token]
        return len(doomed)

    def _purge_expired(self, now: datetime) -> None:
        # Called under the lock on each issue, so memory stays bounded by live tokens.
        for token in [t for t, i in self._issued.items() if i.expires <= now]:
            del self._issued[token]

    def review(self, token: str, audiences: list[str]) -> dict[str, object]:
        """The ``status`` of a TokenReview for ``token`` checked against ``audiences``.

        Empty ``audiences`` means the API server's own. The answer lists the audiences the token
        is valid for among those asked, as the real server does.
        """
        wanted = tuple(audiences) if audiences else API_AUDIENCES
        found = self._lookup(token)
        if found is None:
            # one error is written bare, as kube-apiserver (1.37) does; two are an aggregate
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        user, token_audiences = found
        # Static tokens are audience-agnostic: valid for exactly the API server's audiences.
        valid_for = API_AUDIENCES if token_audiences is None else token_audiences
        matched = [a for a in wanted if a in valid_for]
        if not matched:
            return {
                "authenticated": False,
                "user": {},
                "error": "[invalid bearer token, token audiences "
                f"{list(valid_for)} is invalid for the target audiences {list(wanted)}]",
            }
        return {
            "authenticated": True,
            "user": {"username": user.username, "uid": user.uid, "groups": list(user.groups)},
            "audiences": matched,
        }


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of a header, case-insensitively, repeated headers included."""
    getall = getattr(headers, "getall", None)
    if callable(getall):
        # aiohttp's CIMultiDictProxy: case-insensitive already, and keeps repeated headers.
        values = getall(name, [])
        return [str(v) for v in values]
    lowered = name.lower()
    return [value for key, value in headers.items() if key.lower() == lowered]


def impersonation_target(user: UserInfo, headers: Mapping[str, str]) -> UserInfo | None:
    """The identity a request asks to act as, or None when it asks for no impersonation.

    ``user`` is the authenticated caller; it is not consulted for the answer (whether it may
    impersonate is for RBAC to decide) but keeps the signature symmetrical with the real filter.
    Impersonating a service-account username brings that account's groups, as on a real server,
    and every impersonated user gets ``system:authenticated``.
    """
    del user  # permission to impersonate is checked by the authorizer, not here
    names = [v.strip() for v in _header_values(headers, "Impersonate-User") if v.strip()]
    groups = [v.strip() for v in _header_values(headers, "Impersonate-Group") if v.strip()]
    uids = [v.strip() for v in _header_values(headers, "Impersonate-Uid") if v.strip()]
    if not names:
        if groups or uids:
            asked = ["groups"] * bool(groups) + ["uid"] * bool(uids)
            raise ImpersonationError(f"requested {asked} without impersonating a user")
        return None
    username = names[0]
    if not groups and username.startswith(_SA_PREFIX):
        namespace, _, _name = username[len(_SA_PREFIX) :].partition(":")
        groups = [_SA_GROUP, f"{_SA_GROUP}:{namespace}"]
    return _with_authenticated(UserInfo(username, tuple(groups), uids[0] if uids else ""))
