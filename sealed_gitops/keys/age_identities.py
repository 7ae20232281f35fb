"""Age identities as a keyring provider, from the texts discovery found.

Why a separate module: discovery collects identity *texts* from several places (variables, files,
a command, SSH key files, a Secret), while the age crypto itself lives in
:mod:`sealed_gitops.crypto.age`. This is the small adapter between the two: it parses each text
with the engine's parser and reports, by origin and line number (never by content), each identity
it had to leave out.

Why skipping is not an error: a keys file often holds keys of several kinds (a plugin's, a
passphrase-protected SSH key), and sops goes on with the keys it can use. One key we
cannot use must not stop the keys that work. The note is a log warning: on stderr in the CLI, a
log line in the operator. Keys read only because they sit in a default place (``~/.ssh/id_*``)
are noted at INFO: a passphrase-protected ``~/.ssh/id_ed25519`` is common and not a mistake.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

from sealed_gitops.crypto.age import (
    AgeIdentities,
    AgeRecipient,
    ParsedIdentities,
    parse_identity_text,
)
from sealed_gitops.errors import ConfigError

__all__ = ["AGE_KIND", "AgeTextSource", "age_recipient", "age_unwrapper"]

AGE_KIND = "age"

log = logging.getLogger(__name__)


class AgeTextSource(Protocol):
    @property
    def origin(self) -> str: ...

    @property
    def text(self) -> str: ...


def age_unwrapper(sources: Iterable[AgeTextSource]) -> AgeIdentities:
    """The keyring provider (kind ``age``) for every usable identity in ``sources``.

    A source may set ``implicit = True`` (read from a default place, not named by the user):
    what it skips is noted at INFO instead of WARNING.
    """
    keys: list[tuple[str, Any]] = []
    for source in sources:
        try:
            parsed = parse_identity_text(source.text)
        except ConfigError as exc:
            raise ConfigError(f"{source.origin}: {exc.reason}") from exc
        keys.extend(parsed.keys)
        level = logging.INFO if getattr(source, "implicit", False) else logging.WARNING
        for skipped in parsed.skipped:
            log.log(level, "age identity skipped: %s %s", source.origin, skipped.describe())
    return AgeIdentities(ParsedIdentities(keys=keys, skipped=[]))


def age_recipient(recipient: str) -> AgeRecipient:
    """An ``age1...`` or SSH (``ssh-ed25519``, ``ssh-rsa``) recipient as a MasterKey."""
    return AgeRecipient(recipient)
