"""report.html in a real browser: headless Chromium loads it with no error, every inlined image decodes with a non-zero
size, and the screenshot is a rendered page (not blank). Needs Debian's `chromium` (.ci/run installs it)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from test_reports import golden_runs, make_run
from reports.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")

# Injected into a copy of the page only: the report itself has no script. It records load errors and, after load,
# every image's decode state into an element that --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.tagName))), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images).map(
    i => `${i.complete ? 1 : 0}:${i.naturalWidth}x${i.naturalHeight}:${i.alt}`);
  const out = document.createElement('pre');
  out.id = '__probe';
  out.textContent = JSON.stringify({errors: window.__errors, images: imgs});
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    runs = golden_runs(tmp)
    runs.append(make_run(tmp / "imported-lcb", "deepseek-r1:7b", {"livecodebench": (12, 4)}, tokens=False,
                         external=True))
    return write_report(runs, tmp / "report")


def test_html_is_self_contained(report):
    page = report["html"].read_text()
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(srcs) == len([k for k in report if k.startswith("plot:")]) > 10
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    # Nothing is fetched: no external stylesheet, script or link to a file next to it.
    assert not re.search(r'(href|src)="(?!data:)', page)


def test_chromium_loads_page_and_decodes_every_image(report):
    import json

    probe_page = report["html"].with_name("probe.html")
    probe_page.write_text(report["html"].read_text().replace("<head>", "<head>" + PROBE, 1))
    proc = chromium("--dump-dom", probe_page.as_uri(), cwd=probe_page.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="__probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"probe did not run; chromium said:\n{proc.stderr[-2000:]}"
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    n_plots = len([k for k in report if k.startswith("plot:")])
    assert len(result["images"]) == n_plots
    for img in result["images"]:
        complete, size, alt = img.split(":", 2)
        w, h = (int(x) for x in size.split("x"))
        assert complete == "1" and w > 100 and h > 100, img


def test_chromium_screenshot_shows_the_report(report, tmp_path):
    shot = tmp_path / "report.png"
    proc = chromium(f"--screenshot={shot}", "--window-size=1200,3000", report["html"].as_uri(), cwd=tmp_path)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    px = imread(shot)
    assert px.shape[0] == 3000 and px.shape[1] == 1200
    gray = px[..., :3].mean(axis=2)
    # A rendered report: mostly white background, but with text, table rules and plot pixels in it.
    dark = float((gray < 0.5).mean())
    assert 0.005 < dark < 0.5, dark
    # The first plot sits within the first 3000 px: colored (non-gray) pixels from the curves must be present.
    color = np.abs(px[..., 0] - px[..., 2]) > 0.3
    assert color.sum() > 500
