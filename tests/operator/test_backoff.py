"""The retry schedule after failures: it starts at the larger of the object's retry interval and
``min_backoff``, doubles per consecutive failure, and never exceeds ``max_backoff``."""

from __future__ import annotations

import pytest

from sealed_gitops.cluster import KubeClient
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.settings import OperatorSettings


@pytest.mark.parametrize(
    ("failures", "base", "minimum", "maximum", "expected"),
    [
        (1, 1.0, 0.5, 300.0, 1.0),
        (2, 1.0, 0.5, 300.0, 2.0),
        (5, 1.0, 0.5, 300.0, 16.0),
        (20, 1.0, 0.5, 300.0, 300.0),  # capped
        (1, 0.1, 0.5, 2.0, 0.5),  # a tiny retryInterval is raised to min_backoff
        (3, 0.1, 0.5, 2.0, 2.0),
        (0, 30.0, 2.0, 300.0, 30.0),  # no failure yet: the base itself
    ],
)
def test_backoff_doubles_between_min_and_max(
    client: KubeClient, failures: int, base: float, minimum: float, maximum: float,
    expected: float,
) -> None:
    ctx = OperatorContext(
        OperatorSettings(min_backoff=minimum, max_backoff=maximum), client=client
    )
    assert ctx.backoff(failures, base=base) == expected


def test_backoff_never_decreases_until_the_cap(client: KubeClient) -> None:
    ctx = OperatorContext(OperatorSettings(min_backoff=2.0, max_backoff=60.0), client=client)
    delays = [ctx.backoff(n, base=5.0) for n in range(1, 12)]
    assert delays == sorted(delays) and delays[-1] == 60.0 and delays[0] == 5.0
