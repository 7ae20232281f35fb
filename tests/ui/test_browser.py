"""The web view in a real browser (Debian's chromium driven by Playwright) over the demo's cluster.

What a person does: opens the overview, sees the failing Sync and its reason, follows the Sync to
its inventory, clicks the Secret and reads its timeline (Alice added the password, Bob changed
it, Mallory's change is there but not live, each live value matches Git), checks KeyRings, and
sees a live edit of the password reported as "differs". In each test every response the browser
receives (pages, the stylesheet, the script) is searched for the demo's secret values (the
canary, also the edited one) and for the cluster's private key, and the console must show no
error (a CSP refusal would). With SEALED_GITOPS_UI_SCREENSHOTS=1 the
main views are saved to docs/img/ui-*.png for docs/ui.md.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.cli.demo import NS, SECRET_FILE, VALUE_PREFIX
from tests.ui.demo_cluster import DemoCluster, demo_cluster

CHROMIUM = Path(os.environ.get("SEALED_GITOPS_CHROMIUM", "/usr/bin/chromium"))
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
SCREENSHOTS = os.environ.get("SEALED_GITOPS_UI_SCREENSHOTS") == "1"

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    ),
]

#: what must never reach the browser: the demo's values (and their base64, as a Secret holds
#: them) and the cluster's private age key
CANARIES = (
    VALUE_PREFIX,
    base64.b64encode(VALUE_PREFIX[:15].encode()).decode(),
    "AGE-SECRET-KEY-",
)


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoCluster]:
    with demo_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def ui_url(demo: DemoCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sealed-gitops ui --port 0`` as a person starts it; the URL is what it prints."""
    identity = tmp_path_factory.mktemp("ui-keys") / "cluster.agekey"
    identity.write_text(demo.age_identity + "\n", encoding="utf-8")
    identity.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealed_gitops",
            "ui",
            "--kubeconfig",
            str(demo.kubeconfig),
            "--port",
            "0",
            "--repo",
            str(demo.checkout),
            "--compare",
            "--age-identity",
            str(identity),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
        if found is None:
            proc.kill()
            raise AssertionError(f"ui printed {line!r}; stderr: {proc.communicate()[1]}")
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Recorder:
    """Every response one test's page receives, with its body, and the console's errors.

    Bodies are read as each response arrives: once the page navigates away, the browser no
    longer holds them. Each test checks its own responses (:meth:`check`), so the tests stay
    independent when pytest-xdist spreads them over workers.
    """

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        #: console errors: a script or stylesheet the CSP refused, a missing resource
        self.errors: list[str] = []

    def record(self, response: Any) -> None:
        # The view never redirects, so every response has a body to read.
        self.bodies.append((response.url, response.body()))

    def console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def check(self) -> None:
        """No canary in any response, no browser error (a CSP refusal, a missing resource)."""
        assert self.bodies, "no response recorded"
        for url, body in self.bodies:
            text = body.decode("utf-8", errors="replace")
            for canary in CANARIES:
                assert canary not in text, f"{canary!r} in the response for {url}"
        assert self.errors == []


@pytest.fixture(scope="module")
def browser(ui_url: str) -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(browser: Any) -> Iterator[tuple[Any, Recorder]]:
    recorder = Recorder()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.on("response", recorder.record)
        page.on("console", recorder.console)
        yield page, recorder
    finally:
        context.close()


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / f"ui-{name}.png"), full_page=True)


def test_overview_shows_the_failing_sync_and_its_reason(
    ui_url: str, browser_page: tuple[Any, Recorder]
) -> None:
    page, recorder = browser_page
    page.goto(ui_url)
    row = page.locator("#syncs tr.sync", has_text="app")
    assert row.get_attribute("data-ready") == "False"
    assert SECRET_FILE in row.locator(".failures").inner_text()
    assert page.locator("#repositories tr.repository").count() == 1
    _shot(page, "syncs")
    recorder.check()


def test_sync_page_shows_reason_and_inventory(
    ui_url: str, browser_page: tuple[Any, Recorder]
) -> None:
    page, recorder = browser_page
    page.goto(ui_url)
    page.locator("a.sync-link", has_text="app").click()
    page.wait_for_url(f"**/syncs/{NS}/app")
    assert SECRET_FILE in page.locator("#message").inner_text()
    assert page.locator("#reason").inner_text().strip() != ""
    inventory = page.locator("#inventory").inner_text()
    assert "Secret" in inventory and "db" in inventory
    assert "settings" not in inventory  # pruned: no longer in the inventory
    _shot(page, "sync")
    recorder.check()


def test_click_on_a_secret_shows_its_timeline(
    ui_url: str, browser_page: tuple[Any, Recorder]
) -> None:
    page, recorder = browser_page
    page.goto(f"{ui_url}syncs/{NS}/app")
    page.locator("#inventory a.secret-link", has_text="db").click()
    page.wait_for_url(f"**/secrets/{NS}/db")
    events = page.locator("#timeline li.event")
    password = events.filter(has_text='["stringData"]["password"]')
    authors = [password.nth(i).locator(".author").inner_text() for i in range(password.count())]
    # newest first: Mallory's tampered commit, Bob's change (live), Alice's addition
    assert [a.split(" <")[0] for a in authors] == ["Mallory", "Bob", "Alice"]
    assert password.nth(2).locator(".change").inner_text() == "added"
    assert "live" in (password.nth(1).get_attribute("class") or "")
    # the live values are Bob's commit, and each matches Git by keyed hash
    matches = page.locator("#matches tr.match")
    assert matches.count() == 2
    for i in range(matches.count()):
        assert matches.nth(i).locator("td").nth(1).inner_text() == "matches"
    _shot(page, "secret")
    recorder.check()


def test_keyrings_and_secrets_pages_load(ui_url: str, browser_page: tuple[Any, Recorder]) -> None:
    page, recorder = browser_page
    page.goto(f"{ui_url}keyrings")
    ring = page.locator("section.keyring", has_text="cluster-keys")
    assert ring.locator("tr.key-active").count() == 1
    _shot(page, "keyrings")
    page.goto(f"{ui_url}secrets")
    assert page.locator("#secrets tr.secret", has_text=f"{NS}/db").count() == 1
    page.fill("input.filter", "no-such-secret")
    assert page.locator("#secrets tr.secret.hidden").count() == 1  # the filter script ran
    recorder.check()


def test_a_live_edit_shows_as_differs(
    demo: DemoCluster, ui_url: str, browser_page: tuple[Any, Recorder]
) -> None:
    """Someone edits the live password (the last commit is refused, so nothing restores it)."""
    page, recorder = browser_page
    edited = base64.b64encode((VALUE_PREFIX + "edited-live").encode()).decode()
    demo.client.request(
        "PATCH",
        f"/api/v1/namespaces/{NS}/secrets/db",
        body={"data": {"password": edited}},
        query={"fieldManager": "kubectl-edit"},
        content_type="application/merge-patch+json",
        action="patch",
        what="Secret db",
        sensitive=True,
    )
    page.goto(f"{ui_url}secrets/{NS}/db")
    verdicts = {
        row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
        for row in page.locator("#matches tr.match").all()
    }
    assert verdicts == {"password": "differs", "username": "matches"}
    recorder.check()
