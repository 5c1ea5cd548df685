"""Running a study's trials: in this process, or in K worker processes on one study.

One worker runs in this process through Optuna's own loop, ``study.optimize(objective, n_trials,
timeout, callbacks, catch)`` (:func:`optimize_in_process`). ``allennlp tune ... --n-workers K``
starts K processes (:func:`run_workers`); each opens the study's storage itself and runs :func:`run_trials`: fail
orphaned trials, check the budget, ask for a trial (a queued retry first), train it, with the
other workers of its host taking turns for the ask and sharing ``--n-trials``. Both loops check
the budget, the deadline and dead workers' trials through one
:class:`~allennlp_optuna.parallel.budget.TrialGate`. With ``--devices 0,1,2,3`` each worker sees only its own
GPU(s) (``CUDA_VISIBLE_DEVICES``) and the trainer's ``cuda_device`` is set to match; on CPU the
workers split the cores between their torch thread pools.

Several machines join one study by running the same command against one PostgreSQL or MySQL
``--storage`` with ``--skip-if-exists``; each machine's workers are independent processes of the
same kind.

Ctrl-C and SIGTERM end a worker's running trial as FAIL (never left RUNNING), end its child
processes (data-loader and distributed-training workers) and leave every finished trial and
its directory as they were; rerunning the command with ``--skip-if-exists`` resumes the study.
"""
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Dict, List, Optional, Protocol, Sequence, Tuple

import optuna
from optuna.trial import FrozenTrial, TrialState
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.parallel.budget import AskLock, TrialGate, TrialTickets
from allennlp_optuna.faults.recovery import fail_orphaned_trials, recoverable_storage
from allennlp_optuna.core.compat import stop_fork_server, storage_engine
from allennlp_optuna.core.errors import INTERRUPTED_EXIT_CODE, USER_ERROR_EXIT_CODE, StudyError
from allennlp_optuna.study.preflight import import_packages
from allennlp_optuna.study.settings import TuneSettings
from allennlp_optuna.parallel.start_method import safe_context
from allennlp_optuna.study.samplers import OptunaSettings
from allennlp_optuna.study.storage import is_sqlite
from allennlp_optuna.core.trial_attrs import STUDY_ERROR_ATTR
from allennlp_optuna.study.record import failure_line
from allennlp_optuna.parallel.plan import WorkerPlan
from allennlp_optuna.parallel.signals import ending_cleanly, interruptible, descendants
from allennlp_optuna.parallel.loop import open_worker_study, deadline_of, run_trials

logger = logging.getLogger(__name__)

_STOP_GRACE_SECONDS = 60


class WorkerObjective(Protocol):
    """An objective that worker processes can run: picklable, and specialised for each worker."""

    def __call__(self, trial: optuna.Trial) -> float:
        ...

    def for_worker(self, plan: WorkerPlan) -> "WorkerObjective":
        """The objective as the worker of ``plan`` runs it (e.g. on its own GPUs); ``self`` is unchanged."""
        ...


@dataclass
class WorkerJob:
    """Everything a worker process needs to join the study and run trials (picklable)."""

    plan: WorkerPlan
    settings: TuneSettings
    optuna_settings: OptunaSettings
    objective: WorkerObjective
    tickets: TrialTickets
    deadline: Optional[float]
    reseed: bool
    callbacks: Tuple[Callable[[optuna.Study, FrozenTrial], None], ...] = ()


def run_job(job: WorkerJob) -> None:
    """Run one worker's loop in this process (a worker process started by :func:`run_workers`)."""
    for name, value in job.plan.environment().items():
        os.environ[name] = value
    if job.plan.torch_threads is not None:
        import torch

        torch.set_num_threads(job.plan.torch_threads)
    import_packages(job.settings.training.include_package)  # their registered classes, as in the tune process
    study = open_worker_study(job.settings, job.optuna_settings, reseed=job.reseed)
    lock = AskLock(job.settings.storage, study.study_name)
    try:
        with ending_cleanly(study), worker_console(job.settings.verbose):
            run_trials(
                study,
                job.objective,
                lock,
                tickets=job.tickets,
                gate=TrialGate(job.settings.max_trials, job.deadline),
                catch=job.settings.catch,
                callbacks=job.callbacks,
            )
    finally:
        lock.remove()


def worker_console(verbose: bool) -> ContextManager[None]:
    """A worker prints no progress (the ``tune`` process shows the study); without ``verbose``, only warnings."""
    from allennlp_optuna.output.console import trial_logs_in_files

    return contextlib.nullcontext() if verbose else trial_logs_in_files(sys.stderr)


def _worker_main(job: WorkerJob) -> None:
    try:
        run_job(job)
    except ConfigurationError:
        # The supervisor prints the one line (user_error_of); the trial's fail_reason keeps the traceback.
        _leave(USER_ERROR_EXIT_CODE)
    except KeyboardInterrupt:
        # The trial is recorded and the children are ended. Leave without the interpreter's
        # exit handlers: they join queue threads of killed data-loader workers, which can hang.
        _leave(INTERRUPTED_EXIT_CODE)


def _leave(code: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def runs_in_this_process(plans: List[WorkerPlan]) -> bool:
    """Whether the trials run in this process (:func:`optimize_in_process`): one worker, no devices of its own."""
    return len(plans) == 1 and not plans[0].devices


def run_workers(
    study: optuna.Study,
    settings: TuneSettings,
    objective: WorkerObjective,
    *,
    optuna_settings: OptunaSettings,
    plans: List[WorkerPlan],
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    """Run one worker process per plan and supervise them; the function behind ``--n-workers``.

    Each process is started as :func:`worker_context` says. A worker killed from outside
    (SIGKILL, out of memory) has its trial failed and retried at once and is replaced after a
    growing wait, up to ``--max-worker-restarts`` times in all (:class:`RestartPolicy`); a worker
    that stops on an error stops the others.

    Args:
        study: the study, already created or joined.
        settings: the run's settings, resolved (each worker opens its own connection to the storage).
        objective: the picklable objective (e.g. :class:`~allennlp_optuna.tuning.TrialObjective`).
        optuna_settings: the sampler and pruner.
        plans: one per worker (:func:`plan_workers`).
        callbacks: Optuna study callbacks, called in the worker after each of its trials.
    """
    context = worker_context()
    tickets = TrialTickets(settings.n_trials, context)
    deadline = deadline_of(settings.timeout)

    def start(index: int) -> Any:
        job = WorkerJob(
            plans[index], settings, optuna_settings, objective.for_worker(plans[index]), tickets, deadline,
            reseed=len(plans) > 1, callbacks=tuple(callbacks),
        )
        return _start(context, job)

    _warn_about_sqlite(settings.storage, len(plans))
    release_connections(study)
    workers = {plan.index: start(plan.index) for plan in plans}
    study = optuna.load_study(
        study_name=study.study_name, storage=recoverable_storage(settings.storage, settings.heartbeat_interval)
    )
    with interruptible():
        try:
            _supervise(study, workers, start, RestartPolicy(settings.max_worker_restarts))
        except BaseException as error:
            _stop_workers(list(workers.values()))
            interrupted = isinstance(error, KeyboardInterrupt)
            fail_orphaned_trials(study, "KeyboardInterrupt: stopped by Ctrl-C or SIGTERM; " if interrupted else "")
            raise
        finally:
            stop_fork_server()


def _warn_about_sqlite(storage: str, n_workers: int) -> None:
    if is_sqlite(storage):
        logger.warning(
            "%d workers share the SQLite file of %s: SQLite lets one process write at a time and cannot be "
            "shared between machines; for parallel studies use a journal file (--storage study.log), "
            "PostgreSQL or MySQL (--storage postgresql://user:password@host/db).",
            n_workers,
            storage,
        )


@dataclass
class RestartPolicy:
    """How often, study-run-wide, a killed worker is replaced, and how long to wait before each.

    Out-of-memory kills repeat; the wait doubles from ``first_wait`` up to ``longest_wait`` so that
    memory held by the dead worker's children is returned first, and after ``max_restarts``
    replacements the run stops with a line saying what to do.

    Args:
        max_restarts: replacements allowed in this run, over all workers (``--max-worker-restarts``).
        first_wait: seconds before the first replacement.
        longest_wait: the longest wait before a replacement.
    """

    max_restarts: int = 3
    first_wait: float = 1.0
    longest_wait: float = 30.0
    restarts: int = 0

    def wait_before_next(self) -> Optional[float]:
        """Seconds to wait before the next replacement, counting it; ``None`` once none is left."""
        if self.restarts >= self.max_restarts:
            return None
        self.restarts += 1
        return min(self.first_wait * 2 ** (self.restarts - 1), self.longest_wait)


def killed_too_often(index: int, signal_name: str, max_restarts: int) -> ConfigurationError:
    """The line ``tune`` stops with when a worker is killed once more than the policy allows."""
    return ConfigurationError(
        f"worker {index} was killed by {signal_name} after {max_restarts} killed worker(s) had been replaced "
        f"(--max-worker-restarts {max_restarts}); its trial is FAIL and will be retried. Repeated kills are "
        "usually the out-of-memory killer (see `dmesg`): lower the batch size or --n-workers, then rerun "
        "with --skip-if-exists to resume, or raise --max-worker-restarts"
    )


def _supervise(study: optuna.Study, workers: Dict[int, Any], restart: Callable[[int], Any], policy: RestartPolicy) -> None:
    """Wait for the workers; replace killed ones (their trials are retried) as ``policy`` allows, stop on a worker's error."""
    while workers:
        multiprocessing.connection.wait([w.sentinel for w in workers.values()])
        for index, worker in list(workers.items()):
            if worker.exitcode is None:
                continue
            del workers[index]
            if worker.exitcode == 0:
                continue
            if worker.exitcode < 0:
                name = signal.Signals(-worker.exitcode).name
                fail_orphaned_trials(study)
                wait = policy.wait_before_next()
                if wait is None:
                    raise killed_too_often(index, name, policy.max_restarts)
                logger.warning(
                    "Worker %d (pid %d) was killed by %s; replacing it in %g s (%d of %d replacements).",
                    index, worker.pid, name, wait, policy.restarts, policy.max_restarts,
                )
                time.sleep(wait)
                release_connections(study)
                workers[index] = restart(index)
                continue
            if worker.exitcode == USER_ERROR_EXIT_CODE:
                raise user_error_of(study)
            raise ConfigurationError(
                f"worker {index} stopped with exit status {worker.exitcode} (its error is above); "
                "pass --skip-exception to record failing trials as FAIL and go on"
            )


def user_error_of(study: optuna.Study) -> ConfigurationError:
    """The error that stopped a worker on a problem the user can fix, rebuilt from the study.

    The worker exits quietly; its last failed trial says why (:func:`~allennlp_optuna.study.record.failure_line`):
    a study-wide error's message, or the last line of the trial's ``fail_reason`` traceback.
    """
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    for trial in reversed(failed):
        if STUDY_ERROR_ATTR in trial.user_attrs:
            return StudyError(failure_line(trial))
    return ConfigurationError(failure_line(failed[-1]) if failed else "a worker stopped on a configuration error")


def worker_context() -> Any:
    """How worker processes start: from a fork server, never by ``fork`` (see :mod:`~allennlp_optuna.parallel.start_method`)."""
    return safe_context()


def release_connections(study: optuna.Study) -> None:
    """Close the pooled database connections of ``study``'s storage (it reconnects when used)."""
    engine = storage_engine(study)
    if engine is not None:
        engine.dispose()


def _start(context: Any, job: WorkerJob) -> Any:
    process = context.Process(target=_worker_main, args=(job,), name=f"allennlp-tune-worker-{job.plan.index}")
    process.start()
    return process


def _stop_workers(workers: List[Any]) -> None:
    """SIGTERM the workers (each fails its trial and ends its children); kill those that hang, with their children."""
    for worker in workers:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGTERM)
    deadline = time.time() + _STOP_GRACE_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.time()))
        if worker.is_alive():
            logger.warning("Worker pid %d did not stop within %d s; killing it.", worker.pid, _STOP_GRACE_SECONDS)
            for pid in [*descendants(worker.pid), worker.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.join()

