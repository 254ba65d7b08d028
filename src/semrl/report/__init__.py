"""`semrl report RUN_DIR`: results.json, summary.md, report.html (self-contained) and figures/*.png."""

from semrl.report.build import build_report

__all__ = ["build_report"]
