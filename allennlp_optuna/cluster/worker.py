"""One task of a SLURM job array: a worker of the study, as the batch script runs it::

    python -m allennlp_optuna.cluster.worker DIR/slurm/tune-TIME-PID.json

The task joins the study that the submitting ``allennlp tune`` created and runs trials as
``allennlp tune`` does on one machine (:func:`~allennlp_optuna.tuning.run_trials_here`): one at a
time in this process, or, on several GPUs or with ``--trials-per-device``, in worker processes of
its own; all within the study-wide budget the submission fixed, until its deadline. It writes a
line when it starts and ends, and warnings, to its output (``DIR/slurm/ARRAYID_TASK.out``);
AllenNLP's log goes to each trial's ``out.log``, and ``DIR/report.html`` is rewritten after each
trial.

SIGTERM (preemption, ``scontrol requeue``, ``scancel``) stops the running trial and queues its
retry, which continues from its last checkpoint (:mod:`allennlp_optuna.faults.preemption`);
SIGUSR1, the warning ahead of the time limit, does the same and then requeues this task, so that
the job goes on in a new allocation. Exit status: 0 when the budget is done, 2 on a problem the
user can fix (its one line is in the output), 130 when stopped by a signal.
"""
import logging
import os
import socket
import sys
from typing import Optional, Sequence

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.cluster.job import read_task_settings
from allennlp_optuna.cluster.slurm import requeue
from allennlp_optuna.core.errors import INTERRUPTED_EXIT_CODE, USER_ERROR_EXIT_CODE
from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.faults.preemption import Preempted
from allennlp_optuna.output.report import ReportWriter
from allennlp_optuna.parallel.workers import worker_console
from allennlp_optuna.study.settings import TuneSettings
from allennlp_optuna.study.storage import load_existing_study
from allennlp_optuna.trial.memory import frozen_between_trials
from allennlp_optuna.tuning import plan_study, run_trials_here

TIME_LIMIT_SIGNAL = "SIGUSR1"


def task_name() -> str:
    """``ARRAYID_TASK``, how SLURM's commands address this task (its ``SLURM_JOB_ID`` is another number)."""
    return f"{os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{os.environ.get('SLURM_ARRAY_TASK_ID', '?')}"


def say(text: str) -> None:
    """One line in the task's output."""
    print(f"allennlp tune worker {task_name()}: {text}", flush=True)


def visible_gpus() -> int:
    """The GPUs SLURM gave this task (``CUDA_VISIBLE_DEVICES``; none on a CPU node)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def limit_threads_to_allocation() -> None:
    """Use as many torch threads as SLURM gave this task CPUs.

    Where SLURM does not bind tasks to their CPUs (no ``task/affinity`` or ``task/cgroup``), every
    task sees all the node's cores, and torch's default pool would take them all in each task.
    """
    allocated = os.environ.get("SLURM_CPUS_ON_NODE", "")
    if allocated.isdigit() and 0 < int(allocated) < len(os.sched_getaffinity(0)):
        import torch

        torch.set_num_threads(int(allocated))


def run_task(settings: TuneSettings) -> None:
    """Join the study and run its trials here until the budget is done (see the module's docstring)."""
    plan = plan_study(settings)
    if plan.optuna_settings.sampler is not None:
        plan.optuna_settings.sampler.reseed_rng()  # tasks given one seeded sampler must not sample alike
    study = load_existing_study(settings.study_name, settings.storage)
    with frozen_between_trials(), worker_console(settings.verbose):
        run_trials_here(study, settings, plan, [ReportWriter(settings.serialization_dir)])


def main(argv: Sequence[str]) -> int:
    """Run the task whose settings file is ``argv[0]``; the exit status (see the module's docstring)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s - %(levelname)s - %(name)s - %(message)s")
    settings: Optional[TuneSettings] = read_task_settings(argv[0], visible_gpus())
    if settings is None:
        say("the study's --timeout has passed; no trial started")
        return 0
    limit_threads_to_allocation()
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    say(f"on {socket.gethostname()} (restart {restarts}), study {settings.study_name!r} in "
        f"{redact_url(settings.storage)}")
    try:
        run_task(settings)
    except Preempted as stopped:
        say(f"stopped by {stopped.signal_name}; its trial is retried from its last checkpoint")
        if stopped.signal_name == TIME_LIMIT_SIGNAL:  # the time limit is near: go on in a new allocation
            say("requeued ahead of the time limit" if requeue(task_name()) else "scontrol requeue refused")
        return INTERRUPTED_EXIT_CODE
    except ConfigurationError as error:
        say(f"error: {redact_url(error.message)}")
        return USER_ERROR_EXIT_CODE
    say("done: the study's budget is done or its time is up")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
