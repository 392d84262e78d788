"""The service's Prometheus metrics (``GET /metrics``), with labels from a fixed set.

BentoML's own traffic middleware labels every request with its raw path, before any middleware of the service
runs: each unknown path anyone requests adds series that live as long as the process. It is switched off
(``metrics={"enabled": False}`` on the service) and these take its place: the route label is one of ``ROUTES`` or
``other``, the method one of ``METHODS`` or ``OTHER``, the status a number, so the series are bounded whatever
is requested.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Every route the service answers, with its methods; anything else is answered 404 / 405 by the guard.
ROUTES = {
    "/classify": ("POST",),
    "/feedback": ("POST",),
    "/model": ("GET", "HEAD"),
    "/machine_params": ("GET", "HEAD"),
    "/healthz": ("GET", "HEAD"),
    "/livez": ("GET", "HEAD"),
    "/readyz": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/": ("GET", "HEAD"),
    "/docs.json": ("GET", "HEAD"),
    "/schema.json": ("GET", "HEAD"),
}
STATIC_PREFIX = "/static_content/"
METHODS = ("GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def route_of(path: str) -> str:
    if path in ROUTES:
        return path
    return "/static_content" if path.startswith(STATIC_PREFIX) else "other"


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aoi_http_requests",
            "Requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "aoi_http_request_duration_seconds", "Time to answer, by route", ["route"], registry=self.registry
        )
        self.in_progress = Gauge(
            "aoi_http_requests_in_progress", "Requests being answered, by route", ["route"], registry=self.registry
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(route, method, str(status if 100 <= status < 600 else 0)).inc()
        self.seconds.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
