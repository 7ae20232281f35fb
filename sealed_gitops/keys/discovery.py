"""Find the identities a user or the operator has, the way sops finds them, and build a KeyRing.

Why one place: the CLI (environment plus flags) and the operator (a Flux-style decryption Secret)
must agree on what counts as a key, and a user coming from sops expects the same variables to work:

- age: ``SOPS_AGE_KEY`` (the identities themselves), ``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY_CMD``
  (a command printing identities), and the default keys file
  ``$XDG_CONFIG_HOME/sops/age/keys.txt`` (else ``~/.config/sops/age/keys.txt``); SSH private keys
  for ``ssh-ed25519``/``ssh-rsa`` recipients from ``SOPS_AGE_SSH_PRIVATE_KEY_FILE`` and, as sops
  3.11 does, ``~/.ssh/id_ed25519`` and ``~/.ssh/id_rsa``. Like sops, all that are present are
  used together (post-quantum ``AGE-SECRET-KEY-PQ-1`` ones too); an identity that cannot be
  used (a plugin's, a passphrase-protected SSH key) is skipped with a note, never fatal to
  the others (``keys/age_identities.py``).
- PGP: ``GNUPGHOME``, else ``~/.gnupg``.
- Vault: ``VAULT_TOKEN``, else ``~/.vault-token``, and ``VAULT_NAMESPACE``; the address comes
  from each file's stanza, as in sops, but unlike sops the token is only sent to an address the
  token's owner allowed, because the file may come from anyone who can push (issue 11, finding
  4): for the CLI ``VAULT_ADDR`` and ``SEALED_GITOPS_VAULT_ADDRESSES`` (``*``: anywhere), for the
  operator its ``--vault-address`` list, empty by default (see ``keys/vault.py``).

Explicit inputs (identity files, a GNUPGHOME, a Vault token) are added to, or for GnuPG and the
token take precedence over, what the environment provides. ``use_environment=False`` ignores the
environment entirely (the operator never reads its own environment for keys).

Nothing here prints, logs or raises with key material: errors name the variable or the file.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sealed_gitops.errors import ConfigError, KeyProviderError
from sealed_gitops.keys.age_identities import age_unwrapper
from sealed_gitops.keys.keyring import KeyRing
from sealed_gitops.keys.pgp import GnuPG, PgpUnwrapper
from sealed_gitops.keys.vault import DEFAULT_TIMEOUT, VaultUnwrapper
from sealed_gitops.keys.vault_addresses import (
    ADDRESSES_ENV,
    cli_vault_addresses,
    resolve_vault_token,
)

__all__ = [
    "FLUX_VAULT_TOKEN_KEY",
    "AgeSource",
    "age_identity_sources",
    "default_age_keys_file",
    "default_gnupghome",
    "discover_keyring",
    "keyring_from_secret_data",
]

#: The key of a Flux decryption Secret that holds a Vault token.
FLUX_VAULT_TOKEN_KEY = "sops.vault-token"  # noqa: S105 - a key name, not a token

#: sops' variable naming an SSH private key file for ``ssh-ed25519``/``ssh-rsa`` recipients.
SSH_KEY_FILE_ENV = "SOPS_AGE_SSH_PRIVATE_KEY_FILE"

#: Seconds ``SOPS_AGE_KEY_CMD`` may run: it usually reads a password manager or a keychain.
AGE_KEY_CMD_TIMEOUT = 30.0


@dataclass(frozen=True)
class AgeSource:
    """Age identities read from one place; ``origin`` names the place, never the keys."""

    origin: str
    text: str = field(repr=False)
    #: read from a default place the user did not name (``~/.ssh/id_*``): skips noted at INFO
    implicit: bool = False


def default_age_keys_file(
    *, env: Mapping[str, str] | None = None, home: Path | None = None
) -> Path:
    """Where sops looks for age identities when no variable says otherwise."""
    environ = os.environ if env is None else env
    config = environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config else (home if home is not None else Path.home()) / ".config"
    return base / "sops" / "age" / "keys.txt"


def default_gnupghome(*, env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get("GNUPGHOME"):
        return Path(environ["GNUPGHOME"])
    return (home if home is not None else Path.home()) / ".gnupg"


def _read_identity_file(path: Path, origin: str) -> AgeSource:
    try:
        return AgeSource(origin=origin, text=path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"age identity file {path} does not exist ({origin})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read age identity file {path} ({origin})") from exc


def _default_ssh_keys(environ: Mapping[str, str], home: Path | None) -> list[AgeSource]:
    """``~/.ssh/id_ed25519`` and ``~/.ssh/id_rsa`` when present, as sops 3.11 reads them."""
    base = home if home is not None else Path(environ.get("HOME") or Path.home())
    found = []
    for name in ("id_ed25519", "id_rsa"):
        path = base / ".ssh" / name
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            continue  # not named by the user: an unreadable default key is not an error
        if text is not None:
            found.append(AgeSource(origin=str(path), text=text, implicit=True))
    return found


def _run_key_cmd(command: str, *, env: Mapping[str, str]) -> AgeSource:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError("SOPS_AGE_KEY_CMD is not a valid command line") from exc
    if not argv:
        raise ConfigError("SOPS_AGE_KEY_CMD is empty")
    # Imported here: only SOPS_AGE_KEY_CMD runs a process, and subprocess costs ~2 ms of
    # every sops command's start-up (issue 16).
    import subprocess

    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            env=dict(env),
            timeout=AGE_KEY_CMD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KeyProviderError(f"SOPS_AGE_KEY_CMD ({argv[0]}) could not run") from exc
    if proc.returncode != 0:
        # Its stderr is not quoted: a key command may print what it read.
        raise KeyProviderError(f"SOPS_AGE_KEY_CMD ({argv[0]}) exited with {proc.returncode}")
    return AgeSource(origin="SOPS_AGE_KEY_CMD", text=proc.stdout.decode("utf-8", "replace"))


def age_identity_sources(
    *,
    identity_files: Sequence[Path] = (),
    use_environment: bool = True,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> list[AgeSource]:
    """Every place holding age identities, in the order sops reads them, explicit files last."""
    environ = dict(os.environ if env is None else env)
    sources: list[AgeSource] = []
    if use_environment:
        if environ.get(SSH_KEY_FILE_ENV):
            path = Path(environ[SSH_KEY_FILE_ENV]).expanduser()
            sources.append(_read_identity_file(path, f"{SSH_KEY_FILE_ENV}={path}"))
        sources.extend(_default_ssh_keys(environ, home))
        if environ.get("SOPS_AGE_KEY"):
            sources.append(AgeSource(origin="SOPS_AGE_KEY", text=environ["SOPS_AGE_KEY"]))
        if environ.get("SOPS_AGE_KEY_FILE"):
            path = Path(environ["SOPS_AGE_KEY_FILE"]).expanduser()
            sources.append(_read_identity_file(path, f"SOPS_AGE_KEY_FILE={path}"))
        if environ.get("SOPS_AGE_KEY_CMD"):
            sources.append(_run_key_cmd(environ["SOPS_AGE_KEY_CMD"], env=environ))
        default = default_age_keys_file(env=environ, home=home)
        if default.is_file():
            sources.append(_read_identity_file(default, str(default)))
    for path in identity_files:
        sources.append(_read_identity_file(Path(path), str(path)))
    return sources


def _add_age(ring: KeyRing, sources: Sequence[AgeSource]) -> None:
    """One age provider over every source, named by the sources' origins (never their keys)."""
    if sources:
        ring.add(
            age_unwrapper(sources),
            kinds={"age"},
            source="age identities from " + ", ".join(s.origin for s in sources),
        )


def discover_keyring(
    *,
    age_identity_files: Sequence[Path] = (),
    gnupghome: Path | None = None,
    vault_token: str | None = None,
    vault_addresses: Collection[str] | None = None,
    vault_timeout: float = DEFAULT_TIMEOUT,
    use_environment: bool = True,
    interactive_gpg: bool = False,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> KeyRing:
    """A KeyRing over every identity found; providers are tried cheapest first (age, PGP, Vault).

    ``interactive_gpg`` lets gpg ask for a passphrase through pinentry (the CLI on a terminal);
    otherwise a passphrase-protected key fails at once instead of hanging.

    ``vault_addresses`` None: with ``use_environment`` the token goes only to ``VAULT_ADDR`` and
    the addresses in ``SEALED_GITOPS_VAULT_ADDRESSES``; without it, anywhere (a caller that
    passes its own token and trusts its files).
    """
    environ = dict(os.environ if env is None else env)
    ring = KeyRing()
    sources = age_identity_sources(
        identity_files=age_identity_files, use_environment=use_environment, env=environ, home=home
    )
    _add_age(ring, sources)

    home_dir: Path | None = gnupghome
    if home_dir is None and use_environment:
        candidate = default_gnupghome(env=environ, home=home)
        home_dir = candidate if candidate.is_dir() else None
    if home_dir is not None:
        if not home_dir.is_dir():
            raise ConfigError(f"GNUPGHOME {home_dir} does not exist")
        gpg = GnuPG(home=str(home_dir), interactive=interactive_gpg, env=environ)
        ring.add(PgpUnwrapper(gnupg_home=gpg), source=f"GNUPGHOME={home_dir}")

    if use_environment:
        token = resolve_vault_token(vault_token, env=environ, home=home)
    else:
        token = vault_token
    if token:
        origin = "explicit token" if vault_token else "VAULT_TOKEN or ~/.vault-token"
        namespace = environ.get("VAULT_NAMESPACE") if use_environment else None
        allowed_by = "the addresses given"
        if vault_addresses is None and use_environment:
            vault_addresses = cli_vault_addresses(environ)
            allowed_by = (
                f"VAULT_ADDR and {ADDRESSES_ENV} (list an address there, comma-separated, "
                "to send your token to it)"
            )
        ring.add(
            VaultUnwrapper(
                token=token,
                allowed_addresses=vault_addresses,
                allowed_by=allowed_by,
                timeout=vault_timeout,
                namespace=namespace,
            ),
            source=f"Vault transit ({origin})",
        )
    return ring


def _temporary_gnupghome() -> Path:
    """A private directory for a GnuPG home, in memory when the system offers it.

    Keys from a Secret must be written somewhere gpg can read them; ``/dev/shm`` keeps them off
    the disk. The path stays short because gpg-agent's socket path is limited to 108 bytes.
    """
    shm = Path("/dev/shm")  # noqa: S108 - deliberate: memory-backed, private 0700 directory
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    import tempfile  # here: only a GnuPG home from a Secret needs it (start-up, issue 16)

    path = Path(tempfile.mkdtemp(prefix="sg-gpg-", dir=base))
    path.chmod(0o700)
    return path


def keyring_from_secret_data(
    data: Mapping[str, bytes],
    *,
    vault_addresses: Collection[str] = (),
    vault_timeout: float = DEFAULT_TIMEOUT,
    observer: Callable[[str, str], None] | None = None,
    secret_name: str | None = None,
) -> KeyRing:
    """A KeyRing from a Flux-style decryption Secret's data (values already base64-decoded).

    ``secret_name`` (``namespace/name``) is put in the notes about skipped identities, so an
    operator's log says which tenant's Secret holds a key we cannot use.

    ``*.agekey`` entries hold age identities (Flux's convention, ``age.agekey``; an SSH private
    key there works too, which Flux does not offer; an entry's unusable lines are skipped with a
    log line, as sops skips them), ``*.asc`` armoured PGP private keys (imported into
    a temporary GnuPG home that :meth:`KeyRing.close` deletes), ``sops.vault-token`` a Vault
    token. Other entries (cloud KMS credentials) are not used here. Call ``close()`` on the
    result (or use it as a context manager) when done.

    The token goes only to ``vault_addresses`` (the cluster admin's ``--vault-address`` list),
    never to an address merely named in a file: by default, nowhere. There is deliberately no
    "any address" here: the Secret is the tenant's, the files are whoever pushed.
    """
    ring = KeyRing(observer=observer)
    prefix = f"secret {secret_name} " if secret_name else "secret "
    age_sources = [
        AgeSource(origin=f"{prefix}entry {name}", text=value.decode("utf-8", "replace"))
        for name, value in sorted(data.items())
        if name.endswith(".agekey")
    ]
    _add_age(ring, age_sources)

    pgp_entries = sorted(name for name in data if name.endswith(".asc"))
    if pgp_entries:
        gpg = GnuPG(home=str(_temporary_gnupghome()), temporary=True)
        try:
            for name in pgp_entries:
                try:
                    gpg.import_keys(data[name])
                except KeyProviderError as exc:
                    raise KeyProviderError(f"secret entry {name}: {exc.reason}") from exc
        except BaseException:
            gpg.close()
            raise
        ring.add(
            PgpUnwrapper(gnupg_home=gpg, owns_home=True),
            source="PGP keys from secret entries " + ", ".join(pgp_entries),
        )

    token = data.get(FLUX_VAULT_TOKEN_KEY)
    if token:
        ring.add(
            VaultUnwrapper(
                token=token.decode("utf-8", "replace").strip(),
                allowed_addresses=vault_addresses,
                allowed_by=(
                    "the Vault addresses the operator was started with (--vault-address: "
                    f"{', '.join(vault_addresses) or 'none'})"
                ),
                timeout=vault_timeout,
            ),
            source=f"Vault transit (secret entry {FLUX_VAULT_TOKEN_KEY})",
        )
    return ring
