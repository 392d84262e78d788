"""The promote run's artifacts link the reviewer to the workbench over http: the model page and the HTML reports
under AOI_HOME/reports (which the Prefect UI cannot open as file:// links)."""

from __future__ import annotations


def test_reports_are_linked_through_the_workbench_and_other_files_as_files(configure, tmp_path):
    from flows.promote import _report_link

    settings = configure(WORKBENCH__PUBLIC_URL="https://aoi.example.org/wb/")
    report = settings.reports_dir / "evaluations" / "eval-7" / "index.html"
    assert _report_link(settings, report) == "https://aoi.example.org/wb/reports/evaluations/eval-7/index.html"
    odd = settings.reports_dir / "evaluations" / "a b#c" / "index.html"
    assert _report_link(settings, odd).endswith("/reports/evaluations/a%20b%23c/index.html")
    outside = tmp_path / "elsewhere" / "index.html"
    assert _report_link(settings, outside) == outside.resolve().as_uri()
    default = configure(WORKBENCH__PUBLIC_URL="", WORKBENCH__PORT=8211)
    assert _report_link(default, report).startswith("http://127.0.0.1:8211/reports/")
