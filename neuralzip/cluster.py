"""Compress on a Dask distributed cluster (`compress DIR -o OUTDIR --scheduler tcp://HOST:PORT`).

The groups (fixed by the input alone, as for --jobs) are coded by the cluster's workers; this
process writes them in input order into the same shard files the local --shard-size path writes
(one shard when no size is given), so the bytes do not depend on where the coding ran. The workers
read the input files themselves: they must see the same paths (one machine, or a shared file
system), and have the same neuralzip installed. Dask is an optional extra:
`pip install 'neuralzip[cluster]'`.
"""

from __future__ import annotations

from collections import deque

from neuralzip.errors import InputError

WINDOW_PER_WORKER = 4  # groups in flight per worker: memory stays bounded by the window


def _client(scheduler):
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler needs Dask: pip install 'neuralzip[cluster]'") from None
    if not isinstance(scheduler, str):
        return scheduler, False  # a Client (or a LocalCluster's address) given by the caller
    try:
        return Client(scheduler, timeout="20s"), True
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None


def cluster_groups(client, tasks):
    """streaming.encode_task(task) for every task on the cluster, yielded in order, at most a window
    in flight (a long recording or a large image is coded chunk by chunk on its worker)."""
    from neuralzip import streaming

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    window, it = deque(), iter(tasks)
    for t in it:
        window.append(client.submit(streaming.encode_task, t, pure=False))
        if len(window) >= WINDOW_PER_WORKER * workers:
            break
    while window:
        fut = window.popleft()
        result = fut.result()
        fut.release()
        nxt = next(it, None)
        if nxt is not None:
            window.append(client.submit(streaming.encode_task, nxt, pure=False))
        yield result


def compress_on_cluster(paths, outdir, scheduler, shard_size: int | None = None, model: str = "auto",
                        weights: str | None = None, level: int = 1, force: bool = False,
                        keep_reports: bool = True) -> tuple[list, int]:
    """Files and folders into a shard set in `outdir`, coded on the Dask cluster at `scheduler`
    (an address such as tcp://HOST:PORT, or a distributed.Client). -> (member reports, total bytes)."""
    from neuralzip import api, shards

    client, owned = _client(scheduler)
    try:
        return shards.compress_sharded(api.archive_sources(paths), outdir, shard_size or (1 << 62), model, weights,
                                       level, 1, force=force, keep_reports=keep_reports,
                                       runner=lambda tasks: cluster_groups(client, tasks))
    finally:
        if owned:
            client.close()
