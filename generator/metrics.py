"""What the generator service is doing: queue depth, batch sizes, latency percentiles, images/s.

One in-process record serves both ``/stats`` and, when asked for, a Prometheus
endpoint (a collector that reads the record at scrape time, so nothing is
counted twice).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


@dataclass
class ServiceMetrics:
    started: float = field(default_factory=time.monotonic)
    images: int = 0
    requests: int = 0
    failed: int = 0
    rejected: int = 0
    queue_rows: int = 0
    queue_requests: int = 0
    in_flight: int = 0  # faces in the batch the worker is drawing now
    encoding_rows: int = 0  # faces drawn whose files (PNG, GIF) are being or waiting to be encoded
    latencies: deque = field(default_factory=lambda: deque(maxlen=2048))  # seconds, enqueue -> result
    batch_sizes: Counter = field(default_factory=Counter)
    recent: deque = field(default_factory=lambda: deque(maxlen=4096))  # (time, images) of finished batches

    def faces_done(self, rows: int) -> None:
        self.images += rows
        self.recent.append((time.monotonic(), rows))

    def batch_done(self, rows: int) -> None:
        self.faces_done(rows)
        self.batch_sizes[rows] += 1

    def images_per_second(self, span: float = 60.0) -> float:
        now = time.monotonic()
        recent = [(t, n) for t, n in self.recent if now - t <= span]
        if not recent:
            return 0.0
        return sum(n for _, n in recent) / max(1e-3, min(span, now - self.started))

    def summary(self) -> dict[str, float]:
        lat = list(self.latencies)
        batches = sum(self.batch_sizes.values())
        return {
            "queue_rows": self.queue_rows, "queue_requests": self.queue_requests, "in_flight": self.in_flight,
            "encoding_rows": self.encoding_rows,
            "requests": self.requests, "failed": self.failed, "rejected": self.rejected, "images": self.images,
            "batches": batches, "mean_batch": (self.images / batches) if batches else 0.0,
            "latency_p50_ms": 1000 * percentile(lat, 50), "latency_p90_ms": 1000 * percentile(lat, 90),
            "latency_p99_ms": 1000 * percentile(lat, 99), "images_per_s_1m": self.images_per_second(),
        }

    def text(self) -> str:
        s = self.summary()
        return (f"queue {s['queue_requests']} requests ({s['queue_rows']} faces) · "
                f"mean batch {s['mean_batch']:.1f} · latency p50 {s['latency_p50_ms']:.0f} ms, "
                f"p99 {s['latency_p99_ms']:.0f} ms · {s['images_per_s_1m']:.1f} faces/s (1 min) · "
                f"{s['requests']} requests, {s['failed']} failed, {s['rejected']} turned away")


def serve_prometheus(metrics: ServiceMetrics, port: int, addr: str = "127.0.0.1") -> None:
    """Expose the record on http://addr:port/metrics (needs the ``metrics`` extra: prometheus-client)."""
    from prometheus_client import REGISTRY, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def collect(self):
            s = metrics.summary()
            yield GaugeMetricFamily("moebot_generator_queue_requests", "Requests waiting", value=s["queue_requests"])
            yield GaugeMetricFamily("moebot_generator_queue_faces", "Faces waiting", value=s["queue_rows"])
            yield CounterMetricFamily("moebot_generator_images", "Faces drawn", value=s["images"])
            yield CounterMetricFamily("moebot_generator_requests", "Requests answered", value=s["requests"])
            yield CounterMetricFamily("moebot_generator_failed", "Requests failed", value=s["failed"])
            yield CounterMetricFamily("moebot_generator_rejected", "Requests turned away", value=s["rejected"])
            yield GaugeMetricFamily("moebot_generator_mean_batch", "Mean faces per batch", value=s["mean_batch"])
            yield GaugeMetricFamily("moebot_generator_images_per_second", "Faces/s over 1 min",
                                    value=s["images_per_s_1m"])
            lat = GaugeMetricFamily("moebot_generator_latency_seconds", "Latency percentiles", labels=["quantile"])
            for q in (50, 90, 99):
                lat.add_metric([f"0.{q}"], s[f"latency_p{q}_ms"] / 1000)
            yield lat

    REGISTRY.register(Collector())
    start_http_server(port, addr=addr)
