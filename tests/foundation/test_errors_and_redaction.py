"""The error tree and the redaction layer: the two things every other module leans on."""

from __future__ import annotations

import base64
import io
import logging
import re

import pytest

from sealed_gitops import errors, redact

CANARY = "canary-Zq8v-do-not-leak-41c7"


def test_all_lists_exactly_the_exception_classes() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert set(errors.__all__) == classes


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_derives_from_the_base_and_has_a_code(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.SealedGitopsError)
    assert cls.code and cls.code.isidentifier()


def test_message_names_file_location_and_key() -> None:
    exc = errors.MacMismatch(
        "MAC mismatch", file="deploy/db.yaml", key_id="age1abc", location="doc 2"
    )
    assert str(exc) == "deploy/db.yaml (doc 2): MAC mismatch [key age1abc]"


def test_with_file_keeps_an_existing_file() -> None:
    exc = errors.FormatError("bad", file="a.yaml")
    assert exc.with_file("b.yaml").file == "a.yaml"
    assert errors.FormatError("bad").with_file("b.yaml").file == "b.yaml"


def test_registered_value_never_reaches_an_error_message() -> None:
    redact.register(CANARY)
    exc = errors.IntegrityError(f"value {CANARY!r} could not be parsed", file="x.yaml")
    text = str(exc)
    assert CANARY not in text
    assert redact.MASK in text


def test_base64_form_and_lines_are_redacted() -> None:
    secret = "multi-line-secret\nsecond-line-secret"
    redact.register(secret)
    encoded = base64.b64encode(secret.encode()).decode()
    out = redact.redact(f"data: {encoded} and second-line-secret")
    assert encoded not in out
    assert "second-line-secret" not in out


def test_short_values_are_not_registered() -> None:
    redact.register("abc")
    assert redact.redact("abc") == "abc"


def test_longest_value_masked_whole() -> None:
    redact.register("password-one")
    redact.register("password-one-two-three")
    assert redact.redact("x password-one-two-three y") == f"x {redact.MASK} y"


def test_logging_filter_redacts_messages_args_and_exceptions() -> None:
    redact.register(CANARY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("sealed_gitops.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    redact.install_logging_filter(logger)
    logger.warning("value %s", CANARY)
    try:
        raise ValueError(f"bad {CANARY}")
    except ValueError:
        logger.exception("failed")
    output = stream.getvalue()
    assert CANARY not in output
    assert output.count(redact.MASK) == 2


def test_values_in_different_chunks_still_mask_the_longer_one_whole() -> None:
    saved = redact.snapshot()
    try:
        redact.register("chunked-password-one")
        redact.redact("warm up")  # compiles the first chunk
        redact.register("chunked-password-one-two-three")
        text = redact.redact("a chunked-password-one-two-three b chunked-password-one c")
        assert text == f"a {redact.MASK} b {redact.MASK} c"
    finally:
        redact.restore(saved)


def test_many_registrations_stay_cheap() -> None:
    import time

    saved = redact.snapshot()
    try:
        for n in range(3000):
            redact.register(f"bulk-value-{n:05d}-x")
        redact.redact("compile")
        start = time.perf_counter()
        for n in range(50):
            redact.register(f"late-value-{n:05d}-y")
            assert redact.redact(f"see late-value-{n:05d}-y here") == f"see {redact.MASK} here"
        # 50 new values each followed by a redaction: without chunking this recompiled the
        # whole 3,000-value pattern 50 times (seconds); now it is a few small compiles
        assert time.perf_counter() - start < 1.0
        assert redact.redact("bulk-value-02999-x") == redact.MASK
    finally:
        redact.restore(saved)


def test_the_tree_drawn_in_the_docstring_is_the_class_tree() -> None:
    drawn: dict[str, str | None] = {}
    parents: list[tuple[int, str]] = []  # (column of the name, name) down the current branch
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^ {4}([│├└─ ]*)([A-Z][A-Za-z]+)\s", line + " ")
        if match is None or not hasattr(errors, match.group(2)):
            continue
        column, name = len(match.group(1)), match.group(2)
        while parents and parents[-1][0] >= column:
            parents.pop()
        drawn[name] = parents[-1][1] if parents else None
        parents.append((column, name))
    actual = {
        name: (None if name == "SealedGitopsError" else getattr(errors, name).__bases__[0].__name__)
        for name in errors.__all__
    }
    assert drawn == actual


def test_repr_is_redacted_too() -> None:
    saved = redact.snapshot()
    try:
        redact.register("repr-canary-value-77")
        exc = errors.FormatError("bad value repr-canary-value-77", file="x.yaml")
        assert "repr-canary-value-77" not in repr(exc)
        assert repr(exc).startswith("FormatError(")
    finally:
        redact.restore(saved)
