"""Age identities as a keyring provider, from the texts discovery found.

Why a separate module: discovery collects identity *texts* from several places (variables, files,
a command, a Secret), while the age crypto itself lives in :mod:`sealed_gitops.crypto.age`. This
is the small adapter between the two: it parses each text with the engine's parser and says which
place a malformed line came from (by origin and line number, never by content).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sealed_gitops.crypto.age import AgeIdentities, AgeRecipient, parse_identities
from sealed_gitops.errors import ConfigError

__all__ = ["AGE_KIND", "AgeTextSource", "age_recipient", "age_unwrapper"]

AGE_KIND = "age"


class AgeTextSource(Protocol):
    @property
    def origin(self) -> str: ...

    @property
    def text(self) -> str: ...


def age_unwrapper(sources: Iterable[AgeTextSource]) -> AgeIdentities:
    """The keyring provider (kind ``age``) for every identity in ``sources``."""
    identities: list[Any] = []
    for source in sources:
        try:
            identities.extend(parse_identities(source.text))
        except ConfigError as exc:
            raise ConfigError(f"{source.origin}: {exc.reason}") from exc
    return AgeIdentities(identities)


def age_recipient(recipient: str) -> AgeRecipient:
    """An ``age1...`` recipient as a MasterKey."""
    return AgeRecipient(recipient)
