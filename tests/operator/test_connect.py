"""Which cluster the operator talks to: the kubeconfig it is given, else the pod's service account
when it runs in a pod, else ``$KUBECONFIG`` or ``~/.kube/config`` (as kubectl chooses).

Real loaders, no fakes: inside a pod without a kubeconfig the in-cluster loader must be the one
that runs (it fails here for want of a service-account token, which is how we see it ran).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.context import connect_for
from sealed_gitops.operator.settings import OperatorSettings

TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
POD_HOST, POD_PORT = "10.255.0.1", "6443"


def _server(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


@pytest.mark.parametrize(
    ("in_pod", "given", "env", "expected"),
    [
        # the case the lead found: a pod, no kubeconfig -> the pod's service account
        (True, False, False, "in-cluster"),
        # an explicit kubeconfig wins, in a pod or not
        (True, True, False, "kubeconfig"),
        (False, True, False, "kubeconfig"),
        # $KUBECONFIG wins over the in-cluster configuration, as for kubectl
        (True, False, True, "kubeconfig"),
        (False, False, True, "kubeconfig"),
        # neither: ~/.kube/config (missing here), never the in-cluster configuration
        (False, False, False, "home"),
    ],
)
def test_connect_for_picks_the_configuration(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kubeconfig: Path,
    in_pod: bool,
    given: bool,
    env: bool,
    expected: str,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    if in_pod:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", POD_HOST)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", POD_PORT)
    if env:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    settings = OperatorSettings(kubeconfig=str(kubeconfig) if given else None)

    if expected == "kubeconfig":
        client = connect_for(settings)
        try:
            assert client.connection_details()["server"] == _server(kubeconfig)
        finally:
            client.close()
    elif expected == "in-cluster" and TOKEN.exists():  # the tests themselves run in a pod
        client = connect_for(settings)
        try:
            assert client.connection_details()["server"] == f"https://{POD_HOST}:{POD_PORT}"
        finally:
            client.close()
    else:
        with pytest.raises(ConfigError) as caught:
            connect_for(settings)
        if expected == "in-cluster":
            assert "in-cluster configuration" in str(caught.value)
        else:
            assert "in-cluster" not in str(caught.value)
            assert "kubeconfig" in str(caught.value)
