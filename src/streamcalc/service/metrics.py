"""The Prometheus metrics of /metrics, built at each scrape from the same sources as the API:
the catalog (status, audit), the workers' committed counts (`Activity`), the source offsets
and the state stores. Nothing is kept in process, so several apps in one process (tests)
and a restarted service answer alike, and the workers' numbers are in.

Labels are org, pipeline, stage, topic, partition and status: never an assetId or pointId,
whose number is unbounded. A scrape sees the pipelines of the orgs it may see (`orgs`).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamcalc import __version__
from streamcalc.catalog import Catalog, PipelineRecord
from streamcalc.runtime.stats import CHECKPOINT_BUCKETS
from streamcalc.service.activity import Activity
from streamcalc.service.pipelines import PipelineService

_P = ["org", "pipeline"]
_PYTHON = platform.python_version()
STATUSES = ("DRAFT", "PUBLISHED", "RUNNING", "PAUSED", "STOPPED", "RUN_ERROR")
_ACTIVE = ("RUNNING", "PAUSED", "RUN_ERROR")
"""Statuses whose pipelines have offsets and state worth reporting (a stop clears both)."""


def exposition(
    catalog: Catalog, pipelines: PipelineService, activity: Activity, orgs: Iterable[str]
) -> bytes:
    """The Prometheus text format for the pipelines of `orgs`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(catalog, pipelines, activity, list(orgs)))
    return generate_latest(registry)


class _Collector(Collector):
    def __init__(
        self, catalog: Catalog, pipelines: PipelineService, activity: Activity, orgs: list[str]
    ) -> None:
        self._catalog = catalog
        self._pipelines = pipelines
        self._activity = activity
        self._orgs = orgs

    def collect(self) -> Iterator[Metric]:
        build = InfoMetricFamily(
            "streamcalc_build", "streamcalc's version", value={"version": __version__, "python": _PYTHON}
        )
        info = InfoMetricFamily("streamcalc_pipeline", "Each pipeline's name", labels=_P)
        status = GaugeMetricFamily(
            "streamcalc_pipeline_status",
            "1 for the pipeline's status, 0 for the others",
            labels=[*_P, "status"],
        )
        flows = {
            key: CounterMetricFamily(f"streamcalc_records_{key}", text, labels=[*_P, "stage"])
            for key, text in (
                ("in", "Records that reached the stage, committed"),
                ("out", "Records the stage passed on (a destination: wrote), committed"),
                ("rejected", "Records the stage refused (error lane or discarded), committed"),
            )
        }
        checkpoints = HistogramMetricFamily(
            "streamcalc_checkpoint_duration_seconds", "Commits of state and offsets, by duration", labels=_P
        )
        lag = GaugeMetricFamily(
            "streamcalc_consumer_lag_records",
            "Records in a source partition after the pipeline's committed offset",
            labels=[*_P, "topic", "partition"],
        )
        keys = GaugeMetricFamily(
            "streamcalc_state_keys", "(asset, point) keys holding state", labels=[*_P, "stage"]
        )
        workers = GaugeMetricFamily("streamcalc_workers", "Worker processes alive", labels=_P)
        restarts = GaugeMetricFamily(
            "streamcalc_worker_restarts", "Worker restarts since the pipeline was last started", labels=_P
        )
        deleted = CounterMetricFamily(
            "streamcalc_state_deleted_keys", "Keys of stage state deleted (audit log)", labels=[*_P, "stage"]
        )
        restored = CounterMetricFamily(
            "streamcalc_state_restored_keys",
            "Keys of stage state restored (audit log)",
            labels=[*_P, "stage"],
        )
        for org in self._orgs:
            for record in self._pipelines.every_pipeline(org):
                labels = [org, record.pipeline_id]
                info.add_metric(labels, {"name": record.name})
                for s in STATUSES:
                    status.add_metric([*labels, s], 1 if record.status == s else 0)
                self._flows(record, labels, flows, checkpoints)
                if record.status in _ACTIVE:
                    for p in self._activity.offsets(record):
                        lag.add_metric([*labels, p.topic, str(p.partition)], p.lag)
                    for stage, n in self._activity.state_keys(record).items():
                        keys.add_metric([*labels, stage], n)
                    w = self._activity.workers(record.pipeline_id)
                    workers.add_metric(labels, sum(1 for pid in w["pids"] if pid is not None))
                    restarts.add_metric(labels, w["restarts"])
            self._audit(org, deleted, restored)
        yield from (build, info, status, *flows.values(), checkpoints, lag, keys, workers, restarts)
        yield from (deleted, restored)

    def _flows(
        self,
        record: PipelineRecord,
        labels: list[str],
        flows: dict[str, CounterMetricFamily],
        checkpoints: HistogramMetricFamily,
    ) -> None:
        stats = self._activity.stats(record.pipeline_id)
        for stage, c in sorted(stats.stages.items()):
            flows["in"].add_metric([*labels, stage], c.records_in)
            flows["out"].add_metric([*labels, stage], c.records_out)
            flows["rejected"].add_metric([*labels, stage], c.rejected)
        bounds = [*(str(b) for b in CHECKPOINT_BUCKETS), "+Inf"]
        cumulative = list(accumulate(stats.checkpoint_buckets))
        checkpoints.add_metric(labels, list(zip(bounds, cumulative, strict=True)), stats.checkpoint_seconds)

    def _audit(self, org: str, deleted: CounterMetricFamily, restored: CounterMetricFamily) -> None:
        sums: dict[tuple[str, str, str], int] = {}
        for e in self._catalog.audit_log(org):
            if e.pipeline_id is None or e.action not in _AUDITED:
                continue
            key = (e.action, e.pipeline_id, str(e.detail.get("stage")))
            sums[key] = sums.get(key, 0) + int(e.detail.get(_AUDITED[e.action], 0))
        for (action, pipeline_id, stage), n in sorted(sums.items()):
            family = deleted if action == "deleteStageState" else restored
            family.add_metric([org, pipeline_id, stage], n)


_AUDITED = {"deleteStageState": "keysDeleted", "restoreStageState": "keysRestored"}
"""Audited actions counted, and the detail field that holds their keys."""
