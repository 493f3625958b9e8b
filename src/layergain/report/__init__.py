"""Reports from results alone: figures, LaTeX tables, Markdown and self-contained HTML.

This package never imports torch: a report is rebuilt from results.nc.
"""

from layergain.report.run_report import build_document, write_report

__all__ = ["write_report", "build_document"]
