"""Open a pipeline's `report.html` in a real browser (headless Chromium) and check what a reader
would see: every image decodes, no section is empty, nothing scrolls sideways at 1280 px; save a
full-page screenshot.

Needs Debian's `chromium` package (`apt-get install chromium`); CI does not run this.

    python bench/report_check.py [runs/pipeline/report.html] [--shot runs/pipeline/report.png] [--width 1280]

Last line: `report_check: ok` or `report_check: N problems` (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs in the page after load; writes its findings into the DOM, which --dump-dom prints.
PROBE = """
<script>
window.addEventListener('load', () => {
  const problems = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push('image does not load: ' + img.alt);
  }
  const heads = [...document.querySelectorAll('h1,h2,h3')];
  heads.forEach((h, i) => {
    const level = +h.tagName[1];
    let el = h.nextElementSibling, content = false;
    while (el && !(/^H[1-3]$/.test(el.tagName) && +el.tagName[1] <= level)) {
      if (el.textContent.trim() || el.querySelector('img') || el.tagName === 'IMG') { content = true; break; }
      el = el.nextElementSibling;
    }
    if (!content) problems.push('empty section: ' + h.textContent);
  });
  const titles = heads.map(h => h.textContent);
  titles.forEach((t, i) => { if (titles.indexOf(t) !== i) problems.push('heading repeated: ' + t); });
  const width = document.documentElement.scrollWidth;
  if (width > window.innerWidth) problems.push('scrolls sideways: page ' + width + ' px wide in a ' + window.innerWidth + ' px window');
  const out = document.createElement('pre');
  out.id = 'report-check';
  out.textContent = JSON.stringify({problems, height: document.documentElement.scrollHeight,
                                    images: document.images.length, sections: heads.length});
  document.body.appendChild(out);
});
</script>
"""


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("report_check: no Chromium found (apt-get install chromium)")


def run(args: list[str], timeout: int = 120) -> str:
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    proc = subprocess.run([browser(), *flags, *args], capture_output=True, text=True, timeout=timeout)
    return proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", nargs="?", default="runs/pipeline/report.html")
    ap.add_argument("--shot", default="")
    ap.add_argument("--width", type=int, default=1280)
    args = ap.parse_args()
    page = Path(args.report)
    if not page.exists():
        sys.exit(f"report_check: {page} does not exist (run `make demo` first)")
    with tempfile.TemporaryDirectory() as tmp:
        probed = Path(tmp) / "page.html"
        probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
        dom = run([f"--window-size={args.width},900", "--dump-dom", probed.as_uri()])
    m = re.search(r'<pre id="report-check">(.*?)</pre>', dom, re.S)
    if not m:
        sys.exit("report_check: the page did not finish loading in the browser")
    found = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    shot = Path(args.shot or page.with_suffix(".png"))
    run([f"--window-size={args.width},{min(found['height'] + 40, 16000)}", f"--screenshot={shot.resolve()}", page.resolve().as_uri()])
    print(f"{page}: {found['sections']} sections, {found['images']} images, {found['height']} px tall at "
          f"{args.width} px; screenshot {shot}")
    for p in found["problems"]:
        print(f"- {p}")
    print("report_check: ok" if not found["problems"] else f"report_check: {len(found['problems'])} problems")
    sys.exit(1 if found["problems"] else 0)


if __name__ == "__main__":
    main()
