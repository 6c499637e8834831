"""Where the campaign's jobs run: local processes (default) or a Dask ``distributed`` cluster.

Both give ``concurrent.futures`` futures (Dask through ``Client.get_executor()``), so the loop waits
on them the same way. Jobs are plain picklable functions and arguments; every job's result depends
only on its arguments, so a fixed seed gives the same campaign on either executor.

Security: a Dask scheduler runs whatever it is sent. A cluster the campaign starts itself
(``LocalCluster``) listens on 127.0.0.1 only. A remote scheduler is reached with distributed's TLS
``Security`` when the config names certificates (``tls://`` address); a plain ``tcp://`` address on
another host gets a warning.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from urllib.parse import urlsplit

LOCALHOST = ("127.0.0.1", "localhost", "::1")


class Executor:
    """``submit(fn, *args) -> concurrent.futures.Future``; ``close()``; ``description``."""

    description = ""

    def submit(self, fn, *args) -> cf.Future:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int, poll_seconds: float = 0.5) -> None:
    """Make this (worker) process end when process ``parent`` does, so a ``kill -9`` of the campaign leaves
    no worker labelling or training into its folder: Linux's ``PR_SET_PDEATHSIG`` sends SIGKILL the moment
    the parent ends (the processes are started from the campaign's main thread, whose end is the
    parent's), and a daemon thread checks every ``poll_seconds`` that the parent is still ``parent``
    (elsewhere, and for a parent gone before this ran)."""
    import ctypes
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGKILL)

    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="xtalnn-parent-watch", daemon=True).start()


class LocalExecutor(Executor):
    """A pool of ``workers`` spawned processes (one BLAS/torch thread each) that end with this process
    (:func:`die_with_parent`)."""

    def __init__(self, workers: int = 0):
        self.workers = int(workers) or os.cpu_count() or 1
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the workers
        self.pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=die_with_parent, initargs=(os.getpid(),))
        self.description = f"local processes ({self.workers})"

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


class DaskExecutor(Executor):
    """A ``distributed.Client``: on ``address`` (tcp:// or tls://), or on a ``LocalCluster`` it starts
    on 127.0.0.1 with ``workers`` single-threaded worker processes, or on a dask-jobqueue cluster."""

    def __init__(self, address: str = "", workers: int = 0, tls_ca_file: str = "", tls_client_cert: str = "",
                 tls_client_key: str = "", jobqueue: str = "", jobqueue_kwargs: dict | None = None, jobs: int = 1,
                 log=print):
        from distributed import Client, LocalCluster

        self.cluster = None
        security = None
        if any((tls_ca_file, tls_client_cert, tls_client_key)):
            for name, path in (("tls_ca_file", tls_ca_file), ("tls_client_cert", tls_client_cert),
                               ("tls_client_key", tls_client_key)):
                if not path or not os.path.isfile(path):
                    raise FileNotFoundError(f"[executor] {name}: certificate file {path!r} does not exist "
                                            "(TLS needs tls_ca_file, tls_client_cert and tls_client_key)")
            from distributed.security import Security

            security = Security(tls_ca_file=tls_ca_file, tls_client_cert=tls_client_cert,
                                tls_client_key=tls_client_key, require_encryption=True)
            if address and not address.startswith("tls://"):
                raise ValueError(f"[executor] certificates are given but the scheduler address {address} is not "
                                 "tls://")
        if address and address != "local":
            host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
            if security is None and host not in LOCALHOST:
                log(f"warning: the Dask scheduler {address} is reached without TLS; give tls_ca_file, "
                    "tls_client_cert and tls_client_key in [executor] for a remote scheduler")
            self.client = Client(address, security=security) if security else Client(address)
            self.description = f"Dask scheduler {address}"
        elif jobqueue:
            try:
                import dask_jobqueue
            except ImportError as err:
                raise ModuleNotFoundError("[executor] jobqueue needs dask-jobqueue: pip install dask-jobqueue") from err
            classes = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}
            if jobqueue.lower() not in classes:
                raise ValueError(f"[executor] jobqueue must be one of {sorted(classes)}, got {jobqueue!r}")
            kwargs = dict(jobqueue_kwargs or {})
            if security is not None:
                kwargs.setdefault("security", security)
            self.cluster = getattr(dask_jobqueue, classes[jobqueue.lower()])(**kwargs)
            self.cluster.scale(jobs=int(jobs))
            self.client = Client(self.cluster)
            self.description = f"dask-jobqueue {jobqueue} ({jobs} jobs)"
        else:
            n = int(workers) or os.cpu_count() or 1
            # localhost only: the scheduler executes what it receives
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, protocol="tcp", silence_logs=40,
                                        env={"OMP_NUM_THREADS": "1", "PYTHONPATH": _pythonpath()})
            self.client = Client(self.cluster)
            self.description = f"Dask LocalCluster {self.cluster.scheduler_address} ({n} workers)"
        self.pool = self.client.get_executor(pure=False)

    @property
    def scheduler_address(self) -> str:
        return self.client.scheduler.address

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def close(self):
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _pythonpath() -> str:
    """The parent's import path for the workers (xtalnn from a source tree works too)."""
    import xtalnn

    here = os.path.dirname(os.path.dirname(os.path.abspath(xtalnn.__file__)))
    parts = [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(parts))


def make_executor(cfg, dask: str | None = None, workers: int | None = None, log=print) -> Executor:
    """The executor of an :class:`~xtalnn.campaign.config.ExecutorConfig`; ``dask`` (``--dask``:
    ``local`` or a scheduler address) and ``workers`` override the config."""
    kind = "dask" if dask else cfg.kind
    n = workers if workers is not None else cfg.workers
    if kind == "local":
        return LocalExecutor(n)
    address = dask if dask else cfg.address
    return DaskExecutor(address="" if address == "local" else address, workers=n, tls_ca_file=cfg.tls_ca_file,
                        tls_client_cert=cfg.tls_client_cert, tls_client_key=cfg.tls_client_key,
                        jobqueue="" if dask else cfg.jobqueue, jobqueue_kwargs=cfg.jobqueue_kwargs, jobs=cfg.jobs,
                        log=log)

