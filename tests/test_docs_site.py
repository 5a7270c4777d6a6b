"""The documentation site: API pages a reader can read, and a built site that browses from disk.

- The API reference's docstrings are Markdown (Google style, what mkdocstrings renders): no Sphinx roles.
- Each ``docs/reference`` page introduces its module in prose, with an example that runs (``pycon`` blocks, run
  as doctests).
- The site builds (``mkdocs build --strict``) and headless Chromium opens it from disk (``file://``), follows
  links, finds the tutorial and searches (slow: the build takes seconds).
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: ([\w.]+)", flags=re.M)
#: Sphinx's cross-reference roles and field lists: raw text on a Markdown page.
SPHINX = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|obj|exc|data):`|^\s*:(?:param|type|returns?|rtype|raises)\b", re.M
)


def _source(name: str) -> Path | None:
    """The file defining module ``name`` or holding object ``name``: in engine/ or a plugin's package, unimported."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        rel = Path(*parts[:n])
        roots = (
            [ROOT] if parts[0] == "engine" else sorted((ROOT / "plugins").glob("*")) + sorted(ROOT.glob("contrib/*"))
        )
        for root in roots:
            for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def test_no_sphinx_roles_in_the_docstrings_the_api_pages_render() -> None:
    files = set(ROOT.glob("engine/**/*.py"))  # the kernel: its public names are defined all over it
    for page in REFERENCE.glob("*.md"):
        for name in DIRECTIVE.findall(page.read_text()):
            source = _source(name)
            assert source is not None, f"{page.name}: cannot find the source of {name}"
            files.add(source)
    assert any("engine_experiments" in str(f) for f in files)
    raw = [
        f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
        for f in sorted(files)
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if SPHINX.search(line)
    ]
    assert not raw, "Sphinx roles in docstrings rendered as Markdown (write `name` instead):\n" + "\n".join(raw)


def test_the_role_pattern_finds_roles() -> None:
    for text in (":class:`Run`", "see :func:`engine.plan`", ":meth:`x.y`", "    :param x: y", ":returns: z"):
        assert SPHINX.search(text), text
    for text in ("`Run`", "``engine.plan``", "Args:", "a: b", "https://x"):
        assert not SPHINX.search(text), text


def _pages() -> list[Path]:
    return sorted(p for p in REFERENCE.glob("*.md") if p.name != "index.md")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_each_reference_page_introduces_its_module_before_the_generated_part(page: Path) -> None:
    text = page.read_text()
    intro = text[: text.index(":::")] if ":::" in text else text
    prose = [line for line in intro.splitlines() if line and not line.startswith(("#", "```", ">>>", "..."))]
    assert len(" ".join(prose).split()) >= 60, f"{page.name}: a few sentences on what the module is for"
    assert "```pycon" in intro or "```python" in intro, f"{page.name}: an example before the generated reference"


def _examples(page: Path) -> list[doctest.Example]:
    """The ``pycon`` blocks' examples, numbered by their line on the page."""
    text, parser, found = page.read_text(), doctest.DocTestParser(), []
    for block in re.finditer(r"```pycon\n(.*?)```", text, flags=re.S):
        line = text.count("\n", 0, block.start(1))
        for example in parser.get_examples(block.group(1)):
            example.lineno += line
            found.append(example)
    return found


@pytest.mark.parametrize("page", [p for p in _pages() if _examples(p)], ids=lambda p: p.stem)
def test_the_reference_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's ``pycon`` blocks are one doctest, run in a fresh directory with the core's components only."""
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTest(_examples(page), {"__name__": "__main__"}, page.name, str(page), 0, None)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0 and runner.tries > 0, "".join(out)


# --------------------------------------------------------------------------- the built site in a browser


def test_the_site_is_configured_to_browse_from_disk() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python/name:", ""))
    assert config["use_directory_urls"] is False  # page.html links: file:// has no index.html lookup
    assert config["theme"]["name"] == "material" and config["theme"]["font"] is False  # no web fonts
    assert "offline" in config["plugins"] and "search" in config["plugins"]
    shim = config["extra"]["polyfills"][0]
    assert (ROOT / "docs" / shim).is_file(), "the Web Worker shim is served from the site, not a CDN"
    sections = [next(iter(entry)) for entry in config["nav"]]
    assert sections == ["Home", "Tutorials", "How-to guides", "Reference", "Explanation", "Plugins"]


def _browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    why = "headless Chromium and chromedriver are not installed (make setup installs them: make browser)"
    if os.environ.get("CI"):
        pytest.fail(why)  # CI ran make setup: a missing browser there is a setup bug, not a reason to skip
    pytest.skip(why)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return out


@pytest.mark.slow
def test_the_built_site_fetches_nothing_from_the_network(site: Path) -> None:
    fetched = set()
    for page in site.rglob("*.html"):
        fetched |= set(re.findall(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(https?://[^\"]+)\"", page.read_text()))
    assert not fetched, f"the site loads from the network: {sorted(fetched)}"
    assert (site / "search" / "search_index.js").is_file()  # the offline plugin's inlined index


@pytest.mark.slow
def test_a_browser_opens_the_site_from_disk_follows_links_and_searches(site: Path) -> None:
    chromium, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(driver_path))
    browser.set_page_load_timeout(60)
    wait = WebDriverWait(browser, 30)
    try:
        browser.get((site / "index.html").as_uri())
        assert browser.current_url.startswith("file://")

        def follow(text: str) -> None:
            links = [a for a in browser.find_elements(By.CSS_SELECTOR, "article a") if a.text.strip() == text]
            assert links, f"no link {text!r} on {browser.current_url}"
            links[0].click()
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "article h1"))

        # 1: home -> the tutorial, from the page's own text
        follow("tutorial: from a first run to a served model")
        assert browser.current_url.endswith("/tutorial.html")
        assert browser.find_element(By.CSS_SELECTOR, "article h1").text.startswith("Tutorial: from a first run")
        assert "source .venv/bin/activate" in browser.find_element(By.CSS_SELECTOR, "article").text
        assert browser.find_elements(By.CSS_SELECTOR, "article .highlight span"), "code highlighted at build time"
        # 2: the tutorial -> the CLI reference
        follow("CLI reference")
        assert browser.current_url.endswith("/cli.html")
        # 3: the CLI reference -> a plugin's page in a subdirectory, and from there back up (relative links)
        follow("engine-experiments")
        assert browser.current_url.endswith("/plugins/experiments.html")
        follow("Pipelines")
        assert browser.current_url.endswith("/pipelines.html") and "/plugins/" not in browser.current_url

        box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")  # the search box, from disk
        box.click()
        box.send_keys("served model")
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".md-search-result__item a"))
        hits = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")]
        assert any("tutorial.html" in h for h in hits), hits
    finally:
        browser.quit()
