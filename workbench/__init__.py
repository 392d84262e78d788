"""The workbench: the web application where engineers curate images and reviewers judge models.

It reads what every stage wrote to the catalog and starts flows through Prefect's API, so it sits above
``flows`` and below ``cli`` (``aoi web`` starts it)."""
