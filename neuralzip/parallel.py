"""Work spread over processes, results in order (--jobs).

What is coded never depends on the number of processes: the work is cut into groups fixed by the
input alone, every group is coded the same way wherever it runs, and results are written in input
order. Workers are forked from a fresh server process (multiprocessing's forkserver) that has
imported numpy and the models but never run a parallel kernel, so forking is safe whatever the
calling process did before.
"""

import os
from collections import deque

_PRELOAD = ["neuralzip.api", "neuralzip.models", "neuralzip.media.detect"]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | None) -> int:
    """--jobs N: N processes; 0 (the default) or None: one per core."""
    return cpu_count() if not jobs else max(1, int(jobs))


def ordered_map(fn, tasks, jobs: int, initializer=None, initargs=()):
    """Yield fn(task) for every task, in order, over `jobs` processes (here, when jobs is 1 or there is
    a single task). At most 2*jobs tasks are in flight, so memory stays bounded by the window."""
    tasks = list(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        if initializer is not None:
            initializer(*initargs)
        for t in tasks:
            yield fn(t)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = min(jobs, len(tasks))
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    # the cores are shared between the processes: each kernel uses its share of threads
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(max(1, cpu_count() // jobs))
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=initializer, initargs=initargs)
    try:
        window = deque()
        it = iter(tasks)
        for t in it:
            window.append(pool.submit(fn, t))
            if len(window) >= 2 * jobs:
                break
        while window:
            result = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(fn, nxt))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
