"""``python -m sealed_gitops.testing serve``: run the Kubernetes API emulator as a process.

For the local sandbox and for tests that need the server outside their own process: it writes a
kubeconfig, prints the URL, and serves on 127.0.0.1 until SIGTERM or SIGINT.
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
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.kubeconfig, args.rbac))
    return 0


if __name__ == "__main__":
    sys.exit(main())
