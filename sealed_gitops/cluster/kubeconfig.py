"""A client for a remote cluster from a kubeconfig a tenant supplied (a Sync's ``kubeConfig``).

Why a module of its own and not :func:`~sealed_gitops.cluster.client.connect`: that function
reads the operator's own kubeconfig, which the cluster admin wrote. This one reads a file from a
tenant's Secret, which is hostile input to a process that holds other tenants' keys:

- no programs and no files: ``exec`` and ``auth-provider`` plugins would run a command chosen by
  the tenant inside the operator, and ``tokenFile``, ``client-certificate``, ``client-key`` and
  ``certificate-authority`` paths would read the operator's own files (its ServiceAccount token,
  another tenant's mounted key) and send them to the tenant's server. Only inline data is taken
  (Flux refuses the same by default);
- nothing that weakens or reroutes TLS: ``insecure-skip-tls-verify`` and ``proxy-url`` are
  refused, and the server must be an ``https`` URL without user info, query or fragment;
- nothing written to disk: the CA goes to the TLS context as data, and a client certificate and
  key are loaded from an anonymous in-memory file that is closed at once (invariant 1: a private
  key in a temporary file would outlive the process);
- a token must be printable ASCII, so it cannot add a header line to a request;
- errors name fields and entries, never a value (a token, a key, a line of the file).

The client shares the operator's halt event, so a replica that loses its Lease stops writing to
remote clusters too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client as k8s_client

from sealed_gitops.cluster.client import DEFAULT_TIMEOUT, KubeClient
from sealed_gitops.errors import ConfigError

__all__ = [
    "MAX_KUBECONFIG_BYTES",
    "RemoteConfig",
    "check_allowed",
    "parse_kubeconfig",
    "remote_client",
    "server_origin",
]

#: A kubeconfig with a CA and a client certificate is a few KiB; a Secret holds at most 1 MiB.
MAX_KUBECONFIG_BYTES = 256 * 1024
_NAME = re.compile(r"^[\x21-\x7e]{1,253}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,16384}$")
_URL_TEXT = re.compile(r"^[\x21-\x7e]{1,2048}$")

_CLUSTER_KEYS = frozenset(
    {"server", "certificate-authority-data", "tls-server-name", "disable-compression"}
)
_USER_KEYS = frozenset({"token", "client-certificate-data", "client-key-data"})
#: why each refused field is refused, in the words the error uses
_REFUSED = {
    "exec": "runs a program (exec plugin)",
    "auth-provider": "runs an auth-provider plugin",
    "tokenFile": "reads a file of the operator",
    "client-certificate": "reads a file of the operator (use client-certificate-data)",
    "client-key": "reads a file of the operator (use client-key-data)",
    "certificate-authority": "reads a file of the operator (use certificate-authority-data)",
    "insecure-skip-tls-verify": "turns TLS verification off",
    "proxy-url": "sends the credentials through a proxy",
    "username": "is basic authentication, which Kubernetes no longer accepts",
    "password": "is basic authentication, which Kubernetes no longer accepts",
    "as": "impersonates (use the Sync's serviceAccountName)",
    "as-uid": "impersonates (use the Sync's serviceAccountName)",
    "as-groups": "impersonates (use the Sync's serviceAccountName)",
    "as-user-extra": "impersonates (use the Sync's serviceAccountName)",
}


class RemoteConfig:
    """The checked parts of a kubeconfig: server, TLS material and credentials (in memory)."""

    def __init__(
        self,
        *,
        server: str,
        ca_pem: bytes | None,
        tls_server_name: str | None,
        token: str | None,
        cert_pem: bytes | None,
        key_pem: bytes | None,
    ) -> None:
        self.server = server
        self.ca_pem = ca_pem
        self.tls_server_name = tls_server_name
        self.token = token
        self.cert_pem = cert_pem
        self.key_pem = key_pem

    def __repr__(self) -> str:  # never the credentials
        return f"RemoteConfig(server={self.server!r})"


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    return repr("".join(c if c.isprintable() else "?" for c in text[:64]))


def _named(entries: Any, name: str, *, what: str, source: str) -> Mapping[str, Any]:
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: {what}s is not a list")
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            body = entry.get(what)
            if not isinstance(body, Mapping):
                raise ConfigError(f"{source}: {what} {_shown(name)} has no {what} block")
            return body
    raise ConfigError(f"{source}: no {what} named {_shown(name)}")


def _check_keys(
    block: Mapping[str, Any], allowed: frozenset[str], *, what: str, source: str
) -> None:
    for key in block:
        if key in _REFUSED and not (key == "insecure-skip-tls-verify" and block[key] is False):
            raise ConfigError(f"{source}: {what}.{key} is refused: it {_REFUSED[key]}")
        if key not in allowed and key != "insecure-skip-tls-verify":
            raise ConfigError(f"{source}: {what}.{_shown(key)} is not supported")


def _b64(block: Mapping[str, Any], key: str, *, what: str, source: str) -> bytes | None:
    value = block.get(key)
    if value in (None, ""):
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: {what}.{key} is not base64") from None


def _server(value: Any, *, source: str) -> str:
    if not isinstance(value, str) or not _URL_TEXT.match(value):
        raise ConfigError(f"{source}: cluster.server must be an https URL")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{source}: cluster.server is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{source}: cluster.server must be an https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{source}: cluster.server may not hold user information")
    if parts.query or parts.fragment or "\\" in value:
        raise ConfigError(f"{source}: cluster.server may not hold a query or fragment")
    if port == 0:
        raise ConfigError(f"{source}: cluster.server has port 0")
    return value.rstrip("/")


def server_origin(url: str) -> str:
    """``https://host:port`` of an API server URL, lower-cased, the port always written: what
    an allowed address and a kubeconfig's server are compared by (``https://h`` is ``h:443``)."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"not an API server address (want https://host[:port]): {url[:200]!r}")
    try:
        port = parts.port or 443
    except ValueError:
        raise ConfigError(f"not an API server address: {url[:200]!r}") from None
    host = parts.hostname.lower()
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def check_allowed(server: str, allowed: Sequence[str], *, source: str) -> None:
    """Refuse ``server`` unless the cluster admin listed its origin (or ``*``).

    Why: the kubeconfig is the tenant's, so the operator would send requests wherever it points,
    from inside the cluster's network (an internal service, a cloud metadata endpoint behind
    https). The operator's ``--remote-cluster-address`` list decides, as ``--vault-address`` does
    for Vault.
    """
    if "*" in allowed:
        return
    origin = server_origin(server)
    if origin not in {server_origin(a) for a in allowed}:
        raise ConfigError(
            f"{source}: cluster.server {origin} is not an allowed remote cluster "
            "(the operator's --remote-cluster-address lists them; none by default)"
        )


def parse_kubeconfig(data: bytes, *, source: str) -> RemoteConfig:
    """The checked server, TLS material and credentials of ``data``'s current context.

    ``source`` names where the file came from (``Secret team-a/prod-kubeconfig key value``).
    """
    if len(data) > MAX_KUBECONFIG_BYTES:
        raise ConfigError(f"{source}: a kubeconfig of more than {MAX_KUBECONFIG_BYTES} bytes")
    try:
        config = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        # The parser's message quotes the line, which may be a token: never shown.
        raise ConfigError(f"{source}: not a valid kubeconfig (YAML)") from None
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: not a kubeconfig")
    current = config.get("current-context")
    contexts = config.get("contexts")
    if not current and isinstance(contexts, list) and len(contexts) == 1:
        current = (contexts[0] or {}).get("name") if isinstance(contexts[0], Mapping) else None
    if not isinstance(current, str) or not _NAME.match(current):
        raise ConfigError(f"{source}: current-context is missing or not a valid name")
    context = _named(contexts, current, what="context", source=source)
    cluster_name, user_name = context.get("cluster"), context.get("user")
    for label, name in (("cluster", cluster_name), ("user", user_name)):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{source}: context {_shown(current)} has no valid {label} name")
    assert isinstance(cluster_name, str) and isinstance(user_name, str)  # noqa: S101 - checked
    cluster = _named(config.get("clusters"), cluster_name, what="cluster", source=source)
    user = _named(config.get("users"), user_name, what="user", source=source)
    _check_keys(cluster, _CLUSTER_KEYS, what="cluster", source=source)
    _check_keys(user, _USER_KEYS, what="user", source=source)
    token = user.get("token")
    if token is not None and (not isinstance(token, str) or not _TOKEN.match(token)):
        raise ConfigError(f"{source}: user.token must be printable ASCII")
    cert = _b64(user, "client-certificate-data", what="user", source=source)
    key = _b64(user, "client-key-data", what="user", source=source)
    if (cert is None) != (key is None):
        raise ConfigError(
            f"{source}: user needs both client-certificate-data and client-key-data, or neither"
        )
    server_name = cluster.get("tls-server-name")
    if server_name is not None and (
        not isinstance(server_name, str) or not _NAME.match(server_name)
    ):
        raise ConfigError(f"{source}: cluster.tls-server-name is not a valid host name")
    return RemoteConfig(
        server=_server(cluster.get("server"), source=source),
        ca_pem=_b64(cluster, "certificate-authority-data", what="cluster", source=source),
        tls_server_name=server_name,
        token=token or None,
        cert_pem=cert,
        key_pem=key,
    )


@contextlib.contextmanager
def _memory_file(data: bytes, *, name: str) -> Iterator[str]:
    """A path to ``data`` that exists only in memory (``memfd``), for APIs that take a path."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _tls_context(config: RemoteConfig, *, source: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            cadata=config.ca_pem.decode("ascii") if config.ca_pem else None
        )
        if config.cert_pem is not None and config.key_pem is not None:
            with (
                _memory_file(config.cert_pem, name="client-cert") as cert,
                _memory_file(config.key_pem, name="client-key") as key,
            ):
                context.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
        # The ssl module names the PEM problem, never its content.
        raise ConfigError(
            f"{source}: the TLS material is not usable ({type(exc).__name__})"
        ) from None
    return context


def remote_client(
    config: RemoteConfig,
    *,
    source: str,
    timeout: float = DEFAULT_TIMEOUT,
    halted: threading.Event | None = None,
) -> KubeClient:
    """A :class:`KubeClient` for ``config``'s server with its credentials and nothing else."""
    configuration = k8s_client.Configuration()
    configuration.host = config.server
    if config.token:
        configuration.api_key = {"BearerToken": config.token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api = k8s_client.ApiClient(configuration)
    pool: dict[str, Any] = {
        "ssl_context": _tls_context(config, source=source),
        "retries": urllib3.Retry(
            total=2, connect=2, read=0, redirect=0, status=0, backoff_factor=0.1
        ),
    }
    if config.tls_server_name:
        pool["server_hostname"] = config.tls_server_name
    # The REST layer's own pool reads files for TLS; this one holds the material in memory.
    api.rest_client.pool_manager = urllib3.PoolManager(**pool)
    client = KubeClient(api=api, timeout=timeout)
    if halted is not None:
        client.halted = halted
    return client
