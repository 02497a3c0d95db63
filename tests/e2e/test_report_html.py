"""The HTML report of a real run, in a real browser: a small Snakemake pipeline runs
under `opensre run --html`, a second (smaller) one is compared with it, and both
files are opened in headless Chromium with networking cut off. The page must render
without a console error or a request, draw its timeline and charts, and show the
charts of a task selected by clicking it (in the timeline and in the task table)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from cdp import Chromium, chromium_path
from conftest import opensre_cmd
from smk_pipeline import run_pipeline

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DATA = {"ref_len": 800_000, "reads": 20_000}  # a few seconds per run, several samples per job at 0.2 s


def _sizes(c: Chromium) -> dict:
    return c.eval("""(() => {
      const box = (e) => { if (!e) return null; const r = e.getBoundingClientRect(); return [r.width, r.height]; };
      const g = document.getElementById('gantt');
      const px = g.getContext('2d').getImageData(0, 0, g.width, g.height).data;
      let inked = 0;
      for (let k = 0; k < px.length; k += 4) if (px[k + 3] && (px[k] < 200 || px[k + 1] < 200)) inked++;
      return {
        gantt: box(g), axis: box(document.getElementById('gantt-axis')), gantt_inked: inked,
        charts: [...document.querySelectorAll('#charts .chart')].map((d) => ({ id: d.id,
          uplot: box(d.querySelector('.uplot canvas')), empty: !!d.querySelector('.empty') })),
        title: document.getElementById('sel-title').textContent,
        task_rows: document.querySelectorAll('#task-table tbody tr.clickable').length,
        proc_rows: document.querySelectorAll('#proc-table tbody tr').length,
        tune: document.getElementById('tune-body').textContent,
        compare_rows: document.querySelectorAll('#compare-table tr').length,
        compare_hidden: document.getElementById('compare').hidden,
      };
    })()""")


def _shown(c: Chromium) -> dict:
    """The selected task's charts: every one drawn, none empty."""
    s = _sizes(c)
    assert len(s["charts"]) == 4
    for ch in s["charts"]:
        assert not ch["empty"] and ch["uplot"] and ch["uplot"][0] > 100 and ch["uplot"][1] > 50, ch
    return s


def _clean(c: Chromium, url: str) -> None:
    assert c.errors() == []
    assert c.requests() == [url], "the page fetched something besides itself"
    assert not [e for e in c.events if e["method"] == "Network.loadingFailed" and "file://" not in str(e)]


def test_report_html(tmp_path, store):
    if not chromium_path():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    a_html, cmp_html = tmp_path / "a.html", tmp_path / "cmp.html"
    p = run_pipeline(tmp_path / "a", store, "--name", "smk-a", "--interval", "0.2", "--html", str(a_html), **DATA)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "report of run" in p.stderr and a_html.stat().st_size > 50_000
    p = run_pipeline(tmp_path / "b", store, "--name", "smk-b", "--interval", "0.2", samples=["S1", "S2"], **DATA)
    assert p.returncode == 0, p.stderr[-3000:]
    r = subprocess.run(opensre_cmd() + ["report", "smk-b", "--compare", "smk-a", "--store", str(store),
                                        "-o", str(cmp_html)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    t = subprocess.run(opensre_cmd() + ["tune", "smk-a", "--store", str(store), "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    assert t.returncode == 0, t.stderr
    tuned = json.loads(t.stdout)

    # self-contained: nothing is referenced by URL (uPlot's SVG namespace string is no fetch)
    page = a_html.read_text()
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=""", page)
    assert "uPlot" in page and 'id="report-data"' in page

    with Chromium() as c:
        url = a_html.as_uri()
        c.open_offline(url)
        c.wait_for("document.body.dataset.ready === '1'")
        s = _shown(c)  # the task with the most CPU is selected at load
        assert s["gantt"][0] > 800 and s["gantt"][1] > 200 and s["axis"][1] > 10
        assert s["gantt_inked"] > 2000, "the timeline drew (almost) nothing"
        assert s["task_rows"] >= 2 + 5 * 3 and s["proc_rows"] > 10
        # tune ran for this finished run (no "tune unavailable"), and the page shows what
        # `opensre tune --format json` (another path through the CLI) says of the same run
        assert c.eval("document.getElementById('tune-unavailable')") is None, s["tune"]
        assert f"Recommendations ({len(tuned['recommendations'])})" in s["tune"], (s["tune"], tuned)
        assert f"Findings ({len(tuned['findings'])}" in s["tune"], (s["tune"], tuned)
        for rec in tuned["recommendations"]:
            assert rec["task_type"] in s["tune"], rec

        # click a task's row in the timeline (the label column: every row is clickable there)
        tasks = c.eval("opensreReport.data.tasks.map((t, i) => [i, t[0], t[3], opensreReport.data.series[i] !== null])")
        pick = [t for t in tasks if t[2] == "task" and t[3] and not s["title"].startswith(t[1] + " ")]
        assert len(pick) >= 2, tasks
        i, tid = pick[0][0], pick[0][1]
        c.eval("document.getElementById('timeline').scrollIntoView()")
        y_row = c.eval(f"""(() => {{ const sc = document.getElementById('gantt-scroll');
            sc.scrollTop = opensreReport.rowOfTask({i}) * opensreReport.rowHeight; return sc.scrollTop; }})()""")
        c.pump(0.2)
        rect = c.eval("(() => { const r = document.getElementById('gantt').getBoundingClientRect(); return [r.left, r.top]; })()")
        row_y = c.eval(f"opensreReport.rowOfTask({i})") * 18 - y_row
        c.click(rect[0] + 60, rect[1] + row_y + 9)
        c.pump(0.3)
        s = _shown(c)
        assert s["title"].startswith(tid + " "), (tid, s["title"])

        # click another task in the task table
        j, tid2 = pick[1][0], pick[1][1]
        xy = c.eval(f"""(() => {{ const td = [...document.querySelectorAll('#task-table tbody td')].find((d) => d.textContent === {tid2!r});
            td.scrollIntoView({{block: 'center'}}); const r = td.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        c.pump(0.2)
        c.click(*xy)
        c.pump(0.3)
        s = _shown(c)
        assert s["title"].startswith(tid2 + " "), (tid2, s["title"])
        assert c.eval("document.querySelector('#task-table tr.sel td').textContent") == tid2

        # the process table filters
        c.eval("(() => { const f = document.getElementById('proc-filter'); f.value = 'bwa'; f.dispatchEvent(new Event('input')); })()")
        shown = c.eval("[...document.querySelectorAll('#proc-table tbody tr')].filter((r) => r.children.length > 1)"
                       ".map((r) => r.children[2].textContent + ' ' + r.children[3].textContent)")
        assert shown and len(shown) < s["proc_rows"] and all("bwa" in x for x in shown), shown
        assert any(x.startswith("bwa ") for x in shown)

        _clean(c, url)
        c.eval("(() => { const d = opensreReport.data, ts = d.tasks.map((t, i) => [t[7], i, t[3]]).filter(([, i, k]) => d.series[i] && k === 'task');"
               " ts.sort((a, b) => b[0] - a[0]); opensreReport.select(ts[0][1]); window.scrollTo(0, 0); })()")
        ARTIFACTS.mkdir(exist_ok=True)
        c.screenshot(ARTIFACTS / "report.png", height=2200)

    with Chromium() as c:  # the comparison
        url = cmp_html.as_uri()
        c.open_offline(url)
        c.wait_for("document.body.dataset.ready === '1'")
        s = _sizes(c)
        assert not s["compare_hidden"] and s["compare_rows"] >= 1 + 1 + 7  # header, whole run, one per rule type
        counts = c.eval("[...document.querySelectorAll('#compare-table tr')].slice(1).map((r) => [...r.children].slice(0, 3).map((d) => d.textContent))")
        align = [r for r in counts if r[0] == "align"]  # named by its rule (Snakemake's own job records)
        assert align == [["align", "2", "3"]], counts  # A = smk-b (2 samples), B = smk-a (3)
        _clean(c, url)
