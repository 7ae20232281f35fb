"""A GitLab delivery replayed with a wrong token is checked, not answered as a duplicate."""

from __future__ import annotations

from sealed_gitops.operator.webhook_auth import credential_of


def test_a_wrong_token_does_not_find_the_replay_key_of_a_taken_delivery() -> None:
    body = b'{"ref": "refs/heads/main", "after": "0123"}'
    good = credential_of({"X-Gitlab-Token": "the-secret"})
    wrong = credential_of({"X-Gitlab-Token": "a-guess"})
    assert good is not None and wrong is not None
    assert good.replay_key(body) == good.replay_key(body)
    assert wrong.replay_key(body) != good.replay_key(body)
    assert not wrong.verify(b"the-secret", body) and good.verify(b"the-secret\n", body)
