"""The pieces every step of ``sealed-gitops demo`` uses: its people, its files, the Story.

Why apart from :mod:`sealed_gitops.cli.demo`: that module is the story's steps, in order; this one
is what they share (how a step prints and checks, how it runs git and the CLI as a person would,
the manifest it encrypts), and the names the web view's browser test reuses (``NS``,
``SECRET_FILE``, ``VALUE_PREFIX``). Values are registered with the redaction layer as they are
read and compared only by keyed hash (:meth:`Story.digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.console import Console
from rich.markup import escape

from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.redact import register

__all__ = [
    "ALICE",
    "BOB",
    "CONFIG_FILE",
    "CRD_DIR",
    "MALLORY",
    "NS",
    "PASSWORD_KEY",
    "SECRET_FILE",
    "VALUE_PREFIX",
    "DemoFailed",
    "Story",
    "commit",
    "git",
    "manifest",
    "ready_condition",
    "run_cli",
]

T = TypeVar("T")

NS = "team-a"
SECRET_FILE = "deploy/db.sops.yaml"  # noqa: S105 - a file name
CONFIG_FILE = "deploy/settings.yaml"
PASSWORD_KEY = '["stringData"]["password"]'  # noqa: S105 - a path in the document
#: Every plaintext value starts so; tests search the output for it (the canary).
VALUE_PREFIX = "demo-db-password-"
ALICE = ("Alice", "alice@example.invalid")
BOB = ("Bob", "bob@example.invalid")
MALLORY = ("Mallory", "mallory@example.invalid")
CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


class DemoFailed(Exception):
    """A step's expectation did not hold (the demo exits 1)."""


class Story:
    """Prints the steps and checks; owns the pieces every step uses."""

    def __init__(self, console: Console, *, timeout: float) -> None:
        self.console = console
        self.timeout = timeout
        self.started = time.monotonic()
        self.step_no = 0
        self.hash_key = secrets.token_bytes(32)
        self.client: KubeClient | None = None

    @property
    def api(self) -> KubeClient:
        if self.client is None:
            raise DemoFailed("no API client yet")
        return self.client

    def step(self, title: str) -> None:
        self.step_no += 1
        self.console.print(f"\n[bold cyan]{self.step_no:>2}.[/] [bold]{escape(title)}[/]")

    def ok(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.print(f"    [green]✔[/] {escape(text)} [dim]({elapsed:.1f}s)[/]")

    def say(self, text: str) -> None:
        self.console.print(f"    {escape(text)}", highlight=False)

    def digest(self, value: bytes) -> bytes:
        return hmac.new(self.hash_key, value, hashlib.sha256).digest()

    def wait(self, check: Callable[[], T | None], *, what: str) -> T:
        deadline = time.monotonic() + self.timeout
        last: T | None = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.1)
        raise DemoFailed(f"timed out after {self.timeout:.0f}s waiting for {what}")

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.api.request("GET", path, action="read", what=path)
        except ApiNotFound:
            return None

    def post(self, path: str, obj: dict[str, Any]) -> None:
        self.api.request("POST", path, body=obj, action="create", what=obj["kind"])

    def secret_data(self, name: str) -> dict[str, bytes] | None:
        secret = self.get(f"/api/v1/namespaces/{NS}/secrets/{name}")
        if secret is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        for value in data.values():
            register(value)
        return data

    def sync(self) -> dict[str, Any]:
        return self.get(f"/apis/sealed-gitops.io/v1alpha1/namespaces/{NS}/syncs/app") or {}


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return dict(cond)
    return {}


def git(cwd: Path, *args: str, author: tuple[str, str] | None = None) -> str:
    who = author or ALICE
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": who[0],
        "GIT_AUTHOR_EMAIL": who[1],
        "GIT_COMMITTER_NAME": who[0],
        "GIT_COMMITTER_EMAIL": who[1],
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DemoFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def run_cli(cwd: Path, *args: str, stdin: bytes, env: dict[str, str] | None = None) -> None:
    """Run ``sealed-gitops ARGS`` as a person would: a new process, data through stdin."""
    done = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if done.returncode != 0:
        raise DemoFailed(f"sealed-gitops {args[0]}: {done.stderr.decode(errors='replace')}")


def commit(cwd: Path, message: str, *, author: tuple[str, str]) -> str:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message, author=author)
    git(cwd, "push", "-q", "origin", "main")
    return git(cwd, "rev-parse", "HEAD")


def manifest(password: str) -> bytes:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": NS},
            "type": "Opaque",
            "stringData": {"username": "app", "password": password},
        },
        sort_keys=False,
    ).encode()
