"""Issue 12 in a real browser: Playwright for Python drives Debian's Chromium (headless, found by
path; no browser is downloaded) through the pages a person uses, keeping a screenshot of each
in tests/out/screens/, and axe-core (from the npm registry, checked against the registry's
integrity hash and kept in a local cache) checks every page in both themes.

Without Chromium these tests are skipped with the reason; CI installs it and sets
WHEELCAVE_TEST_REQUIRE_BROWSER, so there they fail instead."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.dists import make_wheel, wheel_bytes
from tests.support.server import Server
from tests.support.upload import upload
from tests.support.upstream import FakeUpstream, UpFile

CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.14.1"
SCREENS = Path(__file__).parents[1] / "out" / "screens"
README = """# Browser demo

A project with a **rendered** README and a [link](https://example.invalid/).
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("WHEELCAVE_TEST_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium): browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's browser build, from the npm registry once (its sha512 checked), then cached."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wheelcave-tests"
    tarball = cache / f"axe-core-{AXE_VERSION}.tgz"
    meta = None
    if not tarball.exists():
        meta = httpx.get(f"https://registry.npmjs.org/axe-core/{AXE_VERSION}", timeout=60).raise_for_status().json()
        data = httpx.get(meta["dist"]["tarball"], timeout=120, follow_redirects=True).raise_for_status().content
        algorithm, _, expected = meta["dist"]["integrity"].partition("-")
        assert algorithm == "sha512" and base64.b64decode(expected) == hashlib.sha512(data).digest(), "axe-core tarball damaged"
        cache.mkdir(parents=True, exist_ok=True)
        tarball.write_bytes(data)
    with tarfile.open(fileobj=io.BytesIO(tarball.read_bytes()), mode="r:gz") as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        return member.read().decode()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    up.add("brw-upstream", UpFile("brw_upstream-3.0-py3-none-any.whl", wheel_bytes("brw-upstream", "3.0", summary="from upstream")))
    up.start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("browser") / "data").start()
    srv.cli("index", "create", "up", "--kind", "mirror", "--upstream", upstream.url)
    tmp = tmp_path_factory.mktemp("dists")
    auth = ("admin", srv.admin_password)
    assert upload(f"{srv.url}/legacy/", make_wheel(tmp, "brw-demo", "1.0", summary="browser demo", description=README,
                                                    requires_dist=["attrs>=1"]), auth=auth).status_code == 200
    yield srv
    srv.stop()


def shot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def test_a_person_uses_the_pages(browser: Any, site: Server, tmp_path: Path) -> None:
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(site.url + "/")
    assert "Package indexes" in page.inner_text("h1")
    shot(page, "home")

    page.fill("#q", "browser demo")
    page.press("#q", "Enter")
    page.wait_for_url("**/search?q=*")
    shot(page, "search")
    page.click("text=brw-demo")
    page.wait_for_selector(".readme h1")
    assert page.inner_text(".readme h1") == "Browser demo"
    assert page.inner_text(".readme strong") == "rendered"
    shot(page, "project")
    page.click("button[data-copy=install-pip]")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("pip install --index-url ") and copied.endswith("brw-demo==1.0")

    page.click("text=Sign in")
    page.fill("#username", "admin")
    page.fill("#password", site.admin_password)
    shot(page, "login")
    page.click("button[type=submit] >> text=Sign in")
    page.wait_for_selector("text=signed in as admin")

    wheel = make_wheel(tmp_path, "brw-upload", "2.0", summary="uploaded from a browser")
    page.goto(site.url + "/upload")
    page.select_option("#upload-index", "local")
    page.set_input_files("#upload-files", str(wheel))
    page.click("button[type=submit] >> text=Upload")
    page.wait_for_selector("#upload-results li")
    assert page.inner_text("#upload-results li") == f"{wheel.name}: uploaded"
    shot(page, "upload")

    page.goto(site.url + "/index/local/project/brw-upload/2.0/")
    page.fill("#reason", "tried in a browser")
    page.click("text=Yank 2.0")
    page.wait_for_selector("text=yanked: tried in a browser")
    shot(page, "yanked")

    page.goto(site.url + "/account/tokens")
    page.fill("#description", "from the browser")
    page.click("text=Create token")
    token = page.inner_text("#new-token")
    assert httpx.get(f"{site.url}/api/v1/whoami", auth=("__token__", token)).json()["name"] == "admin"
    shot(page, "tokens")

    page.fill("#q", "brw-upstream")
    page.press("#q", "Enter")
    page.click("text=Fetch brw-upstream from the upstream of up")
    page.wait_for_selector("text=brw_upstream-3.0-py3-none-any.whl")
    assert "from upstream" in page.inner_text("main")
    shot(page, "fetched")

    page.goto(site.url + "/admin/audit?project=brw-upload")
    assert "file.yank" in page.inner_text("table")
    shot(page, "audit")
    assert errors == []  # no script error, no CSP refusal on any page
    context.close()


PAGES = ["/", "/search?q=brw", "/project/brw-demo/", "/index/local/", "/index/pypi/", "/login",
         "/upload", "/account/tokens", "/admin/audit", "/admin/users", "/index/local/access", "/index/pypi/traffic", "/index/local/webhooks",
         "/project/nothing-here/"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_problem(browser: Any, site: Server, axe_source: str, scheme: str) -> None:
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    page.goto(site.url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", site.admin_password)
    page.click("button[type=submit] >> text=Sign in")
    page.wait_for_selector("text=signed in as admin")
    found: dict[str, list[str]] = {}
    for path in PAGES:
        page.goto(site.url + path)
        page.evaluate(axe_source)  # evaluated by the browser's debugger protocol: the page's CSP stays as it is
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")
        bad = [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}" for v in result if v["impact"] in ("serious", "critical")]
        if bad:
            found[path] = bad
        shot(page, f"axe-{scheme}-{re.sub(r'[^a-z0-9]+', '-', path).strip('-') or 'home'}")
    context.close()
    assert found == {}, json.dumps(found, indent=1)
