"""The webhook receiver: a Git push wakes its Repository at once, instead of at the next interval.

Why a signature and not a secret URL: GitHub, Gitea/Forgejo/Gogs and Bitbucket sign the body
with an HMAC-SHA256 of the secret, GitLab sends the secret as a token (each host's scheme:
:mod:`webhook_auth`); checking it means a leaked URL alone cannot trigger fetches. The secret
is the ``token`` entry of the Secret named by the
Repository's ``spec.webhook.secretRef``, in the Repository's namespace. A bad or missing signature
answers 401 and changes nothing; the answer never says whether the Repository exists.

Why an annotation as well as the local trigger: every replica serves the webhook (the Service
balances over all pods), but only the leader reconciles. A valid push therefore sets the
Repository's ``sealed-gitops.io/requested-at`` annotation, which wakes the leader's loop wherever
the push landed, and also fires this process's trigger, the fast path when it is the leader.

What a caller who knows no secret can do (issue 11, finding 11 and the path part of finding 1):
nothing but be told 401, 404 or 413. The path's namespace and name are checked as Kubernetes
names (``plan/names``) before anything else, so ``x%2F..%2Fprivate`` is a 404 with no API
request; a signature that is not exactly ``sha256=<64 lowercase hex>`` is a 401 before any
lookup (non-ASCII text made ``compare_digest`` raise: a 500 for existing Repositories only, an
oracle). A signed delivery is acted on once: its signature and its delivery id are remembered
(bounded, see :mod:`webhook_guard`), and a per-Repository token bucket answers 429 beyond a burst.
Webhook secrets are cached a few seconds, so a flood of bad signatures costs at most a couple of
API reads per Repository and interval. The body is bounded by aiohttp (``client_max_size``: 413).

With shards (:mod:`sharding`), a push for a Repository of another shard may land here (one
Service in front of every operator): it is verified and recorded in the annotation as usual,
which wakes the owning shard's loop, and this process's trigger is not fired: a shard never
reconciles another shard's Repository. The answer is the same either way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import get_object, read_secret_data, request_reconcile
from sealed_gitops.operator.webhook_auth import EVENT_HEADERS, PING_EVENTS, credential_of, sign
from sealed_gitops.operator.webhook_guard import DeliveryLog, RateLimits, TtlCache
from sealed_gitops.plan import names

__all__ = ["SIGNATURE_HEADER", "sign", "webhook_app"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Largest body accepted; push payloads are a few KiB, a larger body is not a push.
MAX_BODY = 1024 * 1024
#: Headers that carry a sender's unique id of one delivery (GitHub, Gitea, Gogs).
DELIVERY_HEADERS = (
    "X-GitHub-Delivery",
    "X-Gitea-Delivery",
    "X-Forgejo-Delivery",
    "X-Gogs-Delivery",
    "X-Gitlab-Event-UUID",
    "X-Request-UUID",  # Bitbucket
)
#: Seconds a webhook secret (or its absence) is reused before the API is asked again.
SECRET_TTL = 5.0
#: Secret lookups (cache misses) this process makes at once, and per second after that.
LOOKUP_BURST = 100.0
LOOKUP_RATE = 20.0

_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _webhook_secret(ctx: OperatorContext, namespace: str, name: str) -> tuple[bytes | None, bool]:
    """The Repository's webhook secret (None: no Repository or no secret), and whether the
    Repository belongs to this operator's shard."""
    repo = get_object(ctx.client, "Repository", namespace, name)
    if repo is None:
        return None, False
    owned = ctx.settings.shard.owns(repo)
    ref = ((repo.get("spec") or {}).get("webhook") or {}).get("secretRef") or {}
    if not ref.get("name"):
        return None, owned
    data, _ = read_secret_data(ctx.client, namespace, ref["name"], purpose="webhook secret")
    return data.get("token"), owned


def _delivery_id(request: web.Request) -> str | None:
    for header in DELIVERY_HEADERS:
        value = request.headers.get(header, "")
        if value.isascii() and _DELIVERY_ID.fullmatch(value):
            return value
    return None  # absent or not an id we would remember: the signature key still dedupes


def _answer(error: str, status: int, **headers: str) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers or None)


def _counted(ctx: OperatorContext, handler: Handler) -> Handler:
    """``handler`` with every answer counted by result: refused signatures are what an alert
    watches (``state_metrics``)."""

    async def counted(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # 413 from request.read()
            ctx.metrics.state.webhook_answered(exc.status, None)
            raise
        body = response.body if isinstance(response, web.Response) else None
        ctx.metrics.state.webhook_answered(
            response.status, body if isinstance(body, bytes) else None
        )
        return response

    return counted


def webhook_app(
    ctx: OperatorContext,
    *,
    deliveries: DeliveryLog | None = None,
    limits: RateLimits | None = None,
) -> web.Application:
    """The receiver; ``deliveries`` and ``limits`` are this process's memory (bounded)."""
    seen = deliveries or DeliveryLog()
    buckets = limits or RateLimits()
    secrets: TtlCache[tuple[str, str], tuple[bytes | None, bool]] = TtlCache(
        size=1024, ttl=SECRET_TTL
    )
    # Lookups of names not cached, for the whole process: cycling through made-up (valid) names
    # must not turn unsigned requests into an unbounded stream of API reads.
    lookups = RateLimits(capacity=LOOKUP_BURST, rate=LOOKUP_RATE, size=1)

    async def secret_of(namespace: str, name: str) -> tuple[bytes | None, bool] | float:
        """:func:`_webhook_secret`, or the seconds to wait when this process has looked up too
        many names lately."""
        found, cached = secrets.get((namespace, name))
        if found and cached is not None:
            return cached
        wait = lookups.take(("*", "*"))
        if wait:
            return wait
        try:
            secret = await asyncio.to_thread(_webhook_secret, ctx, namespace, name)
        except SealedGitopsError as exc:
            log.warning("webhook for Repository %s/%s: %s", namespace, name, exc)
            return None, False  # not cached: an API hiccup should not hold for SECRET_TTL
        secrets.put((namespace, name), secret)
        return secret

    async def receive(request: web.Request) -> web.Response:
        try:
            namespace = names.namespace(request.match_info["namespace"], field="namespace")
            name = names.object_name(request.match_info["name"], field="name")
        except names.InvalidName:
            # No Repository can have such a name: nothing to look up, nothing to log verbatim.
            return _answer("not found", 404)
        credential = credential_of(request.headers)
        if credential is None:
            return _answer("invalid signature", 401)
        body = await request.read()  # at most MAX_BODY: aiohttp answers 413 beyond
        replay = ("signature", namespace, name, credential.replay_key(body))
        if seen.seen(replay):
            # This exact signature was verified and acted on: a replay, dropped without a lookup.
            return web.json_response({"status": "duplicate"})
        found = await secret_of(namespace, name)
        if isinstance(found, float):
            return _answer("too many requests", 429, **{"Retry-After": str(math.ceil(found))})
        secret, owned = found
        if not secret or not credential.verify(secret, body):
            return _answer("invalid signature", 401)
        event = next((request.headers[h] for h in EVENT_HEADERS if h in request.headers), "")
        if event in PING_EVENTS:
            return web.json_response({"status": "pong"})
        delivery = _delivery_id(request)
        keys = [replay] + ([("delivery", namespace, name, delivery)] if delivery else [])
        if seen.seen(*keys):
            return web.json_response({"status": "duplicate"})
        wait = buckets.take((namespace, name))
        if wait:
            log.info("webhook: Repository %s/%s: rate limited", namespace, name)
            return _answer("too many deliveries", 429, **{"Retry-After": str(math.ceil(wait))})
        seen.claim(*keys)
        if owned:
            ctx.triggers.fire("Repository", namespace, name, reason="webhook")
        try:
            await asyncio.to_thread(request_reconcile, ctx.client, "Repository", namespace, name)
        except SealedGitopsError as exc:
            # Only this replica's trigger fired (if its shard's): enough when it leads, lost
            # when it stands by or the Repository is another shard's.
            # 503 tells the sender to deliver again (GitHub shows it as a failed delivery), so
            # the delivery is not remembered as taken.
            seen.release(*keys)
            log.warning("webhook for Repository %s/%s: cannot record it: %s", namespace, name, exc)
            return _answer("not recorded, deliver again", 503)
        log.info("webhook: Repository %s/%s triggered", namespace, name)
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/hook/{namespace}/{name}", _counted(ctx, receive))
    return app
