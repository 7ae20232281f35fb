"""The shortcut of redact/forms.py's quoting: printable ASCII that no quoting changes is
registered as itself only. It must give exactly the forms the full computation gives, or a form
a log line could carry would go unmasked."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_gitops.redact import forms, is_registered, register, scope
from sealed_gitops.redact.forms import MIN_LENGTH


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=string.printable, min_size=0, max_size=40),
        st.text(min_size=0, max_size=40),
        st.text(alphabet=string.ascii_letters + string.digits + "+/=-_.:", max_size=60),
    )
)
def test_the_shortcut_gives_the_same_forms_as_every_quoting(text: str) -> None:
    assert set(forms._escaped(text)) == set(forms._escaped_all(text))


@given(st.text(min_size=0, max_size=30) | st.binary(max_size=30))
@settings(max_examples=200, deadline=None)
def test_is_registered_looks_up_the_value_itself(value: str | bytes) -> None:
    with scope("fast-path-test"):
        register(value)
        text = value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")
        assert is_registered(value) is (len(text) >= MIN_LENGTH)
