"""A small client for the Kubernetes API, built on the official ``kubernetes`` package.

Why this module exists: the operator needs things the generated typed API does not give in one
place: every kind, including custom kinds created a moment ago, through one path; server-side
apply with our field manager; a timeout on every request; and impersonation of a Sync's service
account with several ``Impersonate-Group`` headers (the generated client folds headers into a
plain dict, which cannot repeat one). So we use the package for what it is good at (reading a
kubeconfig or the in-cluster config, TLS, bearer-token refresh, the connection pool) and send
each request ourselves through its REST layer, turning every failure into the project's errors
at this one boundary.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from sealed_gitops.cluster.apierrors import error_for_status, unavailable

try:
    import orjson
except ImportError:  # an install without it (an image from an older lock): the standard parser
    orjson = None  # type: ignore[assignment]
from sealed_gitops.errors import ApiUnavailable, ConfigError

__all__ = [
    "APPLY_PATCH",
    "DEFAULT_TIMEOUT",
    "Identity",
    "KubeClient",
    "connect",
    "decode_json",
]

#: Seconds to wait for a connection and for each read of an answer; no request waits forever.
DEFAULT_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 10.0
APPLY_PATCH = "application/apply-patch+yaml"
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Identity:
    """Who the client acts as through impersonation: a user name and extra groups."""

    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str, *, groups: Iterable[str] = ()) -> Identity:
        """``system:serviceaccount:NS:NAME``: what a Sync with ``serviceAccountName`` acts as.

        The API server adds the service-account groups itself when impersonating such a user
        name, so none are needed; ``groups`` are extra ones.
        """
        if not namespace or not name or ":" in namespace + name:
            raise ConfigError(f"not a service account: {namespace!r}/{name!r}")
        return cls(f"{_SA_PREFIX}{namespace}:{name}", tuple(groups))


@dataclass
class KubeClient:
    """One API server connection, optionally acting as another identity.

    Build it with :func:`connect`; :meth:`impersonating` gives a client for another identity that
    shares the same connection pool. :meth:`request` is the only method that touches the network.
    Once :attr:`halted` is set, every request is refused without being sent: a stopping operator
    sets it so that no write leaves a replica that no longer leads.
    """

    api: Any  # kubernetes.client.ApiClient
    timeout: float = DEFAULT_TIMEOUT
    identity: Identity | None = None
    #: requests sent, by HTTP method; tests and metrics read it (a no-op reconcile writes nothing)
    counts: dict[str, int] = field(default_factory=dict)
    #: shared with the impersonating copies, so one ``set()`` halts them all
    halted: threading.Event = field(default_factory=threading.Event)

    def impersonating(self, identity: Identity | None) -> KubeClient:
        return KubeClient(
            api=self.api,
            timeout=self.timeout,
            identity=identity,
            counts=self.counts,
            halted=self.halted,
        )

    @property
    def writes(self) -> int:
        return sum(n for m, n in self.counts.items() if m in ("POST", "PUT", "PATCH", "DELETE"))

    def close(self) -> None:
        self.api.close()

    def connection_details(self) -> dict[str, Any]:
        """Where and how this client connects, for another client (kopf) to do the same.

        Keys: ``server``, ``ca_path``, ``insecure``, ``token``, ``certificate_path``,
        ``private_key_path`` (None where unset). The token is a credential: never log this.
        """
        config = self.api.configuration
        # In a pod the service-account token is rotated; the in-cluster loader installs a hook
        # that rereads it. kopf calls this on every (re-)login, so it always gets a fresh one.
        refresh = getattr(config, "refresh_api_key_hook", None)
        if refresh is not None:
            refresh(config)
        keys = config.api_key or {}
        # The client stores it as "BearerToken" (newer) or "authorization" (older releases).
        auth = str(keys.get("BearerToken") or keys.get("authorization") or "")
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else None
        return {
            "server": str(config.host),
            "ca_path": config.ssl_ca_cert or None,
            "insecure": not bool(config.verify_ssl),
            "token": token,
            "certificate_path": config.cert_file or None,
            "private_key_path": config.key_file or None,
        }

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        content_type: str = "application/json",
        action: str,
        what: str,
        sensitive: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON answer.

        ``action`` and ``what`` name the request in errors (``apply``, ``Secret team-a/db``);
        ``sensitive`` says the body carries secret values, so the server's prose is not kept in
        an error. Failures raise a :class:`~sealed_gitops.errors.ClusterError` subclass; a
        halted client raises :class:`~sealed_gitops.errors.ApiUnavailable` and sends nothing.
        """
        if self.halted.is_set():
            raise ApiUnavailable(f"{action} {what}: not sent, the operator is stopping")
        method = method.upper()
        self.counts[method] = self.counts.get(method, 0) + 1
        try:
            _, url, headers, _, _ = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                auth_settings=["BearerToken"],
            )
            send = urllib3.HTTPHeaderDict(headers)
            if self.identity is not None:
                send["Impersonate-User"] = self.identity.user
                for group in self.identity.groups:
                    send.add("Impersonate-Group", group)
            answer = self.api.rest_client.request(
                method,
                url,
                headers=send,
                # a JSON patch is a list of operations; every other body is an object
                body=(
                    None
                    if body is None
                    else dict(body)
                    if isinstance(body, Mapping)
                    else [dict(op) for op in body]
                ),
                _request_timeout=(_CONNECT_TIMEOUT, timeout or self.timeout),
            )
            data = answer.read()
        except ApiException as exc:  # the REST layer's wrapper of TLS failures (status 0)
            raise unavailable(exc, action=action, what=what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unavailable(exc, action=action, what=what) from exc
        if answer.status >= 400:
            raise error_for_status(
                answer.status, data, action=action, what=what, sensitive=sensitive
            )
        if not data:
            return {}
        try:
            decoded = decode_json(data)
        except ValueError as exc:
            raise error_for_status(502, None, action=action, what=what) from exc
        return decoded if isinstance(decoded, dict) else {"items": decoded}


#: every digit as "0", so that one ``find`` sees a run of 19 digits anywhere in an answer
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def decode_json(data: bytes) -> Any:
    """An answer's JSON, decoded as ``json.loads`` decodes it, in about half its time.

    Why: a no-op reconcile decodes every object it applied (two labelled LISTs per Sync), and
    that was the largest single cost of it. orjson decodes it, except what orjson reads
    differently: an integer beyond 64 bits becomes a float there (an int in ``json``), so an
    answer with a run of 19 digits or more anywhere goes to ``json``; and what orjson refuses
    (``NaN``, lone surrogates, another encoding than UTF-8) goes to ``json`` too, which decodes
    it or raises its ValueError.
    """
    if orjson is not None and data.translate(_DIGITS_AS_ZERO).find(_LONG_NUMBER) < 0:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def connect(
    kubeconfig: str | Path | None = None,
    *,
    context: str | None = None,
    in_cluster: bool = False,
    identity: Identity | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> KubeClient:
    """A client from a kubeconfig file, or from the pod's service account with ``in_cluster``.

    With neither, the kubeconfig at ``$KUBECONFIG`` or ``~/.kube/config`` is read, as kubectl
    does. ``identity`` makes every request act as that identity (impersonation).
    """
    configuration = k8s_client.Configuration()
    try:
        if in_cluster:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    # A malformed file surfaces as whatever the loader tripped over; all of it is bad config.
    except (ConfigException, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        where = "in-cluster configuration" if in_cluster else f"kubeconfig {kubeconfig or ''}"
        # A YAML error quotes the offending line, which in a kubeconfig may be a token or a key:
        # name only where it is. The loader's own messages name fields, not their values.
        if isinstance(exc, yaml.YAMLError):
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            detail = f"not valid YAML{at}"
        else:
            detail = str(exc)
        raise ConfigError(f"cannot load the {where.strip()}: {detail}") from exc
    # The proxy as resolved now (the kubeconfig's proxy-url, else the environment's for this
    # host), pinned through the public setter: a kubeconfig with a token installs a refresh hook
    # that sets the host again before every request, and each time the client re-read every
    # environment variable for proxy settings (about a third of a small GET's CPU time).
    configuration.proxy = configuration.proxy
    # Retries of connection errors stay with urllib3 (a few, quickly); the caller backs off.
    configuration.retries = urllib3.Retry(
        total=2, connect=2, read=0, redirect=0, status=0, backoff_factor=0.1
    )
    api = k8s_client.ApiClient(configuration)
    return KubeClient(api=api, timeout=timeout, identity=identity)
