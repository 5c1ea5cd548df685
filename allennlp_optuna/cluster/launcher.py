"""``allennlp tune ... --launcher slurm``: check everything, submit one job array, follow the study.

:func:`launch_study` reads as its steps: check every input as ``tune`` does
(:func:`~allennlp_optuna.tuning.plan_study`) and what only SLURM can judge (``sbatch`` is there
and takes the job: ``sbatch --test-only``), so that bad input submits nothing; create or join the
study; write the tasks' settings and batch script under ``DIR/slurm`` and submit them
(:mod:`allennlp_optuna.cluster.job`); then follow the study in the console until the job is
done (:mod:`allennlp_optuna.cluster.follow`), and end as ``tune`` does: the best trial archived,
the report, the summary. ``--detach`` returns once the job is submitted; Ctrl-C while following
detaches too (the job goes on: ``scancel JOB_ID`` cancels it).
"""
import contextlib
import signal
import threading
import time
from typing import Iterator, Optional

import optuna

from allennlp_optuna.cluster.follow import SubmittedJob, follow
from allennlp_optuna.cluster.job import ArrayJob
from allennlp_optuna.cluster.slurm import require_sbatch, sbatch
from allennlp_optuna.core.errors import Detached
from allennlp_optuna.parallel.budget import study_wide_target
from allennlp_optuna.study.settings import TuneSettings
from allennlp_optuna.study.setup import open_study
from allennlp_optuna.tuning import plan_study, run_study


def check_submission(settings: TuneSettings) -> ArrayJob:
    """The job array to submit, once ``sbatch`` is there and would take it (``--test-only`` submits nothing)."""
    require_sbatch()
    array = ArrayJob.plan(settings)
    sbatch(array.sbatch_options, array.script(), test_only=True)
    return array


def submit(array: ArrayJob, study: optuna.Study) -> SubmittedJob:
    """Fix the study-wide budget and deadline, write the job's files and submit it."""
    settings = array.settings
    target = study_wide_target(study, settings.n_trials, settings.max_trials)
    deadline = None if settings.timeout is None else time.time() + settings.timeout
    array.write(target, deadline)
    return SubmittedJob(sbatch(array.sbatch_options, array.script()), array, target, deadline)


@contextlib.contextmanager
def detaching_on_interrupt(job: SubmittedJob) -> Iterator[None]:
    """While open, Ctrl-C (SIGINT) or SIGTERM stops following: :class:`Detached`, saying how to reach the job.

    The handlers are installed even where ``tune`` started with SIGINT ignored (a shell's background job).
    """
    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    signals = (signal.SIGINT, signal.SIGTERM) if main else ()
    previous = {signum: signal.signal(signum, signal.default_int_handler) for signum in signals}
    try:
        yield
    except KeyboardInterrupt:
        raise Detached(job.detached_message()) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def launch_study(settings: TuneSettings) -> Optional[optuna.Study]:
    """Run the study's trials as the tasks of one SLURM job array; the function behind ``--launcher slurm``.

    Returns:
        The study, once every task has ended (``None`` with ``--detach``: the job goes on).

    Raises:
        Detached: Ctrl-C while following (the job goes on; the message says how to reach it).
        ConfigurationError: bad input (nothing submitted), or the tasks ended short of the budget.
    """
    plan = plan_study(settings)
    array = check_submission(settings)
    study = open_study(settings, plan.optuna_settings, plan.enqueued, plan.search_space)
    job = submit(array, study)
    print(job.submitted_line(), flush=True)
    if settings.detach:
        print("\n".join(job.commands()), flush=True)
        return None
    with detaching_on_interrupt(job):
        print(f"  Ctrl-C stops following; the job goes on (scancel {job.job_id} cancels it)", flush=True)
        run_study(study, settings, plan, run_trials=lambda console: follow(job, study, console))
    return study
