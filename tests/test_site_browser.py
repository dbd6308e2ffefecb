"""The registry website in a real browser: Debian's Chromium, driven by Playwright (no browser download).

Every page loads with no console error and no request leaving file://, every link resolves, the "serving on a
date" view gives the registry's answers (inside a rollback too), the charts draw one point per version, axe-core
(bundled in axe-playwright-python) finds nothing serious, and text from files stays text. Screenshots of the index
and a model page are saved under a folder the tests print.

Skipped without /usr/bin/chromium, unless ``REGOPS_REQUIRE_CHROMIUM=1`` (CI, where .ci/run installs it) makes them
fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

import pytest

from regops import api
from regops.errors import StageEmptyError
from regops.registry import HOLDER_STAGES, Registry
from tests.conftest import DATA, REPO, Tree
from tests.test_site import HOSTILE, NOW, hostile_tree

if TYPE_CHECKING:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request

CHROMIUM: Final = Path("/usr/bin/chromium")
REQUIRE_ENV: Final = "REGOPS_REQUIRE_CHROMIUM"
ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)
    # Imported here (~0.3 s CPU with axe's): every xdist worker collects this file, one runs its tests (conftest).
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, Path]:
    """The site of the example registry (the README's), and that registry."""
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(REPO / "registry", root / "registry")
    api.site_build(registry=root / "registry", out=root / "site", now=NOW)
    return Registry.load(root / "registry"), root / "site"


@dataclass
class Visit:
    """What the page did while it loaded the last URL it went to: console errors, uncaught exceptions, requests and
    their failures. One page (tab) goes from URL to URL: opening a tab per URL costs more than loading the page."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def clean(self) -> list[str]:
        outside = [url for url in self.requests if not _local(url)]
        return self.errors + self.failed + [f"request outside the site: {url}" for url in outside]

    def forget(self) -> Visit:
        """Nothing seen yet."""
        for seen in (self.errors, self.requests, self.failed):
            seen.clear()
        return self

    def goto(self, url: str) -> Visit:
        """Load ``url`` in this page (until its ``load`` event), forgetting what the previous URL did."""
        self.forget().page.goto(url, wait_until="load")
        return self


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "file" or (parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1")


def open_tab(browser: Browser) -> Visit:
    """A new page (tab), watched as :class:`Visit` says; ``goto`` loads a URL in it."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(30_000)
    seen = Visit(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("requestfailed", lambda request: seen.failed.append(_failure(request)))
    page.on("dialog", lambda dialog: _dismissed(dialog, seen.errors))
    return seen


def _dismissed(dialog: Dialog, errors: list[str]) -> None:
    """A dialog is an error, dismissed so that the page goes on (an open one would hold every later load)."""
    errors.append(f"dialog: {dialog.message}")
    dialog.dismiss()


@pytest.fixture(scope="session")
def open_tabs(browser: Browser) -> Iterator[list[Visit]]:
    """The session's tab (one): :func:`tab` hands it to each test."""
    tabs = [open_tab(browser)]
    yield tabs
    tabs[-1].page.close()


@pytest.fixture
def tab(open_tabs: list[Visit], browser: Browser) -> Visit:
    """The session's one tab, nothing seen yet: a new tab costs a new renderer process (~0.3 s of CPU each,
    measured). Each test's first :meth:`Visit.goto` forgets what the page saw and replaces the document, its script
    state and its listeners, as between the URLs of one test; a load of about:blank first cost ~0.12 s of Chromium's
    CPU a test (measured) and changed nothing. The tests keep no cookies or storage (the site writes none)."""
    if open_tabs[-1].page.is_closed():  # a test closed it, or it crashed: this test gets a new one
        open_tabs.append(open_tab(browser))
    return open_tabs[-1].forget()


def new_axe() -> Axe:
    """axe-core in axe-playwright-python, imported here as Playwright is in :func:`browser`."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def _failure(request: Request) -> str:
    return f"failed: {request.url} ({request.failure})"


def _path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def test_every_page_loads_cleanly_and_every_link_resolves(tab: Visit, example_site: tuple[Registry, Path]) -> None:
    _, site = example_site
    seen = tab
    pending, loaded = [(site / "index.html").as_uri()], set()
    while pending:
        url = pending.pop()
        if _path(url) in loaded:
            continue
        seen.goto(url)
        assert seen.clean() == [], url
        links = seen.page.eval_on_selector_all(
            "a[href]", "links => links.map(a => new URL(a.getAttribute('href'), document.baseURI).href)"
        )
        loaded.add(_path(url))
        for link in links:
            target = _path(link)
            assert urlsplit(link).scheme == "file" and target.is_file(), f"{url} links to {link}, which is not there"
            if target.suffix == ".html":
                pending.append(urlsplit(link)._replace(query="", fragment="").geturl())
    # Every page is reachable from the index.
    assert loaded == set(site.rglob("*.html"))


def _expected(registry: Registry, at: datetime) -> dict[str, list[str]]:
    answers = {}
    for name in registry.model_names():
        row = []
        for stage in HOLDER_STAGES:
            try:
                row.append(registry.resolve(f"{name}@{stage}", at=at).version)
            except StageEmptyError:
                row.append("–")
        answers[name] = row
    return answers


def _shown(page: Page) -> dict[str, list[str]]:
    rows = page.eval_on_selector_all("tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    return {row[0]: row[1:] for row in rows}


# (date, time, sentiment's prod then): in prod before 1.4.0; 1.4.0's week in prod; its last second; the rollback's
# first second, bringing 1.3.1 back; after it; before anything was registered.
KNOWN = [
    ("2026-09-01", "12:00:00", "1.3.1"),
    ("2026-10-30", "00:00:00", "1.4.0"),
    ("2026-11-03", "19:42:15", "1.4.0"),
    ("2026-11-03", "19:42:16", "1.3.1"),
    ("2026-11-05", "00:00:00", "1.3.1"),
    ("2024-01-01", "00:00:00", "–"),
]


@pytest.mark.parametrize(("date", "time", "prod"), KNOWN)
def test_serving_on_a_date_gives_the_registry_s_answers(
    tab: Visit, example_site: tuple[Registry, Path], date: str, time: str, prod: str
) -> None:
    registry, site = example_site
    expected = _expected(registry, datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=UTC))
    assert expected["sentiment"][HOLDER_STAGES.index("prod")] == prod
    seen = tab.goto(f"{(site / 'serving.html').as_uri()}?date={date}&time={time}")
    assert _shown(seen.page) == expected
    assert seen.clean() == []


def test_the_serving_form_answers_a_moment_typed_into_it(tab: Visit, example_site: tuple[Registry, Path]) -> None:
    registry, site = example_site
    seen = tab.goto((site / "serving.html").as_uri())
    seen.page.fill("#date", "2026-11-03")
    seen.page.fill("#time", "19:00:00")
    seen.page.click("button[type=submit]")
    assert _shown(seen.page) == _expected(registry, datetime(2026, 11, 3, 19, tzinfo=UTC))
    assert _shown(seen.page)["sentiment"][HOLDER_STAGES.index("prod")] == "1.4.0"
    assert seen.page.text_content("#answer-at") == "At 2026-11-03T19:00:00.000Z:"


def test_each_chart_draws_one_point_per_version_that_reports_the_metric(
    tab: Visit, example_site: tuple[Registry, Path]
) -> None:
    registry, site = example_site
    seen = tab
    for name in registry.model_names():
        seen.goto((site / "models" / name / "index.html").as_uri())
        assert seen.clean() == [], name
        charts = seen.page.eval_on_selector_all(
            "figure.chart",
            "figs => figs.map(f => [f.dataset.metric, [...f.querySelectorAll('circle.point')]"
            ".map(c => { const b = c.getBoundingClientRect(); return [b.x, b.width]; })])",
        )
        metrics = {m for r in registry.versions(name) for m in r.scores}
        assert sorted(metric for metric, _ in charts) == sorted(metrics)
        for metric, points in charts:
            assert len(points) == sum(metric in r.scores for r in registry.versions(name)), (name, metric)
            assert all(width > 0 for _, width in points), (name, metric)
            xs = [x for x, _ in points]
            assert xs == sorted(xs) and len(set(xs)) == len(xs), (name, metric)


def test_screenshots_of_the_index_and_a_model_page(
    tab: Visit, example_site: tuple[Registry, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, site = example_site
    folder = Path(os.environ.get("REGOPS_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    seen = tab
    for page, name in ((site / "index.html", "index.png"), (site / "models" / "sentiment" / "index.html", "model.png")):
        seen.goto(page.as_uri()).page.screenshot(path=str(folder / name), full_page=True)
        assert (folder / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    print(f"site screenshots: {folder}")


def test_axe_finds_nothing_serious_on_any_kind_of_page(tab: Visit, example_site: tuple[Registry, Path]) -> None:
    _, site = example_site
    pages = ["index.html", "serving.html", "models/sentiment/index.html", "models/sentiment/1.3.1.html"]
    seen, axe = tab, new_axe()
    for relative in pages:
        results = axe.run(seen.goto((site / relative).as_uri()).page)
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], relative
        assert results.response["testEngine"]["name"] == "axe-core"


def test_axe_does_find_what_it_is_there_to_find(tab: Visit, tmp_path: Path) -> None:
    # The check above can fail: an unlabelled field and an image without alt text are reported here.
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!doctype html><html lang="en"><head><title>x</title></head>'
        '<body><main><h1>x</h1><input type="text"><img src="data:,"></main></body></html>',
        encoding="utf-8",
    )
    seen = tab.goto(broken.as_uri())
    found = {v["id"]: v["impact"] for v in new_axe().run(seen.page).response["violations"]}
    assert found["label"] == "critical"
    assert found["image-alt"] == "critical"


def test_text_from_files_stays_text_in_the_browser(tab: Visit, tmp_path: Path) -> None:
    shutil.copytree(DATA / "registry", tmp_path / "registry")
    hostile_tree(Tree(tmp_path))
    api.site_build(registry=tmp_path / "registry", out=tmp_path / "site", now=NOW)
    seen = tab
    for page in (tmp_path / "site" / "index.html", tmp_path / "site" / "models" / "sentiment" / "index.html"):
        seen.goto(page.as_uri())
        assert seen.page.evaluate("window.pwned") is None
        assert seen.page.eval_on_selector_all("main img, main script", "found => found.length") == 0
        assert HOSTILE in (seen.page.text_content("main") or "")
        assert seen.clean() == []
