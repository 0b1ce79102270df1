"""report.html laid out by headless Chromium: the summary and the timeline plot are on the first screen (issue 18).

Positions come from the browser's own layout (``getBoundingClientRect`` over the DevTools protocol), not
from pixels; a PNG of the first screen is saved beside the report for a person to look at. Skipped with
the reason when no Chromium is installed (``.ci/test`` installs Debian's ``chromium`` and sets
``CHAOSML_CHROMIUM_REQUIRE=1``, which turns the skip into a failure).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from devtools import find_browser, measure
from matplotlib.image import imread
from test_report_render import experiment_model, write_run

from chaosml.report import render_report

pytestmark = pytest.mark.slow  # a browser start: seconds

WIDTH, HEIGHT = 1280, 1000  # the first screen of a laptop
MEASURE = """JSON.stringify((() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, height: r.height}; };
  const img = document.getElementById('plot-timeline');
  return {summary: box(document.getElementById('summary')), timeline: box(img), loaded: img.complete && img.naturalHeight > 0,
          scrolled: window.scrollY, viewport: [window.innerWidth, window.innerHeight], page: document.body.scrollHeight};
})())"""


def _browser() -> str:
    browser = find_browser()
    if browser is None:
        if os.environ.get("CHAOSML_CHROMIUM_REQUIRE") == "1":
            pytest.fail("CHAOSML_CHROMIUM_REQUIRE=1 but no chromium is installed")
        pytest.skip("no chromium installed (apt-get install -y chromium; .ci/test does it as root)")
    return browser


@pytest.mark.parametrize("failing", [1, 6], ids=["one-failure", "six-failures"])
def test_summary_and_timeline_are_on_the_first_screen(tmp_path, failing):
    browser = _browser()
    run = tmp_path / "run"
    run.mkdir()
    write_run(run)
    experiment = experiment_model()
    if failing > 1:  # more failing hypotheses: longer summary lines above the plot
        import dataclasses

        extra = tuple(dataclasses.replace(experiment.hypotheses[0], name=f"available-during-kill-{i}", target=0.99 + i / 1000)
                      for i in range(failing - 1))
        experiment = dataclasses.replace(experiment, hypotheses=(*experiment.hypotheses, *extra))
    analysis = render_report(run, experiment=experiment)
    assert analysis["counts"]["fail"] == failing
    found, png = measure(browser, tmp_path, (run / "report.html").as_uri(), MEASURE, WIDTH, HEIGHT)
    (run / "report-first-screen.png").write_bytes(png)  # for a person: the first screen as the test saw it
    assert found["viewport"] == [WIDTH, HEIGHT] and found["scrolled"] == 0, found
    assert found["loaded"], "the timeline image did not decode"
    summary, timeline = found["summary"], found["timeline"]
    assert 0 <= summary["top"] and summary["bottom"] <= HEIGHT, found
    assert summary["top"] <= timeline["top"] and timeline["bottom"] <= summary["bottom"], found
    assert timeline["height"] >= 450, found  # the plot at a readable size, not shrunk to fit
    assert found["page"] > HEIGHT, found  # the details follow below the first screen
    shot = imread(run / "report-first-screen.png")
    assert shot.shape[:2] == (HEIGHT, WIDTH)
    plot = shot[int(timeline["top"]):int(timeline["bottom"]), :, :3]
    assert (np.abs(plot - 1.0).sum(axis=2) > 0.3).mean() > 0.02, "the timeline area of the screenshot is blank"
