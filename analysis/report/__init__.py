"""One self-contained HTML page per run and per sweep.

- :func:`write_report` writes ``RUN_DIR/report.html``: the run's config, training curves, the
  set-size curve against people, every analysis figure with its caption, and the metrics and
  analysis results as tables. ``python -m analysis RUN_DIR`` calls it at its end.
- :func:`write_sweep_report` writes ``SWEEP_DIR/sweep_report.html``: the sortable results table,
  the sweep's figures and links to each trial's report.
- ``python -m analysis.report RUN_DIR|SWEEP_DIR`` does either from existing results.

Figures are embedded as base64 PNGs and the page fetches nothing, so it opens offline and can be
shared as one file. Captions live in :data:`analysis.report.captions.CAPTIONS`.
"""

from analysis.report.captions import CAPTIONS, Caption, caption_for
from analysis.report.run_report import REPORT_FILE, ReportError, write_report
from analysis.report.sweep_report import SWEEP_REPORT_FILE, is_sweep_dir, write_sweep_report

__all__ = [
    "CAPTIONS",
    "Caption",
    "caption_for",
    "REPORT_FILE",
    "SWEEP_REPORT_FILE",
    "ReportError",
    "is_sweep_dir",
    "write_report",
    "write_sweep_report",
]
