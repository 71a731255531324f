"""The read side over the gateway, with the method names and results of the embedded
`Queries`, so the Client reads the same objects whichever mode it is in."""

from __future__ import annotations

from collections.abc import Sequence

from ledgerflow.events.entities import (
    Experiment,
    FileInfo,
    Metric,
    MetricSeries,
    PagedList,
    Run,
    RunInfo,
)
from ledgerflow.events.errors import NotFound
from ledgerflow.remote.channel import Channel, seg


class RemoteQueries:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    # experiments -------------------------------------------------------------------------
    def get_experiment(self, experiment_id: str) -> Experiment:
        from ledgerflow.services.gateway.schemas import ExperimentOut

        doc = self._ch.call("GET", f"/experiments/{seg(experiment_id)}")
        return ExperimentOut.model_validate(doc).entity()

    def find_experiment(self, experiment_id: str) -> Experiment | None:
        try:
            return self.get_experiment(experiment_id)
        except NotFound:
            return None

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        from ledgerflow.services.gateway.schemas import ExperimentOut

        try:
            doc = self._ch.call("GET", "/experiments/by-name", params={"name": name})
        except NotFound:
            return None
        return ExperimentOut.model_validate(doc).entity()

    def experiment_ids(self, refs: Sequence[str]) -> list[str]:
        """The ids of the experiments `refs` name, each by id or else by name."""
        ids = []
        for ref in map(str, refs):
            if self.find_experiment(ref) is not None:
                ids.append(ref)
                continue
            exp = self.get_experiment_by_name(ref)
            if exp is None:
                raise NotFound(f"no experiment with id or name {ref!r}", kind="experiment", key=ref)
            ids.append(exp.experiment_id)
        return ids

    def search_experiments(
        self,
        view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        from ledgerflow.services.gateway.schemas import ExperimentOut

        docs = self._ch.call(
            "GET",
            "/experiments",
            params={
                "view_type": view_type,
                "max_results": max_results,
                "filter": filter_string,
                "order_by": list(order_by) if order_by else None,
            },
        )
        return [ExperimentOut.model_validate(d).entity() for d in docs]

    # runs ----------------------------------------------------------------------------------
    def get_run_info(self, run_id: str) -> RunInfo:
        from ledgerflow.services.gateway.schemas import RunInfoOut

        return RunInfoOut.model_validate(self._ch.call("GET", f"/runs/{seg(run_id)}/info")).entity()

    def find_run_info(self, run_id: str) -> RunInfo | None:
        try:
            return self.get_run_info(run_id)
        except NotFound:
            return None

    def get_run(self, run_id: str) -> Run:
        from ledgerflow.services.gateway.schemas import RunOut

        return RunOut.model_validate(self._ch.call("GET", f"/runs/{seg(run_id)}")).entity()

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        by_name: bool = False,
    ) -> PagedList[Run]:
        from ledgerflow.services.gateway.schemas import RunPage

        if by_name:  # the gateway's search takes ids
            experiment_ids = self.experiment_ids(experiment_ids)
        doc = self._ch.call(
            "POST",
            "/runs/search",
            idempotent=True,
            json={
                "experiment_ids": [str(e) for e in experiment_ids],
                "filter": filter_string,
                "run_view_type": run_view_type,
                "max_results": max_results,
                "order_by": list(order_by) if order_by else None,
                "page_token": page_token,
            },
        )
        page = RunPage.model_validate(doc)
        return PagedList([r.entity() for r in page.runs], page.next_page_token)

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]:
        from ledgerflow.services.gateway.schemas import MetricHistoryOut

        doc = self._ch.call(
            "GET",
            f"/runs/{seg(run_id)}/metrics/history",
            params={"key": key, "max_points": max_points},
        )
        return MetricHistoryOut.model_validate(doc).entity()

    def get_metric_series(
        self,
        series: Sequence[tuple[str, str]],
        points: int = 1000,
        x: str = "step",
        start: int | None = None,
        end: int | None = None,
    ) -> list[MetricSeries]:
        from ledgerflow.services.gateway.schemas import MetricSeriesOut, SeriesPage

        if len(series) == 1:  # the GET route: cacheable, and what the UI calls for one chart
            run_id, key = series[0]
            doc = self._ch.call(
                "GET",
                f"/runs/{seg(run_id)}/metrics/series",
                params={"key": key, "points": points, "x": x, "start": start, "end": end},
            )
            return [MetricSeriesOut.model_validate(doc).entity()]
        doc = self._ch.call(
            "POST",
            "/metrics/series",
            idempotent=True,
            json={
                "series": [{"run_id": r, "key": k} for r, k in series],
                "points": points,
                "x": x,
                "start": start,
                "end": end,
            },
        )
        return [s.entity() for s in SeriesPage.model_validate(doc).series]

    # artifacts -----------------------------------------------------------------------------
    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        from ledgerflow.services.gateway.schemas import FileInfoOut

        docs = self._ch.call("GET", f"/runs/{seg(run_id)}/artifacts", params={"path": path})
        return [FileInfoOut.model_validate(d).entity() for d in docs]

    def artifact_entries(self, run_id: str) -> dict[str, tuple[int, str]]:
        from ledgerflow.services.gateway.schemas import StoredFileOut

        docs = self._ch.call("GET", f"/runs/{seg(run_id)}/artifacts/entries")
        files = [StoredFileOut.model_validate(d) for d in docs]
        return {f.path: (f.size, f.sha256) for f in files}
