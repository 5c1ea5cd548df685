"""Open a page in headless Chromium (Debian's `chromium`, installed by .ci/run): DOM and screenshot."""
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=15000",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: the page must not need the network
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the browser tests need Chromium: apt-get install -y chromium (as .ci/run does)"
    return path


def run_chromium(page: Path, *flags: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def rendered_dom(page: Path) -> str:
    """The page's DOM after its scripts ran."""
    return run_chromium(page, "--dump-dom")


def screenshot(page: Path, png: Path, height: int = 4200) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(page, f"--window-size=1280,{height}", f"--screenshot={png.resolve()}")
    assert png.is_file() and png.stat().st_size > 10_000, png
