"""Where the runs of :func:`~.runner.execute` execute.

Every executor has ``map_unordered(runs, progress) -> iterator of (run, record, error)``, yielding
each run as it finishes (``error`` is ``None`` on success, else the run's traceback as text). The
driver, not the executor, writes the records.

* :class:`InlineExecutor` — in this process, one run after another (the default);
* :class:`ProcessExecutor` — ``jobs`` local worker processes, each with a fair share of the CPU
  threads (two jobs on two cores must not fight over them);
* :class:`RayExecutor` — Ray tasks on a local Ray started for the command, or on a cluster.

A worker that dies in the middle of a run (killed, out of memory) loses only that run: it is retried
once on a fresh worker, then reported failed. A run that raises is not retried (it would raise again).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections import deque
from collections.abc import Iterator, Sequence

from micore.training.threads import available_cpus, set_threads, threads_setting

from .grouping import is_record
from .runs import Run, format_error

__all__ = ["InlineExecutor", "ProcessExecutor", "RayExecutor", "make_executor", "available_cpus", "RAY_INSTALL"]

RAY_INSTALL = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'
WORKER_RETRIES = 1  # a run whose worker died is tried once more on a fresh worker


def _set_threads(threads: int | None) -> None:
    """A worker's thread share: the setting every training in it uses (not the idle-core default)."""
    if threads is None:
        return
    import torch

    set_threads(threads)
    torch.set_num_threads(threads)


def _call(fn, args: tuple, progress: bool) -> tuple[object | None, str | None]:
    """``fn(*args)``: only the function and its arguments travel to a worker (not the driver's callbacks)."""
    try:
        rec = fn(*args, progress=progress)
    except Exception as err:  # a run's failure is a result: record it, go on with the others
        return None, format_error(err)
    if not is_record(rec):
        return None, f"TypeError: the run function {fn.__qualname__} returned {type(rec).__name__}, not a record"
    return rec, None


def _check_picklable(runs: Sequence[Run], where: str) -> None:
    for run in runs:
        try:
            pickle.dumps((run.fn, run.args))
        except Exception as err:
            raise ValueError(
                f"{where} sends each run to another process, but run {run.key!r} cannot be pickled ({err}). Give "
                "estimators as registry names or module-level factories (pkg.module:make), not lambdas or local "
                "functions, or run in-process (no --jobs/--ray)."
            ) from None


class InlineExecutor:
    """Runs in this process, one after another, with the per-run progress bars.

    ``threads``: the intra-op threads of the runs' trainings (default: :func:`micore.training.threads.training_threads`,
    the idle cores when each training starts).
    """

    name = "inline"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def map_unordered(self, runs: Sequence[Run], progress: bool = True) -> Iterator[tuple]:
        before = threads_setting()
        if self.threads is not None:
            set_threads(self.threads)
        try:
            for run in runs:
                rec, error = _call(run.fn, run.args, progress)
                yield run, rec, error
        finally:
            set_threads(before)


def _worker_main(conn, threads: int | None) -> None:
    """A worker process: receives runs until told to stop, sends back ``(record, error)`` for each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    _set_threads(threads)
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the driver is gone
            return
        if task is None:
            return
        conn.send(_call(*task, False))


class ProcessExecutor:
    """``jobs`` local worker processes (``spawn``ed, so CUDA and threads start clean).

    Each worker gets ``threads`` torch threads, by default a fair share of the CPUs
    (``available_cpus() // jobs``, at least 1). Workers are reused from run to run; one that dies
    is replaced, and its run retried once (:data:`WORKER_RETRIES`) before it is reported failed.
    On Ctrl-C the workers are terminated: the runs in flight are lost, finished ones are already written.
    """

    name = "processes"

    def __init__(self, jobs: int, threads: int | None = None):
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be an int >= 1, got {threads!r}")
        self.jobs = jobs
        self.threads = threads if threads is not None else max(1, available_cpus() // jobs)

    @staticmethod
    def _worker_died(conn, busy: dict, queue: deque) -> tuple | None:
        """Forgets the dead worker behind ``conn`` (a key of ``busy``) and deals with its run.

        The run goes back to the front of ``queue`` if it has retries left (:data:`WORKER_RETRIES`);
        otherwise the ``(run, None, error)`` reporting it failed is returned, for the caller to yield.
        """
        proc, run, attempts = busy.pop(conn)
        conn.close()
        code = proc.exitcode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if attempts < WORKER_RETRIES:
            print(f"[retry] {run.key}: its worker process died ({why}); running it again", file=sys.stderr)
            queue.appendleft((run, attempts + 1))
            return None
        return (
            run,
            None,
            (
                f"WorkerDied: the worker process running this run died ({why}) "
                f"{attempts + 1} times (killed, or out of memory?)"
            ),
        )

    @staticmethod
    def _stop_workers(idle: list, busy: dict) -> None:
        """Asks the idle workers to exit and terminates the busy ones (their runs are lost)."""
        for conn, _proc in idle:
            try:
                conn.send(None)
            except OSError:
                pass
        for _conn, (proc, _, _) in busy.items():
            proc.terminate()
        for _conn, proc in idle:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        for proc, _, _ in busy.values():
            proc.join(timeout=5)

    def map_unordered(self, runs: Sequence[Run], progress: bool = True) -> Iterator[tuple]:
        import multiprocessing as mp
        from multiprocessing.connection import wait

        if not runs:
            return
        _check_picklable(runs, "--jobs")
        ctx = mp.get_context("spawn")
        queue = deque((run, 0) for run in runs)  # (run, attempts so far)
        busy: dict = {}  # connection -> (process, run, attempts)
        idle: list = []

        def start_worker():
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, self.threads), daemon=True)
            proc.start()
            child.close()
            return parent, proc

        try:
            workers = [start_worker() for _ in range(min(self.jobs, len(runs)))]
            idle = list(workers)
            while queue or busy:
                while queue and idle:
                    conn, proc = idle.pop()
                    run, attempts = queue.popleft()
                    conn.send((run.fn, run.args))
                    busy[conn] = (proc, run, attempts)
                ready = wait(list(busy) + [p.sentinel for p, _, _ in busy.values()])
                for conn in list(busy):
                    proc, run, attempts = busy[conn]
                    if conn in ready and conn.poll():
                        try:
                            rec, error = conn.recv()
                        except (EOFError, OSError):
                            rec, error = None, None  # died while sending: handled below as a death
                        else:
                            del busy[conn]
                            idle.append((conn, proc))
                            yield run, rec, error
                            continue
                    if proc.sentinel in ready or not proc.is_alive():
                        proc.join(timeout=1)
                        if proc.is_alive():
                            continue
                        failed = self._worker_died(conn, busy, queue)
                        if failed is not None:
                            yield failed
                        if queue:
                            idle.append(start_worker())
        finally:
            self._stop_workers(idle, busy)


def _ray_call(fn, args: tuple, threads: int) -> tuple[object | None, str | None]:
    _set_threads(threads)
    return _call(fn, args, False)


class RayExecutor:
    """Runs as Ray tasks; results come back to the driver, which alone writes the output directory.

    Args:
        address: ``None`` starts a local Ray for the command (and stops it at the end); ``"auto"``
            joins the cluster this machine belongs to (``ray start --head`` here, ``ray start
            --address=HEAD:6379`` on the others); ``"ray://host:10001"`` a remote cluster.
        num_cpus: CPUs of the local Ray (default all); ignored with an address.
        cpus_per_run: CPUs each run asks for, and its torch threads (default 1).
        gpus_per_run: GPUs a CUDA run asks for (default 1; a fraction packs several runs on one GPU).

    Every Ray worker must be able to import this package (install it on every node); the local Ray
    also gets the driver's ``sys.path``, so estimators in the working directory work as in-process.
    A task whose worker dies is retried once by Ray, then reported failed.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, num_cpus: int | None = None, cpus_per_run: int = 1, gpus_per_run: float = 1.0
    ):
        if cpus_per_run < 1:
            raise ValueError(f"cpus_per_run must be >= 1, got {cpus_per_run!r}")
        if not 0 < gpus_per_run <= 1 and not float(gpus_per_run).is_integer():
            raise ValueError(f"gpus_per_run must be a fraction in (0, 1] or a whole number, got {gpus_per_run!r}")
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run

    @staticmethod
    def _import():
        try:
            import ray
        except ImportError:
            raise ValueError(f"--ray needs Ray, which is not installed: {RAY_INSTALL}") from None
        return ray

    def _init(self, ray) -> bool:
        if ray.is_initialized():
            return False
        kwargs = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        if self.address is None:
            paths = [p for p in [os.getcwd(), *sys.path] if p and os.path.isdir(p)]
            kwargs.update(
                num_cpus=self.num_cpus or available_cpus(),
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}},
            )
        else:
            kwargs.update(address=self.address)
        ray.init(**kwargs)
        return True

    def map_unordered(self, runs: Sequence[Run], progress: bool = True) -> Iterator[tuple]:
        if not runs:
            return
        ray = self._import()
        _check_picklable(runs, "--ray")
        started = self._init(ray)
        remote = ray.remote(_ray_call)
        pending = {}
        try:
            for run in runs:
                opts = dict(num_cpus=self.cpus_per_run, max_retries=WORKER_RETRIES, retry_exceptions=False)
                if run.gpu:
                    opts["num_gpus"] = self.gpus_per_run
                pending[remote.options(**opts).remote(run.fn, run.args, self.cpus_per_run)] = run
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    run = pending.pop(ref)
                    try:
                        rec, error = ray.get(ref)
                    except ray.exceptions.RayError as err:  # the worker died (after Ray's retry), or Ray failed
                        rec, error = None, f"{type(err).__name__}: {err}"
                    yield run, rec, error
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def make_executor(jobs: int | None = None, ray: str | None = None, threads: int | None = None):
    """The executor the CLI flags ask for: ``--jobs N`` or ``--ray [ADDRESS]`` (``"local"`` = start one)."""
    if jobs is not None and ray is not None:
        raise ValueError("give --jobs or --ray, not both")
    if ray is not None:
        RayExecutor._import()  # say how to install it before anything runs
        return RayExecutor(address=None if ray == "local" else ray, cpus_per_run=threads or 1)
    if jobs is not None and jobs != 1:
        return ProcessExecutor(jobs, threads=threads)
    if jobs is not None and (isinstance(jobs, bool) or jobs < 1):
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    return InlineExecutor(threads=threads)
