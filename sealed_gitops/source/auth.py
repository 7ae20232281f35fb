"""Remote URLs and the credentials that go with them.

Why this exists: credentials must reach git without ever sitting in an argv (visible in ``ps``), in
a URL that is logged, or in an exception. So a URL is split here into the part that may be shown
and passed to git (:attr:`RemoteUrl.url`, no user-info password or token) and credentials that the
transport hands over through private files. Credentials are registered with
:mod:`sealed_gitops.redact` the moment they are read, so even a git error that echoes one is masked.

The scheme is checked here too: only ``file``, ``git``, ``ssh``, ``https`` (and ``http``) reach git;
anything else (``ext::``, scp-like ``host:path``, ``fd::``) is refused before a process starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from sealed_gitops import redact
from sealed_gitops.errors import ConfigError

__all__ = [
    "DEFAULT_SCHEMES",
    "Auth",
    "HttpAuth",
    "RemoteUrl",
    "SshAuth",
    "access_material",
    "auth_from_secret_data",
    "effective_http_auth",
    "parse_url",
    "safe_url",
]

#: Schemes a remote may use. ``http`` is accepted, but credentials are only sent over it on request.
DEFAULT_SCHEMES = frozenset({"file", "git", "ssh", "https", "http"})


@dataclass(frozen=True, repr=False)
class SshAuth:
    """A deploy key and the host keys to trust. Strict host key checking is always on."""

    known_hosts: bytes
    private_key: bytes | None = None

    def __post_init__(self) -> None:
        if self.private_key is not None and b"PRIVATE KEY" not in self.private_key:
            raise ConfigError("ssh identity is not a PEM/OpenSSH private key")

    def __repr__(self) -> str:  # never print key material
        return f"SshAuth(known_hosts=<{len(self.known_hosts)} bytes>, private_key=<redacted>)"


@dataclass(frozen=True, repr=False)
class HttpAuth:
    """Basic auth (``username``/``password``), a token, or a bearer token, plus an optional CA.

    A ``token`` is sent as the basic-auth password with ``username`` (``x-access-token`` when
    none is given), which GitHub, GitLab and Gitea accept for access tokens; ``bearer_token`` is
    sent as an ``Authorization: Bearer`` header instead (Azure DevOps, some proxies).
    ``allow_insecure_http`` must be set to send credentials over plain ``http://``.
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None
    bearer_token: str | None = None
    ca_bundle: bytes | None = None
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        for value in (self.password, self.token, self.bearer_token):
            if value:
                redact.register(value)
        if self.password and self.token:
            raise ConfigError("https auth sets both password and token; choose one")

    def basic(self) -> tuple[str, str] | None:
        """The (username, password) pair git should answer a 401 with, if any."""
        if self.token:
            return (self.username or "x-access-token", self.token)
        if self.password is not None:
            return (self.username or "", self.password)
        return None

    def has_credentials(self) -> bool:
        return self.basic() is not None or bool(self.bearer_token)

    def __repr__(self) -> str:
        return f"HttpAuth(username={self.username!r}, secrets=<redacted>)"


Auth = SshAuth | HttpAuth


@dataclass(frozen=True)
class RemoteUrl:
    """A remote split into what git is given and what may be shown, and credentials found in it."""

    url: str  # without any password; for https without any user-info at all
    scheme: str
    host: str | None
    port: int | None
    url_auth: HttpAuth | None = field(default=None, repr=False)


def _without_userinfo(parts: SplitResult, keep_user: bool) -> str:
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if keep_user and parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def parse_url(url: str, *, schemes: frozenset[str] = DEFAULT_SCHEMES) -> RemoteUrl:
    """Check the scheme and move any credentials out of the URL (``ConfigError`` if refused)."""
    if "://" not in url:
        raise ConfigError(
            f"unsupported remote {safe_url(url)!r}: use a file://, git://, ssh:// or https:// URL"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"malformed remote URL {safe_url(url)!r}") from exc
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in sorted(schemes))
        raise ConfigError(f"unsupported URL scheme {scheme!r} (supported: {allowed})")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError("file:// URLs must not name a host")
        return RemoteUrl(url=f"file://{parts.path}", scheme=scheme, host=None, port=None)
    if not parts.hostname:
        raise ConfigError(f"remote URL {safe_url(url)!r} has no host")
    url_auth = None
    if scheme in ("http", "https") and (parts.username or parts.password):
        user, secret = unquote(parts.username or ""), unquote(parts.password or "")
        # https://TOKEN@host is a common way to write a token; https://user:pass@host basic auth.
        url_auth = HttpAuth(username=user, password=secret) if secret else HttpAuth(token=user)
    if parts.password:
        redact.register(unquote(parts.password))
    clean = _without_userinfo(parts, keep_user=scheme == "ssh")
    return RemoteUrl(url=clean, scheme=scheme, host=parts.hostname, port=port, url_auth=url_auth)


def effective_http_auth(remote: RemoteUrl, auth: HttpAuth | None) -> HttpAuth | None:
    """The http auth a call really uses: credentials written in the URL count when the given
    auth carries none (keeping its CA and http policy). One rule for the transport, which sends
    them, and for the cache, which must know whose access a download proved."""
    if remote.url_auth is not None and (auth is None or not auth.has_credentials()):
        return replace(
            remote.url_auth,
            ca_bundle=auth.ca_bundle if auth else None,
            allow_insecure_http=auth.allow_insecure_http if auth else False,
        )
    return auth


def _field(tag: bytes, value: bytes | str | None) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else (value or b"")
    # length-prefixed, so no two different credential sets serialise to the same bytes
    return tag + len(data).to_bytes(4, "big") + data + (b"\x01" if value is not None else b"\x00")


def access_material(remote: RemoteUrl, auth: Auth | None) -> bytes:
    """The bytes that decide what the server lets this caller read: the credentials git will
    present (user and password or token, bearer token, ssh private key), empty when anonymous.

    Why: the cache may hand a commit only to a caller whose own credentials fetched it (issue 11,
    finding 3), so its entries are keyed by these bytes too. They are never stored: the cache
    uses a keyed digest of them. A CA bundle or known_hosts decides whom *we* trust, not what
    the server grants, so it is left out (changing it re-uses the same entry).
    """
    if remote.scheme in ("http", "https"):
        http = effective_http_auth(remote, auth if isinstance(auth, HttpAuth) else None)
        if http is None or not http.has_credentials():
            return b""
        basic = http.basic()
        return b"http" + b"".join(
            (
                _field(b"u", basic[0] if basic else None),
                _field(b"p", basic[1] if basic else None),
                _field(b"b", http.bearer_token),
            )
        )
    if remote.scheme == "ssh" and isinstance(auth, SshAuth) and auth.private_key:
        return b"ssh" + _field(b"k", auth.private_key.strip())
    return b""


def safe_url(url: str) -> str:
    """The URL with any user-info password or token removed: the only form that is logged."""
    try:
        parts = urlsplit(url)
        if parts.password or (parts.username and parts.scheme in ("http", "https")):
            return _without_userinfo(parts, keep_user=parts.scheme == "ssh")
    except ValueError:
        return "<unparseable URL>"
    return url


def _text(data: Mapping[str, bytes], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return value.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"git auth entry {key!r} is not UTF-8") from exc


def auth_from_secret_data(data: Mapping[str, bytes], *, url: str) -> Auth | None:
    """Build auth from a Secret's decoded data, with Flux's entry names.

    ssh: ``identity`` (private key) and ``known_hosts``; https: ``username`` + ``password``, or
    ``bearerToken``, and optionally ``caFile`` (or ``ca.crt``) for a private CA.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "ssh":
        known_hosts = data.get("known_hosts")
        if not known_hosts:
            raise ConfigError("ssh auth needs a known_hosts entry (host keys are always checked)")
        return SshAuth(known_hosts=known_hosts, private_key=data.get("identity"))
    if scheme in ("http", "https"):
        auth = HttpAuth(
            username=_text(data, "username"),
            password=_text(data, "password"),
            bearer_token=_text(data, "bearerToken"),
            ca_bundle=data.get("caFile") or data.get("ca.crt"),
        )
        return auth if auth.has_credentials() or auth.ca_bundle else None
    return None
