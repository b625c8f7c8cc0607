"""The README's screenshots of the web dashboard and the wizard's sweep step, from the simulator.

    .venv/bin/python -m tests.benchmarks.web_screenshots [--out docs]

Runs the real daemon on a virtual pair (the leader waving), the real ``so101d web``, and
Debian's chromium (/usr/bin/chromium) through Playwright: the dashboard once the plot holds
ten seconds, then a leader calibration mid-sweep. Writes web-dashboard.png and web-sweep.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser import CHROMIUM
from tests.calibrating import MIDDLE, pose
from tests.daemon_harness import short_tmpdir, virtual_pair
from tests.web_harness import start_daemon_with_web, web_beside

PHONE_WIDE = {"width": 900, "height": 1250}
WAIT_MS = 120_000
# The plot holds its ten seconds, whatever the stream's rate.
PLOT_FULL = (
    "() => { const s = plots.get('main') || []; return s.length > 1 && s.at(-1).t - s[0].t > 9.5; }"
)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with short_tmpdir() as work, virtual_pair(work, "main", "so101", seed=1) as pair:
        pair.leader.set_motion("wave")
        daemon, port = start_daemon_with_web(work, pair)
        try:
            daemon.wait_state("teleop")
            with web_beside(daemon, port) as web, sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=["--no-sandbox"]
                )
                page = browser.new_page(viewport=PHONE_WIDE)
                page.goto(f"{web.origin}/?token={web.token}")
                page.wait_for_function(PLOT_FULL, timeout=WAIT_MS)
                page.screenshot(path=out / "web-dashboard.png")

                pose(pair.leader, MIDDLE)
                card = page.get_by_label("Calibration of the leader")
                card.get_by_role("button", name="Calibrate leader").click()
                card.get_by_role("button", name="Calibrate by hand").click()
                page.get_by_role("button", name="Capture neutral").click()
                expect(page.get_by_role("button", name="Done sweeping")).to_be_enabled()
                pair.leader.set_motion("sweep")
                page.wait_for_function(
                    "() => latest.session && latest.session.joints.elbow_flex.range > 1200",
                    timeout=WAIT_MS,
                )
                page.evaluate("window.scrollTo(0, 0)")  # the header (E-STOP) and the wizard
                box = page.locator("#wizard").bounding_box()
                assert box is not None
                height = box["y"] + box["height"] + 12
                clip = {"x": 0, "y": 0, "width": PHONE_WIDE["width"], "height": height}
                page.screenshot(path=out / "web-sweep.png", clip=clip)
                page.get_by_role("button", name="Cancel").click()
                page.get_by_role("button", name="Discard").click()
                browser.close()
        finally:
            daemon.close()
    print(f"wrote {out / 'web-dashboard.png'} and {out / 'web-sweep.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    main(parser.parse_args().out)
