"""The Secrets the SOPS benchmarks encrypt, and how they encrypt them with the real ``sops``.

Why one module: decrypt.py, per_file.py and startup.py must measure the same kind of file (a
small Kubernetes Secret, only ``data``/``stringData`` encrypted, as users' repositories hold),
so the template and the ``sops encrypt`` command line live here once instead of in each script.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["secret_manifest", "sops_encrypt"]

_TEMPLATE = """\
apiVersion: v1
kind: Secret
metadata:
  name: app-{n}
  namespace: bench
type: Opaque
stringData:
  username: user-{n}
  password: pw-{n}-{rand}
  url: postgres://db-{n}.bench.svc:5432/app
"""


def secret_manifest(n: int) -> str:
    """The ``n``-th Secret, with a random password so no two files share ciphertext."""
    return _TEMPLATE.format(n=n, rand=os.urandom(6).hex())


def sops_encrypt(sops: str, plain: Path, *, recipient: str, env: dict[str, str]) -> bytes:
    """``sops encrypt`` of ``plain`` for one age ``recipient``, data/stringData only."""
    command = [sops, "encrypt", "--age", recipient]
    command += ["--encrypted-regex", "^(data|stringData)$", str(plain)]
    return subprocess.run(command, env=env, capture_output=True, check=True).stdout
