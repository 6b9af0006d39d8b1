"""The Dask cluster the server's index builds run on: one for the app's life, never one a request.

``Cluster.scheduler()`` is what ``model.analysis.index.build`` takes as ``scheduler=``: GATESCOPE_DASK_SCHEDULER
when set (an existing cluster's address, or "sync": in the server's process), else a client of a LocalCluster
started at the first build (``index_workers`` processes on 127.0.0.1, one thread each, no dashboard) and closed
with the app (``close``, from the lifespan's end).
"""

from __future__ import annotations

import logging
import threading
from typing import Any


class Cluster:
    """The app's Dask scheduler, made when first asked for."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address, self.workers = address, workers
        self.client: Any = None  # the LocalCluster's client, once started
        self._cluster: Any = None
        self._lock = threading.Lock()

    def scheduler(self) -> Any:
        """The configured scheduler, else the local cluster's client (started once, by the first build)."""
        if self.address is not None:
            return self.address
        with self._lock:
            if self.client is None:
                import dask
                from distributed import Client, LocalCluster

                from model.analysis.index import QUIET

                with dask.config.set(QUIET):  # no profiler sampling the workers' stacks
                    self._cluster = LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",
                        silence_logs=logging.WARNING,
                    )
                self.client = Client(self._cluster)
            return self.client

    def close(self) -> None:
        """Close the local cluster and its worker processes, if one was started."""
        with self._lock:
            if self.client is not None:
                self.client.close()
                self._cluster.close()
                self.client = self._cluster = None
