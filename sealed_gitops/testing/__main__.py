"""``python -m sealed_gitops.testing serve``: run the Kubernetes API emulator as a process.

For the local sandbox and for tests that need the server outside their own process: it writes a
kubeconfig, prints the URL, and serves on 127.0.0.1 until SIGTERM or SIGINT.
``control-plane`` does the same with the real kube-apiserver, etcd and kube-controller-manager
(built from source once; see sealed_gitops.testing.control_plane).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from sealed_gitops.testing.kube.server import KubeEmulator


async def _serve(port: int, kubeconfig: Path, rbac: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with KubeEmulator(port=port, kubeconfig_path=kubeconfig, rbac=rbac) as api:
        sys.stdout.write(f"serving {api.url}; kubeconfig {api.kubeconfig_path}\n")
        sys.stdout.flush()
        await stop.wait()


def _build() -> int:
    """``make test`` runs this before pytest, so that no test waits for a build in its timeout."""
    from sealed_gitops.errors import ControlPlaneError
    from sealed_gitops.testing.control_plane import cached_binaries, ensure_binaries, find_go

    def say(line: str) -> None:
        sys.stderr.write(f"build: {line}\n")

    if cached_binaries() is None and find_go() is None:
        say("no Go toolchain (go on PATH or /usr/local/go/bin/go): the control-plane tier skips")
        return 0
    try:
        binaries = ensure_binaries(progress=say)
    except ControlPlaneError as exc:
        say(f"control plane: {exc}")
        return 1
    say(f"control plane ready in {binaries.directory}")
    # The peers the interoperability tier runs beside us (issue 14): Flux's controllers and
    # Sealed Secrets, from their Go modules, cached per version like the control plane.
    from sealed_gitops.testing.peers import build as peers
    from sealed_gitops.testing.peers import versions

    # Helm too (issue 17): the tests of deploy/chart lint, render and install it.
    for peer in (*versions.PEERS.values(), *versions.TOOLS.values()):
        try:
            built = peers.ensure_built(peer, progress=say)
        except ControlPlaneError as exc:
            say(f"{peer.name}: {exc}")
            return 1
        say(f"{peer.name} {peer.version} ready in {built.directory}")
    # promtool checks the alerting rules and the dashboard of deploy/monitoring/.
    from sealed_gitops.testing.promtool import PROMTOOL, ensure_promtool

    try:
        say(f"promtool {PROMTOOL.version} ready: {ensure_promtool(progress=say)}")
    except ControlPlaneError as exc:
        say(f"promtool: {exc}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sealed_gitops.testing",
        description="Kubernetes API emulator (test/sandbox tool)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until SIGTERM")
    serve.add_argument("--port", type=int, default=0, help="0 lets the OS pick (the default)")
    serve.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    serve.add_argument("--rbac", action="store_true", help="enforce RBAC for non-admin users")
    real = commands.add_parser(
        "control-plane",
        help="build (once) and run etcd, kube-apiserver, kube-controller-manager until SIGTERM",
    )
    real.add_argument("--kubeconfig", type=Path, required=True, help="admin kubeconfig to write")
    real.add_argument("--workdir", type=Path, help="certificates and logs (default: a temp dir)")
    commands.add_parser(
        "build",
        help="build what the test tiers run, if missing: the control plane, the peers (Flux, "
        "Sealed Secrets) and promtool, cached per version; without Go, say so and succeed "
        "(those tests then skip, saying why)",
    )
    args = parser.parse_args(argv)
    if args.command == "build":
        return _build()
    if args.command == "control-plane":
        # Imported here: the emulator's `serve` must not pay for (or depend on) the real one.
        from sealed_gitops.testing.control_plane.foreground import run_control_plane

        return run_control_plane(kubeconfig=args.kubeconfig, workdir=args.workdir)
    asyncio.run(_serve(args.port, args.kubeconfig, args.rbac))
    return 0


if __name__ == "__main__":
    sys.exit(main())
