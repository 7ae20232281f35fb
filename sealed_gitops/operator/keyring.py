"""Reconcile one KeyRing: generate, store, publish, rotate, retire, and serve re-encryption.

Why a loop per KeyRing (a kopf daemon, like the Repository and Sync loops): rotation is driven by
time (``spec.rotationInterval``) as much as by events, and the loop is also the one place where
private keys are used on behalf of the CLI. What each pass does, in order:

1. load the keys from the store (Secrets owned by the KeyRing, or Vault KV v2);
2. generate the first key when there is none;
3. rotate when ``sealed-gitops.io/rotate-requested-at`` holds a value not yet handled, or when
   the active key is older than ``spec.rotationInterval``;
4. retire the keys the ``sealed-gitops.io/retire`` annotation lists (never the active key),
   recording when;
5. save; delete the private parts of keys retired longer than ``spec.retiredKeyRetention`` ago
   (``keys/retention.py``), then publish the public parts in ``status.keys``, where a deleted
   key stays listed with state ``deleted``;
6. answer pending re-encryption requests (see below).

Re-encryption requests are ConfigMaps in the KeyRing's namespace labelled
``sealed-gitops.io/keyring: NAME`` and ``sealed-gitops.io/request: pending``, holding
``request.json``; the answer is written into the same ConfigMap as ``response.json`` and the label
becomes ``done``. What goes in: SOPS key stanzas, SealedSecret documents, and (for
``--rotate-data-key``) whole SOPS files, all ciphertext. What comes out: stanzas and ciphertext
for this KeyRing's own active key only, so a request can never make the operator wrap anything
for a key the requester chose. Plaintext and data keys stay in this process.

How the store is opened (with its Vault login) and how Syncs get a KeyRing's decryption keys is
in ``operator/keyring_access.py``: the credential and tenancy rules, apart from this loop.

Private keys never reach the status, a log line or an Event: only fingerprints, recipients and
certificates are written there, and every private part is registered for redaction when loaded.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from sealed_gitops.cluster import EventType, record_event
from sealed_gitops.crypto.sealing_keys import DEFAULT_KEY_BITS
from sealed_gitops.errors import ConfigError, SealedGitopsError
from sealed_gitops.keys.cluster_keys import (
    KEYRING_LABEL,
    RETIRE_ANNOTATION,
    ROTATE_ANNOTATION,
    ClusterKey,
    KeyState,
    generate_cluster_key,
    parse_time,
    rotate_keys,
)
from sealed_gitops.keys.key_store import KeyStore
from sealed_gitops.keys.reencrypt import REQUEST_LABEL, answer_item
from sealed_gitops.keys.retention import (
    DEFAULT_RETENTION,
    DELETED,
    due_for_deletion,
    status_keys,
)
from sealed_gitops.operator import log_context
from sealed_gitops.operator.conditions import READY, Reason, set_condition
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.keyring_access import forget, keyring_decryption_keys, store_for
from sealed_gitops.operator.resources import (
    GROUP,
    VERSION,
    get_object,
    patch_status,
)
from sealed_gitops.operator.settings import parse_duration
from sealed_gitops.operator.wakeup import sleep_until_woken
from sealed_gitops.plan.names import InvalidName, segment

__all__ = [
    "REQUEST_LABEL",
    "RETIRE_ANNOTATION",
    "ROTATE_ANNOTATION",
    "TEST_KEY_BITS_ANNOTATION",
    "keyring_decryption_keys",
    "reconcile_keyring",
    "register_keyring_handlers",
]

log = logging.getLogger(__name__)

#: FOR TESTS ONLY: RSA modulus size of generated sealing keys (default 4096, minimum 2048).
TEST_KEY_BITS_ANNOTATION = "sealed-gitops.io/test-key-bits"

#: Longest sleep of the loop in seconds: how late a missed request watch event is noticed.
MAX_SLEEP = 30.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# -- one reconcile -------------------------------------------------------------------------------


def _annotations(keyring: Mapping[str, Any]) -> dict[str, str]:
    return dict((keyring.get("metadata") or {}).get("annotations") or {})


def _key_bits(keyring: Mapping[str, Any]) -> int:
    text = _annotations(keyring).get(TEST_KEY_BITS_ANNOTATION)
    if not text:
        return DEFAULT_KEY_BITS
    try:
        return max(int(text), 2048)
    except ValueError as exc:
        raise ConfigError(f"annotation {TEST_KEY_BITS_ANNOTATION} is not a number") from exc


def _normalise(keys: list[ClusterKey]) -> list[ClusterKey]:
    """Exactly one active key: the newest of those marked active (a restore may add one)."""
    active = sorted((k for k in keys if k.state is KeyState.ACTIVE), key=lambda k: k.created)
    demote = {k.fingerprint for k in active[:-1]}
    return [k.with_state(KeyState.PREVIOUS) if k.fingerprint in demote else k for k in keys]


def _plan(
    keyring: Mapping[str, Any], keys: list[ClusterKey], *, now: dt.datetime
) -> tuple[list[ClusterKey], list[str], dict[str, Any], float]:
    """The keys after this pass, what happened (for Events), status fields, next wake-up."""
    spec = keyring.get("spec") or {}
    status = keyring.get("status") or {}
    annotations = _annotations(keyring)
    bits = _key_bits(keyring)
    happened: list[str] = []
    extra: dict[str, Any] = {}
    if not keys:
        keys = [generate_cluster_key(bits=bits, now=now)]
        happened.append(f"generated key {keys[0].fingerprint[:16]}")
    keys = _normalise(keys)
    if not any(k.state is KeyState.ACTIVE for k in keys):
        keys = rotate_keys(keys, bits=bits, now=now)
        happened.append(f"no active key: generated {keys[0].fingerprint[:16]}")
    requested = annotations.get(ROTATE_ANNOTATION)
    if requested and requested != status.get("lastRotateRequest"):
        keys = rotate_keys(keys, bits=bits, now=now)
        happened.append(f"rotated on request: new active key {keys[0].fingerprint[:16]}")
    extra["lastRotateRequest"] = requested or status.get("lastRotateRequest")
    interval = parse_duration(spec.get("rotationInterval"), default=0.0, what="rotationInterval")
    wake = MAX_SLEEP
    if interval > 0:
        active = next(k for k in keys if k.state is KeyState.ACTIVE)
        due = parse_time(active.created) + dt.timedelta(seconds=interval)
        if due <= now:
            keys = rotate_keys(keys, bits=bits, now=now)
            happened.append(f"scheduled rotation: new active key {keys[0].fingerprint[:16]}")
            due = now + dt.timedelta(seconds=interval)
        wake = min(wake, max((due - now).total_seconds(), 0.2))
    # a retired key restored from a backup may lack the time its grace period counts from
    keys = [
        k.with_state(KeyState.RETIRED, now=now)
        if k.state is KeyState.RETIRED and not k.retired
        else k
        for k in keys
    ]
    problems = []
    deleted = [
        str(e.get("fingerprint")) for e in status.get("keys") or () if e.get("state") == DELETED
    ]
    to_retire = [w.strip().lower() for w in annotations.get(RETIRE_ANNOTATION, "").split(",")]
    for wanted in filter(None, to_retire):
        matches = [k for k in keys if k.fingerprint.startswith(wanted)]
        if not matches and any(fp.startswith(wanted) for fp in deleted):
            continue  # retired, then deleted after its grace period: nothing left to do
        if len(matches) != 1:
            problems.append(f"retire {wanted}: {'no' if not matches else 'more than one'} key")
            continue
        key = matches[0]
        if key.state is KeyState.ACTIVE:
            problems.append(f"retire {wanted}: the active key cannot be retired; rotate first")
        elif key.state is not KeyState.RETIRED:
            keys = [k.with_state(KeyState.RETIRED, now=now) if k is key else k for k in keys]
            happened.append(f"retired key {key.fingerprint[:16]}")
    extra["problems"] = problems
    return keys, happened, extra, wake


def reconcile_keyring(ctx: OperatorContext, keyring: dict[str, Any]) -> float:
    """One pass over ``keyring``; returns the seconds until the next one is due."""
    meta = keyring.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    status = dict(keyring.get("status") or {})
    generation = meta.get("generation")
    now = _now()
    try:
        store = store_for(ctx, keyring)
        loaded = store.load()
        keys, happened, extra, wake = _plan(keyring, loaded, now=now)
        if happened or [(k.state, k.retired) for k in keys] != [
            (k.state, k.retired) for k in loaded
        ]:
            store.save(keys)
        keys, wake = _delete_expired(store, keyring, keys, happened, now=now, wake=wake)
    except SealedGitopsError as exc:
        conditions = set_condition(
            status.get("conditions"),
            type_=READY,
            status=False,
            reason=_reason(exc),
            message=str(exc),
            generation=generation,
        )
        patch_status(ctx.client, "KeyRing", namespace, name, {"conditions": conditions})
        log.warning("KeyRing %s/%s: %s", namespace, name, exc)
        return ctx.backoff(1, base=5.0)
    active = next(k for k in keys if k.state is KeyState.ACTIVE)
    _observe(ctx, keyring, keys, active)
    problems: list[str] = extra["problems"]
    message = "; ".join(problems) if problems else f"active key {active.fingerprint[:16]}"
    new_status: dict[str, Any] = {
        "observedGeneration": generation,
        "keys": status_keys(keys, status.get("keys") or (), now=now),
        "activeFingerprint": active.fingerprint,
        "lastRotateRequest": extra["lastRotateRequest"],
        "conditions": set_condition(
            status.get("conditions"),
            type_=READY,
            status=not problems,
            reason=Reason.SUCCEEDED if not problems else Reason.INVALID_SPEC,
            message=message,
            generation=generation,
        ),
    }
    if any(new_status.get(k) != status.get(k) for k in new_status):
        patch_status(ctx.client, "KeyRing", namespace, name, new_status)
    for line in happened:
        log.info("KeyRing %s/%s: %s", namespace, name, line)
        record_event(ctx.client, involved=keyring, reason="KeysChanged", message=line)
    for problem in problems:
        if problem not in (_ready_message(status) or ""):
            record_event(
                ctx.client,
                involved=keyring,
                reason="RetireRefused",
                message=problem,
                type=EventType.WARNING,
            )
    serve_requests(ctx, namespace=namespace, name=name, keys=keys)
    return wake


def _observe(
    ctx: OperatorContext, keyring: Mapping[str, Any], keys: Sequence[ClusterKey], active: ClusterKey
) -> None:
    """Tell the metrics what this pass saw: a key past its rotation time is alerted on from
    them (``state_metrics``): the age keeps growing while later passes fail."""
    meta = keyring.get("metadata") or {}
    spec = keyring.get("spec") or {}
    try:
        created = parse_time(active.created)
    except SealedGitopsError:
        return  # a restored key without its creation time: no age to tell
    ctx.metrics.state.keyring_status(
        str(meta.get("namespace")),
        str(meta.get("name")),
        active_created=created,
        interval=parse_duration(spec.get("rotationInterval"), default=0.0, what="rotationInterval"),
        states=collections.Counter(str(k.state) for k in keys),
    )


def _reason(exc: SealedGitopsError) -> str:
    if isinstance(exc, InvalidName):
        return Reason.INVALID_NAME
    return Reason.INVALID_SPEC if isinstance(exc, ConfigError) else "KeyStoreFailed"


def _delete_expired(
    store: KeyStore,
    keyring: Mapping[str, Any],
    keys: list[ClusterKey],
    happened: list[str],
    *,
    now: dt.datetime,
    wake: float,
) -> tuple[list[ClusterKey], float]:
    """Delete the private parts of keys retired longer than the retention; the keys left, and
    the next wake-up (when the next retired key falls due)."""
    spec = keyring.get("spec") or {}
    retention = parse_duration(
        spec.get("retiredKeyRetention"), default=DEFAULT_RETENTION, what="retiredKeyRetention"
    )
    due, waiting = due_for_deletion(keys, retention=retention, now=now)
    gone = set()
    for key in due:
        if store.delete_retired(key.fingerprint):
            gone.add(key.fingerprint)
            happened.append(
                f"deleted the private parts of key {key.fingerprint[:16]}, retired {key.retired}"
            )
        else:
            waiting = 1.0  # changed since it was loaded (restored?): look again soon
    if waiting is not None:
        wake = min(wake, max(waiting, 0.2))
    return [k for k in keys if k.fingerprint not in gone], wake


def _ready_message(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == READY:
            return str(cond.get("message"))
    return None


# -- re-encryption requests ----------------------------------------------------------------------


def serve_requests(
    ctx: OperatorContext, *, namespace: str, name: str, keys: Sequence[ClusterKey]
) -> int:
    """Answer every pending request ConfigMap of this KeyRing; returns how many."""
    path = f"/api/v1/namespaces/{segment(namespace)}/configmaps"
    answer = ctx.client.request(
        "GET",
        path,
        query={"labelSelector": f"{KEYRING_LABEL}={name},{REQUEST_LABEL}=pending"},
        action="list",
        what="re-encryption requests",
    )
    usable = [k for k in keys if k.state is not KeyState.RETIRED]
    served = 0
    for config_map in answer.get("items") or []:
        cm_name = str((config_map.get("metadata") or {}).get("name"))
        try:
            request = json.loads((config_map.get("data") or {}).get("request.json") or "{}")
            items = request.get("items") or []
            response: dict[str, Any] = {"items": [answer_item(item, usable) for item in items]}
        except (json.JSONDecodeError, AttributeError):
            response = {"error": "request.json is not a JSON object with items"}
        ctx.client.request(
            "PATCH",
            f"{path}/{segment(cm_name)}",
            body={
                "metadata": {"labels": {REQUEST_LABEL: "done"}},
                "data": {"response.json": json.dumps(response)},
            },
            content_type="application/merge-patch+json",
            action="answer",
            what=f"request {namespace}/{cm_name}",
        )
        served += 1
    return served


# -- kopf wiring ---------------------------------------------------------------------------------


async def _loop(ctx: OperatorContext, namespace: str, name: str, stopped: Any) -> None:
    log_context.about("KeyRing", namespace, name)  # every line of this loop names its KeyRing
    failures = 0
    while not stopped:
        body = await asyncio.to_thread(get_object, ctx.client, "KeyRing", namespace, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            forget(ctx, namespace, name)
            ctx.metrics.state.forget_keyring(namespace, name)
            return
        try:
            delay = await asyncio.to_thread(reconcile_keyring, ctx, body)
            failures = 0
        except SealedGitopsError as exc:
            failures += 1
            delay = ctx.backoff(failures, base=2.0)
            log.warning("KeyRing %s/%s: %s (retry in %.0fs)", namespace, name, exc, delay)
        # On the trigger and kopf's stop flag together, like the Sync and Repository loops
        # (:mod:`.wakeup`): no wake-up every half second while nothing happens.
        trigger = ctx.triggers.get("KeyRing", namespace, name)
        await sleep_until_woken(trigger, seconds=delay, stopped=stopped)
    # Stopped by kopf (relabelled to another shard, or the operator stops): the owner reports
    # the key's age now; a series kept here would go on ageing and fire the rotation alert.
    ctx.metrics.state.forget_keyring(namespace, name)


def register_keyring_handlers(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """Add the KeyRing daemon and its wake-ups to ``registry`` (called by ``build_registry``).

    Only the KeyRings of this operator's shard: two shards generating or rotating the same
    KeyRing's keys at once would race (a Sync of any shard reads a KeyRing's published keys)."""
    owned = ctx.settings.shard.kopf_owned

    @kopf.daemon(
        GROUP, VERSION, "keyrings", registry=registry, cancellation_timeout=5.0, when=owned
    )
    async def keyring_daemon(*, stopped: Any, namespace: str | None, name: str, **_: Any) -> None:
        await _loop(ctx, str(namespace), name, stopped)

    @kopf.on.update(GROUP, VERSION, "keyrings", registry=registry, when=owned)
    def keyring_changed(*, old: Any, new: Any, namespace: str | None, name: str, **_: Any) -> None:
        old, new = old or {}, new or {}
        before = (old.get("metadata") or {}).get("annotations") or {}
        after = (new.get("metadata") or {}).get("annotations") or {}
        if old.get("spec") != new.get("spec") or before != after:
            ctx.triggers.fire("KeyRing", str(namespace), name, reason="changed")

    @kopf.on.event("", "v1", "configmaps", registry=registry, labels={REQUEST_LABEL: "pending"})
    def request_created(*, body: Any, namespace: str | None, **_: Any) -> None:
        keyring = ((body.get("metadata") or {}).get("labels") or {}).get(KEYRING_LABEL)
        if keyring:
            ctx.triggers.fire("KeyRing", str(namespace), str(keyring), reason="request")
