"""What ``scale.py`` measures against: the Git repositories, the cluster objects, the operator.

Why a module of its own: ``scale.py`` reads as the list of measurements; everything it needs to
exist first (10 repositories of encrypted Secrets and ConfigMaps, the Repositories, Syncs and
decryption Secrets, the operator as its own process with its metrics endpoint) is made here.

Layout at ``objects`` = N, ``syncs`` = S, ``repositories`` = R: namespace ``scale-r`` per
repository holds its Repository, the decryption Secret ``sops-keys`` and S/R Syncs; Sync ``k``
applies the directory ``sync-k/`` of its repository: N/2S SOPS Secrets (age, encrypted in process
with the project's own SOPS code, byte-compatible with ``sops``) and N/2S ConfigMaps, all landing
in the repository's namespace.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage

from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sops import encrypt_bytes
from sealed_gitops.testing.control_plane.process import free_port
from sealed_gitops.testing.gitserver import WorkRepo

GROUP = "/apis/sealed-gitops.io/v1alpha1"
#: the password is random per file (os.urandom), never a constant
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {name}
type: Opaque
stringData:
  username: user-{n}
  password: {value}
"""  # noqa: S105
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  level: info
  replicas: "{n}"
"""


@dataclass
class Layout:
    """Sizes and names of one run."""

    objects: int
    syncs: int
    repositories: int
    interval: int  # seconds: every Sync's spec.interval

    @property
    def secrets(self) -> int:
        return self.per_sync * self.syncs

    @property
    def configmaps(self) -> int:
        return (self.objects // self.syncs - self.per_sync) * self.syncs

    @property
    def per_sync(self) -> int:
        """Secrets per Sync (as many ConfigMaps, one more when the share is odd)."""
        return self.objects // self.syncs // 2

    def namespace(self, repo: int) -> str:
        return f"scale-{repo}"

    def sync_names(self) -> Iterator[tuple[str, str, int]]:
        """(namespace, Sync name, repository index) of every Sync."""
        for k in range(self.syncs):
            repo = k % self.repositories
            yield self.namespace(repo), f"sync-{k}", repo


@dataclass
class Repos:
    """The developer clones and bare remotes, one per repository."""

    work: list[WorkRepo] = field(default_factory=list)
    remotes: list[Path] = field(default_factory=list)
    #: (repository index, path in it) of the Secret the one-change figure edits
    target: tuple[int, str] = (0, "")


def make_repositories(root: Path, layout: Layout, *, recipient: str) -> Repos:
    """Write, encrypt, commit and push every repository."""
    groups = [[AgeRecipient(recipient)]]
    repos = Repos()
    for r in range(layout.repositories):
        remote = root / f"remote-{r}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        repos.remotes.append(remote)
        repos.work.append(WorkRepo(root / f"work-{r}", remote=remote))
    for _, sync, r in layout.sync_names():
        folder = repos.work[r].path / sync
        folder.mkdir(parents=True)
        for n in range(layout.per_sync):
            name = f"{sync}-secret-{n}"
            plain = SECRET.format(name=name, n=n, value=os.urandom(9).hex()).encode()
            rel = f"{sync}/{name}.yaml"
            (folder / f"{name}.yaml").write_bytes(encrypt_bytes(plain, key_groups=groups, file=rel))
            if not repos.target[1]:
                repos.target = (r, rel)
        for n in range(layout.objects // layout.syncs - layout.per_sync):
            name = f"{sync}-settings-{n}"
            (folder / f"{name}.yaml").write_text(CONFIGMAP.format(name=name, n=n))
    for work in repos.work:
        work.commit("initial")
        work.push()
    return repos


def change_one_secret(repos: Repos, *, value: str, recipient: str) -> str:
    """Commit and push a new value for the target Secret; returns its name."""
    r, rel = repos.target
    name = Path(rel).stem
    plain = SECRET.format(name=name, n=0, value=value).encode()
    data = encrypt_bytes(plain, key_groups=[[AgeRecipient(recipient)]], file=rel)
    (repos.work[r].path / rel).write_bytes(data)
    repos.work[r].commit(f"change {name}")
    repos.work[r].push()
    return name


def create(client: Any, path: str, body: dict[str, Any]) -> None:
    client.request("POST", path, body=body, action="create", what=body["kind"])


def create_cluster_objects(client: Any, layout: Layout, repos: Repos, *, identity: str) -> None:
    """Namespaces, decryption Secrets, Repositories (interval 1h: changes come by request) and
    Syncs (interval ``layout.interval``: the no-op interval measured)."""
    for r in range(layout.repositories):
        ns = layout.namespace(r)
        create(client, "/api/v1/namespaces",
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})  # fmt: skip
        create(
            client,
            f"/api/v1/namespaces/{ns}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "sops-keys", "namespace": ns},
                "data": {"id.agekey": base64.b64encode(identity.encode()).decode()},
            },
        )
        create(
            client,
            f"{GROUP}/namespaces/{ns}/repositories",
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": "app", "namespace": ns},
                "spec": {"url": f"file://{repos.remotes[r]}", "interval": "1h"},
            },
        )
    for ns, name, _ in layout.sync_names():
        create(
            client,
            f"{GROUP}/namespaces/{ns}/syncs",
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "repositoryRef": {"name": "app"},
                    "path": f"./{name}",
                    "interval": f"{layout.interval}s",
                    "prune": True,
                    "decryption": {"secretRef": {"name": "sops-keys"}},
                },
            },
        )


def new_identity() -> tuple[str, str]:
    """(identity, recipient) of a fresh age X25519 key."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


@dataclass
class Operator:
    """``python -m sealed_gitops operator`` as a child process, and its metrics endpoint."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics`` as ``name{labels}`` -> value."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def peak_rss_mb(self) -> float:
        """VmHWM, the resident set's high-water mark of the operator process, in MB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) / 1024 if found else float("nan")


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    result = 0.0
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            result += value
    return result


@contextlib.contextmanager
def operator_process(kubeconfig: Path, layout: Layout, root: Path) -> Iterator[Operator]:
    """The operator watching the run's namespaces, stopped (by its PID) when the block ends."""
    port = free_port()
    log = root / "operator.log"
    argv = [sys.executable, "-m", "sealed_gitops", "operator", "--kubeconfig", str(kubeconfig),
            *(a for r in range(layout.repositories) for a in ("-n", layout.namespace(r))),
            "--metrics-port", str(port), "--webhook-port", "off", "--no-leader-election",
            "--cache-dir", str(root / "operator-cache"), "--allow-file-urls",
            "--log-level", "warning"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SOPS_"))}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    operator = Operator(process=process, port=port, log=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                sys.exit(f"the operator exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                operator.metrics()
                break
            if time.monotonic() > deadline:
                sys.exit("the operator's /metrics never answered")
            time.sleep(0.2)
        yield operator
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
