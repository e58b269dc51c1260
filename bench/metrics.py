"""Reading fetchd's GET /metrics (Prometheus text format) and the figures bench/run derives from
it and from the jobs table: counter increments, histogram quantiles, exact percentiles, and the
steady completion rate of a burst of runs sampled over time."""

from __future__ import annotations

import http.client
import math
import re
import time
from dataclasses import dataclass, field

from harness import HTTP_TIMEOUT, BenchError

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Sample:
    """What one GET /metrics said, as {(name, ((label, value), ...)): value}."""

    values: dict = field(default_factory=dict)
    at: float = 0.0  # time.time() when it was read

    def get(self, name: str, default: float | None = None, **labels) -> float | None:
        return self.values.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name: str) -> float:
        """The sum of a metric over all its label sets (e.g. runs of every status)."""
        return sum(v for (n, _), v in self.values.items() if n == name)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out = {}
        for (n, labels), v in self.values.items():
            if n == name:
                out[dict(labels).get(label, "")] = out.get(dict(labels).get(label, ""), 0) + v
        return out

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """A histogram's (le, cumulative count), ascending, +Inf last."""
        return sorted(
            (float(dict(labels)["le"]), v)
            for (n, labels), v in self.values.items()
            if n == f"{name}_bucket"
        )

    # fetchd's run counters, all statuses: a run counts once its record is committed.
    @property
    def runs(self) -> float:
        return self.total("fetchd_runs_total")

    @property
    def bad_runs(self) -> float:
        return sum(v for s, v in self.by_label("fetchd_runs_total", "status").items()
                   if s != "succeeded")


def parse(text: str, at: float = 0.0) -> Sample:
    sample = Sample(at=at)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = tuple(sorted(_LABEL.findall(match.group(2) or "")))
        try:
            sample.values[(match.group(1), labels)] = float(match.group(3))
        except ValueError:
            continue
    return sample


def scrape(port: int, timeout: float = HTTP_TIMEOUT) -> Sample:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode()
        if response.status != 200:
            raise BenchError(f"GET /metrics on port {port}: {response.status}: {text[:300]}")
    except OSError as e:
        raise BenchError(f"GET /metrics on port {port}: {e}") from e
    finally:
        conn.close()
    return parse(text, time.time())


def merge(samples: list[Sample]) -> Sample:
    """One sample summing several processes' metrics (e.g. every worker's runs)."""
    merged = Sample(at=max(s.at for s in samples))
    for sample in samples:
        for key, value in sample.values.items():
            merged.values[key] = merged.values.get(key, 0.0) + value
    return merged


def scrape_all(ports: list[int]) -> Sample:
    return merge([scrape(port) for port in ports])


def histogram_quantile(before: Sample, after: Sample, name: str, q: float) -> float | None:
    """The q-quantile (seconds) of what a histogram observed between two samples, interpolated
    linearly within its bucket as Prometheus' histogram_quantile does; inf past the last bucket."""
    b0 = dict(before.buckets(name))
    deltas = [(le, count - b0.get(le, 0.0)) for le, count in after.buckets(name)]
    if not deltas or deltas[-1][1] <= 0:
        return None
    rank = q * deltas[-1][1]
    lower, below = 0.0, 0.0
    for le, count in deltas:
        if count >= rank:
            if math.isinf(le):
                return math.inf
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (le - lower) * share
        lower, below = le, count
    return None


def percentile(sorted_values, q: float):
    """The nearest-rank q-percentile (0 < q <= 1) of an ascending sequence; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Burst:
    due: float  # when the burst was due (unix seconds)
    runs: float  # runs completed until the next burst was due
    steady_rate: float | None  # runs/s between 10 % and 90 % of them
    drain_s: float | None  # from the due time until the last of them completed


def _crossing(samples: list[tuple[float, float]], value: float) -> float | None:
    """The time at which a non-decreasing sampled counter reached `value`, interpolated."""
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if c0 < value <= c1:
            return t0 + (t1 - t0) * (value - c0) / (c1 - c0)
    return None


def _counter_at(samples: list[tuple[float, float]], t: float) -> float:
    """The counter's value at time t, interpolated between the samples around it."""
    if t <= samples[0][0]:
        return samples[0][1]
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t0 <= t <= t1:
            return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 1.0)
    return samples[-1][1]


def bursts(samples: list[tuple[float, float]], dues: list[float], period: float,
           low: float = 0.1, high: float = 0.9) -> list[Burst]:
    """Splits a sampled run counter [(unix time, runs)] into bursts due at `dues` (each lasting
    until the next is due, `period` s later) and gives each its steady completion rate: the runs
    completed between `low` and `high` of the burst, over the time that took. The ramp-up (the
    first fetches, connections being opened) and the tail (the last stragglers) are left out."""
    out = []
    for due in dues:
        start, end = _counter_at(samples, due), _counter_at(samples, due + period)
        n = end - start
        if n <= 0:
            out.append(Burst(due, 0, None, None))
            continue
        t_low = _crossing(samples, start + low * n)
        t_high = _crossing(samples, start + high * n)
        t_last = _crossing(samples, end - 0.5)
        steady = t_low is not None and t_high is not None and t_high > t_low
        rate = (high - low) * n / (t_high - t_low) if steady else None
        out.append(Burst(due, n, rate, t_last - due if t_last is not None else None))
    return out


class Sampler:
    """Samples fetchd's run counter (summed over the processes at `ports`) every `interval`
    s, by polling in the calling thread (sample_until), and keeps the peaks of the gauges that
    say where runs wait: the broker's queue (one queue, as every process sees it) and the
    fetches in flight (summed)."""

    def __init__(self, ports: list[int], interval: float = 0.02):
        self.ports = ports
        self.interval = interval
        self.points: list[tuple[float, float]] = []
        self.first: Sample | None = None
        self.last: Sample | None = None
        self.peak_queue = 0.0
        self.peak_fetching = 0.0

    def sample_until(self, deadline: float, alive=None) -> None:
        """Polls until time.time() >= deadline; `alive()` (optional) is checked every 100
        samples and may raise when a process died."""
        next_at = time.time()
        n = 0
        while True:
            now = time.time()
            if now >= deadline:
                break
            if now < next_at:
                time.sleep(next_at - now)
            each = [scrape(port) for port in self.ports]
            sample = merge(each)
            self.peak_queue = max(self.peak_queue, each[0].get("fetchd_queue_depth", 0) or 0)
            self.peak_fetching = max(self.peak_fetching,
                                     sample.get("fetchd_fetches_in_flight", 0) or 0)
            if self.first is None:
                self.first = sample
            self.last = sample
            self.points.append((sample.at, sample.runs))
            next_at += self.interval
            n += 1
            if alive is not None and n % 100 == 0:
                alive()
