"""Running lists of Dask tasks on a local scheduler or a ``dask.distributed`` cluster, with progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from hmgdm_core.errors import InputError

__all__ = ["LOCAL_SCHEDULERS", "Progress", "StageProgress", "TaskRunner"]

LOCAL_SCHEDULERS = ("threads", "processes", "sync", "cluster")
"""Local Dask schedulers (``'cluster'``: a ``dask.distributed.LocalCluster`` started for the run); anything
with ``://`` is the address of a running ``dask.distributed`` scheduler."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``."""

StageProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: the batch functions name their stage (e.g. ``'slides'``, ``'patches'``)."""


class TaskRunner:
    """Computes ``dask.delayed`` tasks; one pool or client is kept open for the whole batch.

    Use it as a context manager: entering starts the process pool or connects the client,
    leaving closes it.

    Parameters
    ----------
    scheduler : str
        ``'threads'``, ``'processes'``, ``'sync'`` (one at a time, for debugging), ``'cluster'``
        (a ``dask.distributed.LocalCluster`` of worker processes, started on entering and closed
        on leaving), or the address of a running ``dask.distributed`` scheduler such as
        ``'tcp://10.0.0.1:8786'``.
    workers : int, optional
        Threads or processes of a local scheduler or worker processes of ``'cluster'`` (default:
        one per CPU core); ignored for a running cluster, whose workers are set where it is started.
    """

    def __init__(self, scheduler: str = "threads", workers: int | None = None) -> None:
        if scheduler not in LOCAL_SCHEDULERS and "://" not in scheduler:
            raise InputError(f"scheduler must be one of {LOCAL_SCHEDULERS} or an address like tcp://host:8786, "
                             f"got {scheduler!r}")
        if workers is not None and workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        self.scheduler = scheduler
        self.workers = workers
        self._pool: Any = None
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> TaskRunner:
        if "://" in self.scheduler:
            from distributed import Client

            try:
                self._client = Client(self.scheduler, timeout="20s")
            except OSError as error:
                raise InputError(f"cannot reach the Dask scheduler at {self.scheduler} ({error}): start it with "
                                 "`dask scheduler` and `dask worker ADDRESS`, or leave --scheduler out") from None
        elif self.scheduler == "cluster":
            import os

            from distributed import Client, LocalCluster

            # One thread per worker process: graph building holds the GIL in places, and torch/BLAS
            # threads inside each worker would oversubscribe the cores.
            self._cluster = LocalCluster(n_workers=self.workers or os.cpu_count(), threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        elif self.scheduler == "processes":
            import multiprocessing
            import os
            from concurrent.futures import ProcessPoolExecutor

            # Spawned, not forked: forking a process that holds torch's thread pools can deadlock.
            self._pool = ProcessPoolExecutor(self.workers or os.cpu_count(), multiprocessing.get_context("spawn"))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def compute(self, tasks: Sequence[Any], progress: Progress | None = None) -> list:
        """Results of ``tasks`` (``dask.delayed`` objects), in order.

        Parameters
        ----------
        tasks : sequence of Delayed
            Independent tasks.
        progress : callable, optional
            Called as ``progress(done, len(tasks))`` as each task finishes. An exception it
            raises stops the computation and propagates (how a GUI cancels).

        Returns
        -------
        list
            One result per task. The first task exception is raised.
        """
        import dask

        total = len(tasks)
        if not total:
            return []
        if self._client is not None:
            from distributed import as_completed

            futures = self._client.compute(list(tasks))
            try:
                for done, _ in enumerate(as_completed(futures), start=1):
                    if progress is not None:
                        progress(done, total)
                return self._client.gather(futures)
            finally:
                self._client.cancel(futures)
        options: dict[str, Any] = {"scheduler": self.scheduler}
        if self._pool is not None:
            options["pool"] = self._pool
        elif self.scheduler == "threads" and self.workers is not None:
            options["num_workers"] = self.workers
        if progress is None:
            return list(dask.compute(*tasks, **options))
        from dask.callbacks import Callback

        keys = {t.key for t in tasks}
        finished = [0]

        def posttask(key, result, dsk, state, worker_id):
            # Runs in the scheduler loop of this process, so an exception raised here stops the computation.
            if key in keys:
                finished[0] += 1
                progress(finished[0], total)

        with Callback(posttask=posttask):
            return list(dask.compute(*tasks, **options))
