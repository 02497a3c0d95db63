"""`opensre report`: one self-contained HTML file for a stored run.

Two halves: `report_data()` (report/data.py) reads the store and prepares a plain
dict (capped, downsampled, compact rows), `render_html()` (report/page.py) inlines
that dict as JSON together with the page's script and styles. The page needs no
network: everything it shows is in the file. The rows and the flag bits they carry
are in report/rows.py, the time series in report/series.py, the comparison in
report/compare.py. This module is the entry point the CLI and the tests import.
"""

from __future__ import annotations

from .compare import compare_rows, task_type
from .data import Progress, ReportLimits, report_data
from .page import ReportFile, render_html, write_report
from .rows import F_FAILED, F_OOM, F_PARTIAL, F_RUNNING, F_TRUNCATED, select_processes
from .series import SERIES, SERIES_COLS, bucket_plan, downsample

__all__ = ["ReportLimits", "report_data", "render_html", "write_report", "downsample", "compare_rows",
           "select_processes", "task_type", "bucket_plan", "ReportFile", "Progress", "SERIES", "SERIES_COLS",
           "F_RUNNING", "F_PARTIAL", "F_OOM", "F_FAILED", "F_TRUNCATED"]
