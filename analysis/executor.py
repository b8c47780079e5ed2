"""Run many independent tasks here or on Dask: the one executor the replay and the sweep share.

In this process when no workers and no scheduler are asked for; otherwise each task is a Dask task on a local
cluster of ``workers`` processes (one thread each: the kernels are single-threaded Numba) or on the cluster at
``scheduler``. Results are handed back as tasks finish, so the caller can show progress and keep what finished if a
later task fails.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

__all__ = ["run_tasks"]


def run_tasks(
    function: Callable[..., Any],
    tasks: Sequence[tuple[Hashable, tuple]],
    done: Callable[[Any, Any], None],
    *,
    workers: int = 0,
    scheduler: str | None = None,
    shared: dict[str, Any] | None = None,
) -> None:
    """``function(*args, **shared)`` for every ``(key, args)`` of ``tasks``; ``done(key, result)`` as each finishes.
    ``shared`` (keyword arguments every task takes, large ones such as the runs) goes to each Dask worker once."""
    shared = shared or {}
    if workers == 0 and scheduler is None:
        for key, args in tasks:
            done(key, function(*args, **shared))
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(scheduler if scheduler is not None else cluster) as client:
            scattered = {name: client.scatter(value, broadcast=True) for name, value in shared.items()}
            futures = {client.submit(function, *args, **scattered, pure=False): key for key, args in tasks}
            for future in as_completed(futures):
                done(futures[future], future.result())
    finally:
        if cluster is not None:
            cluster.close()
