"""docs/console-bench.png: the bench view of a simulated charger during a charging session, taken in headless
Chromium against a real gateway (scripts/screenshot runs it)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import FLAGS, Simulated, chromium, log_in, serve

ROOT = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    executable = chromium()
    if executable is None:
        sys.exit("no Chromium installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder, serve(Path(folder)) as served:
        simulated = Simulated(served)
        try:
            simulated.start("BENCH-7KW-01", "--measurands",
                            "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC,Temperature",
                            connectors=2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=FLAGS)
                page = browser.new_page(viewport={"width": 1600, "height": 1500})
                page.set_default_timeout(20_000)
                log_in(page, served)
                page.click(".card.charger[data-cp='BENCH-7KW-01'] >> text=Bench view")
                start = page.locator("#view-bench form.cmd", has=page.locator("button", has_text="Remote start"))
                start.locator("[name=idTag]").fill("04A1B2C3")
                start.locator("[name=connectorId]").select_option("1")
                start.locator("button").click()
                page.locator("#view-bench .session").wait_for()
                get = page.locator("#view-bench form.cmd", has=page.locator("button", has_text="Get configuration"))
                get.locator("[name=key]").fill("HeartbeatInterval, MeterValueSampleInterval, NumberOfConnectors, "
                                                "MeterValuesSampledData, ConnectorPhaseRotation")
                get.locator("button").click()
                page.locator("#view-bench section.part", has=page.locator("h3", has_text="Configuration")).locator(
                    "tr", has_text="NumberOfConnectors").wait_for()
                time.sleep(25)  # readings on the chart
                page.screenshot(path=str(out), full_page=False)
                browser.close()
        finally:
            simulated.stop()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console-bench.png")
