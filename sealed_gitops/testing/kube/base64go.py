"""Where Go's base64 decoder gives up: the offset kube-apiserver names for a bad Secret value.

Why: a Secret whose ``data`` is not base64 fails on a real server with ``illegal base64 data at
input byte N`` (Go's ``base64.CorruptInputError``), and people debug from that offset. The
emulator decodes with Python, which reports no offset, so this walks the input the way Go's
``StdEncoding`` does (four-character quanta, CR and LF skipped, ``=`` padding required) and
returns the offset Go would; the value itself never enters a message.
"""

from __future__ import annotations

__all__ = ["corrupt_offset"]

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = frozenset(b"\r\n")
_PAD = ord("=")


def _skip_newlines(src: bytes, at: int) -> int:
    while at < len(src) and src[at] in _NEWLINES:
        at += 1
    return at


def _quantum(src: bytes, si: int) -> tuple[int, int | None, bool]:
    """Decode one quantum from ``si``: (next index, error offset or None, input finished)."""
    j = 0
    while j < 4:
        if si == len(src):
            return si, (si - j if j else None), True
        char = src[si]
        si += 1
        if char in _ALPHABET:
            j += 1
            continue
        if char in _NEWLINES:
            continue
        if char != _PAD or j < 2:
            return si, si - 1, True
        if j == 2:  # "==" expected: the first "=" is read
            si = _skip_newlines(src, si)
            if si == len(src):
                return si, len(src), True
            if src[si] != _PAD:
                return si, si - 1, True
            si += 1
        si = _skip_newlines(src, si)
        return si, (si if si < len(src) else None), True
    return si, None, False


def corrupt_offset(text: str) -> int | None:
    """The byte offset Go's StdEncoding reports for ``text``, or None when it decodes."""
    src = text.encode("utf-8", "surrogatepass")
    si = 0
    while True:
        si, error, finished = _quantum(src, si)
        if error is not None or finished:
            return error
