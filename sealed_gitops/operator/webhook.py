"""The webhook receiver: a Git push wakes its Repository at once, instead of at the next interval.

Why HMAC and not a secret URL: GitHub, Gitea and GitLab-compatible servers sign the body with
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``; checking it means a leaked URL
alone cannot trigger fetches. The secret is the ``token`` entry of the Secret named by the
Repository's ``spec.webhook.secretRef``, in the Repository's namespace. A bad or missing signature
answers 401 and changes nothing; the answer never says whether the Repository exists.

Why an annotation as well as the local trigger: every replica serves the webhook (the Service
balances over all pods), but only the leader reconciles. A valid push therefore sets the
Repository's ``sealed-gitops.io/requested-at`` annotation, which wakes the leader's loop wherever
the push landed, and also fires this process's trigger, the fast path when it is the leader.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

from aiohttp import web

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import get_object, read_secret_data, request_reconcile

__all__ = ["SIGNATURE_HEADER", "sign", "webhook_app"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Largest body accepted; push payloads are a few KiB, a larger body is not a push.
MAX_BODY = 1024 * 1024


def sign(secret: bytes, body: bytes) -> str:
    """The header value a sender computes (also used by the tests and the demo)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _webhook_secret(ctx: OperatorContext, namespace: str, name: str) -> bytes | None:
    repo = get_object(ctx.client, "Repository", namespace, name)
    if repo is None:
        return None
    ref = ((repo.get("spec") or {}).get("webhook") or {}).get("secretRef") or {}
    if not ref.get("name"):
        return None
    data, _ = read_secret_data(ctx.client, namespace, ref["name"], purpose="webhook secret")
    return data.get("token")


def webhook_app(ctx: OperatorContext) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        name = request.match_info["name"]
        body = await request.read()
        given = request.headers.get(SIGNATURE_HEADER, "")
        try:
            secret = await asyncio.to_thread(_webhook_secret, ctx, namespace, name)
        except SealedGitopsError as exc:
            log.warning("webhook for Repository %s/%s: %s", namespace, name, exc)
            secret = None
        if not secret or not hmac.compare_digest(given, sign(secret, body)):
            return web.json_response({"error": "invalid signature"}, status=401)
        event = request.headers.get("X-GitHub-Event") or request.headers.get("X-Gitea-Event")
        if event == "ping":
            return web.json_response({"status": "pong"})
        ctx.triggers.fire("Repository", namespace, name, reason="webhook")
        try:
            await asyncio.to_thread(request_reconcile, ctx.client, "Repository", namespace, name)
        except SealedGitopsError as exc:
            # Only this replica's trigger fired: enough when it leads, lost when it stands by.
            # 503 tells the sender to deliver again (GitHub shows it as a failed delivery).
            log.warning("webhook for Repository %s/%s: cannot record it: %s", namespace, name, exc)
            return web.json_response({"error": "not recorded, deliver again"}, status=503)
        log.info("webhook: Repository %s/%s triggered", namespace, name)
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/hook/{namespace}/{name}", receive)
    return app
