"""Test helpers for the HTML report: the hand-made results fixtures and headless Chromium.

Results fixtures under tests/fixtures/results/ name their images `$IMAGES/<file>`;
`load_results_fixture` draws those images into a folder and puts absolute paths in their place,
as the plugin writes them. Files whose name starts with `missing` are left undrawn, to test the
report's placeholder.

Chromium is driven through Selenium with the Debian packages' binaries named explicitly
(`/usr/bin/chromium`, `/usr/bin/chromedriver`), so that Selenium never downloads a driver.

Run as a script to take the README screenshot:
    python tests/browser.py screenshot docs/report.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from PIL import Image, ImageDraw

FIXTURES = Path(__file__).parent / "fixtures" / "results"
IMAGE_PLACEHOLDER = "$IMAGES/"
CHROMIUM_CANDIDATES = (Path("/usr/bin/chromium"), Path("/usr/bin/chromium-browser"))
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def load_results_fixture(name: str, image_dir: Path) -> dict[str, Any]:
    """The results fixture `name` with its images drawn into `image_dir`."""
    results = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    image_dir.mkdir(parents=True, exist_ok=True)
    for item in results["items"]:
        item["images"] = [_materialise(path, image_dir) for path in item["images"]]
    return results


def _materialise(path: str, image_dir: Path) -> str:
    if not path.startswith(IMAGE_PLACEHOLDER):
        return path
    target = image_dir / path[len(IMAGE_PLACEHOLDER) :]
    if not target.name.startswith("missing") and not target.exists():
        draw_fixture_image(target)
    return str(target)


def draw_fixture_image(path: Path, size: tuple[int, int] = (240, 180)) -> Path:
    """A small picture, different for each file name: a coloured scene with the name on it."""
    digest = hashlib.sha256(path.stem.encode()).digest()
    sky = (150 + digest[0] % 100, 170 + digest[1] % 80, 190 + digest[2] % 60)
    ground = (60 + digest[3] % 120, 90 + digest[4] % 100, 50 + digest[5] % 80)
    shape = (digest[6], digest[7] % 128, digest[8] % 160)
    image = Image.new("RGB", size, sky)
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, height * 2 // 3, width, height), fill=ground)
    left = 30 + digest[9] % (width // 2)
    top = 30 + digest[10] % (height // 3)
    if digest[11] % 2:
        draw.ellipse((left, top, left + 70, top + 70), fill=shape, outline=(20, 20, 20), width=2)
    else:
        draw.rectangle((left, top, left + 80, top + 55), fill=shape, outline=(20, 20, 20), width=2)
    draw.rectangle((0, 0, width, 20), fill=(255, 255, 255))
    draw.text((6, 4), path.stem[:34], fill=(30, 30, 30))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def chromium_binary() -> Path | None:
    return next((candidate for candidate in CHROMIUM_CANDIDATES if candidate.is_file()), None)


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if chromium_binary() is None:
        return "Chromium is not installed (apt-get install -y chromium chromium-driver)"
    if not CHROMEDRIVER.is_file():
        return f"ChromeDriver is not at {CHROMEDRIVER} (apt-get install -y chromium-driver)"
    return None


@contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Selenium WebDriver for a fresh headless Chromium profile, closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = chromium_binary()
    if binary is None:
        raise RuntimeError(browser_unavailable_reason() or "Chromium not found")
    profile = Path(tempfile.mkdtemp(prefix="vlmsafety-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def full_page_png(driver: Any, *, width: int, max_height: int) -> bytes:
    """A PNG of the page at `width` CSS pixels, as tall as the page up to `max_height`."""
    import base64

    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), max_height)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    # Cards use content-visibility: auto; give the browser two frames to render what the
    # taller viewport now shows.
    driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
    return base64.b64decode(shot["data"])


# Page regions of the README screenshot, as [top, bottom] in page pixels: the header with the
# first suite's calibration, then the failing items narrowed by the category filter.
SCREENSHOT_REGIONS_JS = """
const box = (element) => { const r = element.getBoundingClientRect(); return [r.top + scrollY, r.bottom + scrollY]; };
const select = document.getElementById('filter-category');
select.value = arguments[0];
select.dispatchEvent(new Event('change'));
const visible = Array.from(document.querySelectorAll('[data-filterable]:not([hidden])'));
return [
  [0, box(document.querySelector('.suite-calibration'))[1] + 12],
  [box(document.getElementById('failures'))[0] - 8, box(visible[visible.length - 1])[1] + 16],
];
"""


def _screenshot(output: Path, *, category: str) -> None:
    # Imported here: the package is only needed for this command, not by the test helpers.
    import io

    from pytest_vlmsafety.output.html import write_html_report

    with tempfile.TemporaryDirectory() as folder:
        results = load_results_fixture("mixed_run.json", Path(folder) / "images")
        report = write_html_report(results, Path(folder) / "report.html")
        with headless_chromium() as driver:
            driver.get(report.as_uri())
            regions = driver.execute_script(SCREENSHOT_REGIONS_JS, category)
            page = Image.open(io.BytesIO(full_page_png(driver, width=1280, max_height=20_000)))
    parts = [page.crop((0, int(top), page.width, int(bottom))) for top, bottom in regions]
    # A palette PNG: the page has few colours, and the README image stays small.
    sheet = _stack(parts).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    sheet.save(output, optimize=True)
    print(output)


def _stack(parts: list[Image.Image], gap: int = 14) -> Image.Image:
    """The parts one above the other, with a grey band where page content was left out."""
    height = sum(part.height for part in parts) + gap * (len(parts) - 1)
    sheet = Image.new("RGB", (parts[0].width, height), (208, 215, 222))
    top = 0
    for part in parts:
        sheet.paste(part, (0, top))
        top += part.height + gap
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report test helpers.")
    commands = parser.add_subparsers(dest="command", required=True)
    shot = commands.add_parser("screenshot", help="render mixed_run.json and save a 1280px-wide PNG of it")
    shot.add_argument("output", type=Path)
    shot.add_argument("--category", default="drugs", help="category filter applied to the failing items shown")
    args = parser.parse_args(argv)
    reason = browser_unavailable_reason()
    if reason:
        print(f"cannot take a screenshot: {reason}", file=sys.stderr)
        return 2
    _screenshot(args.output, category=args.category)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
