"""Reports from results alone: figures, LaTeX tables, Markdown and self-contained HTML.

This package never imports torch: a report is rebuilt from results.nc.
"""

from layergain.report.compare_report import write_comparison_report
from layergain.report.run_report import build_document, write_report

__all__ = ["write_report", "build_document", "write_comparison_report"]
