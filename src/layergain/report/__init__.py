"""Reports from results alone: figures (PNG + PDF), LaTeX tables, Markdown and self-contained HTML.

- :func:`write_report`: the report of one run (results.nc of ``layergain run``);
- :func:`write_comparison_report`: the cross-set report (comparison.nc of ``layergain compare``);
- :func:`rebuild_report`: either, from the file alone (``layergain report``).

This package never imports torch: a report is rebuilt from results.nc.
"""

from layergain.report.compare_report import write_comparison_report
from layergain.report.backbones_report import write_backbones_report
from layergain.report.configurations_report import write_configurations_report
from layergain.report.rebuild import rebuild_report
from layergain.report.run_report import build_document, write_report

__all__ = ["build_document", "rebuild_report", "write_backbones_report", "write_comparison_report", "write_configurations_report",
           "write_report"]
