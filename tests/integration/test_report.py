"""`snakemake --report` of the smoke run: one offline HTML file with the search tree, the summary,
the plots and the model card, rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import snakemake

pytestmark = pytest.mark.integration

ITEMS = ("search_tree.svg", "summary.html", "model_card.html", "tradeoff.png", "loss_curves.png")
# Headless and quiet: no sandbox (CI runs as root), and no background connections, which a machine
# without network refuses at every start.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000")


@pytest.fixture(scope="module")
def report(smoke, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    proc = snakemake(smoke, "--report", str(path), cores=None)  # as a user types it: no --cores
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("COFITUNE_REQUIRE_CHROMIUM"):
            pytest.fail("COFITUNE_REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("chromium is not installed: apt-get install chromium (.ci/run does)")
    return binary


def render(page: Path, out_dir: Path, *args: str) -> subprocess.CompletedProcess:
    profile = out_dir / "chromium-profile"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=out_dir)


def test_the_report_is_one_offline_html_file_with_every_item(report):
    html = report.read_text(errors="replace")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert all(item in html for item in ITEMS), [item for item in ITEMS if item not in html]
    assert "Final model" in html and "Search" in html  # the categories of the new items


def test_chromium_renders_the_report(report, tmp_path):
    dom = render(report, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Final model" in dom.stdout and "Search" in dom.stdout, dom.stdout[-2000:]  # built by the report's scripts
    shot = tmp_path / "report.png"
    proc = render(report, tmp_path, f"--screenshot={shot}", "--window-size=1400,900")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert_not_blank(shot)


@pytest.mark.parametrize("page", ["plots/search_tree.svg", "report/model_card.html", "report/summary.html"])
def test_chromium_renders_the_pages_the_report_embeds(smoke, tmp_path, page):
    shot = tmp_path / "page.png"
    proc = render(smoke / "results" / page, tmp_path, f"--screenshot={shot}", "--window-size=1400,1000")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert_not_blank(shot)


def assert_not_blank(png: Path) -> None:
    """A page that rendered nothing is one colour; ours have text and lines."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.std() > 0.02, f"{png} is blank"
    if os.environ.get("COFITUNE_KEEP_SCREENSHOTS"):  # for a person to look at
        keep = Path(os.environ["COFITUNE_KEEP_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, keep / f"{png.parent.name}-{png.name}")
