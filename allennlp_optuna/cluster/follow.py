"""Following a submitted job array: the console shows the study, and a line whenever the tasks' states change.

The submitting ``allennlp tune`` reads the study's storage as it does for local workers (the
console, :mod:`allennlp_optuna.output.console`) and asks ``squeue`` every few seconds how the
job's tasks stand: running, pending and why (``Resources``, ``BeginTime`` for a requeued task's
hold, ``PartitionConfig`` for a task that never fits its partition), so that a job that cannot
start says so. Once the study-wide budget is done (or ``--timeout`` has passed), tasks that have
not started are cancelled: they would only start to find nothing to do. Following ends when
every task has ended; a budget that was not reached then is an error that says where the tasks'
output is.
"""
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import List, Optional, Sequence

import optuna
from allennlp.common.checks import ConfigurationError
from optuna.trial import TrialState

from allennlp_optuna.cluster.job import ArrayJob
from allennlp_optuna.cluster.slurm import PENDING, TaskState, array_tasks, cancel_pending
from allennlp_optuna.core.errors import StudyError
from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.core.trial_attrs import STUDY_ERROR_ATTR
from allennlp_optuna.output.console import StudyWatcher
from allennlp_optuna.core.trial_attrs import REPORT_FILE
from allennlp_optuna.parallel.budget import StudyBudget

FOLLOW_POLL_SECONDS = 3.0
"""How often ``squeue`` is asked how the tasks stand."""

_TASK_RANGE = re.compile(r"_\[([^\]%]*)")


@dataclass(frozen=True)
class SubmittedJob:
    """A job array that ``allennlp tune --launcher slurm`` submitted, and what it is to do.

    Args:
        job_id: SLURM's id of the array (its tasks are ``JOB_ID_0``, ``JOB_ID_1``...).
        array: what was submitted (the run's settings, the tasks, where their output goes).
        target: the study-wide budget of COMPLETE and PRUNED trials (``None``: none).
        deadline: ``time.time()`` after which no task starts a trial (``None``: none).
    """

    job_id: str
    array: ArrayJob
    target: Optional[int] = None
    deadline: Optional[float] = None

    @property
    def output(self) -> str:
        """Where the tasks' output goes: ``DIR/slurm/JOB_ID_*.out``."""
        return self.array.output_pattern(self.job_id)

    @property
    def report(self) -> str:
        """``DIR/report.html``, which the tasks rewrite after each trial."""
        return os.path.join(self.array.settings.serialization_dir, REPORT_FILE)

    def submitted_line(self) -> str:
        """What ``tune`` says once the job is submitted."""
        return (f"Submitted SLURM job {self.job_id}: {self.array.n_tasks} task(s), each a worker; their output: "
                f"{self.output}")

    def commands(self) -> List[str]:
        """How to follow, report on and cancel the study."""
        settings = self.array.settings
        study = f"--study-name {settings.study_name} --storage {redact_url(settings.storage)}"
        return [
            f"  follow: squeue -j {self.job_id}; {self.report} is rewritten after each trial",
            f"  report: allennlp tune-report {study} -o report.html",
            f"  cancel: scancel {self.job_id}",
        ]

    def detached_message(self) -> str:
        """The line ``tune`` leaves with when Ctrl-C stops it following."""
        return (f"detached: SLURM job {self.job_id} goes on (follow it with squeue -j {self.job_id} and "
                f"{self.report}); cancel it with: scancel {self.job_id}")

    def work_done(self, study: optuna.Study) -> bool:
        """Whether no task may start another trial: the budget is done, or the deadline has passed."""
        if self.deadline is not None and time.time() >= self.deadline:
            return True
        return self.target is not None and StudyBudget(self.target).reached(study)


def task_count(task: TaskState) -> int:
    """How many tasks an entry of ``squeue`` stands for: ``42_[2-4]`` is 3, ``42_1`` is 1."""
    match = _TASK_RANGE.search(task.task)
    if match is None:
        return 1
    count = 0
    for part in match.group(1).split(","):
        first, _, last = part.partition("-")
        count += int(last) - int(first) + 1 if last.isdigit() and first.isdigit() else 1
    return count


def describe_tasks(job_id: str, tasks: Sequence[TaskState]) -> str:
    """``SLURM job 42: 1 RUNNING, 1 PENDING (BeginTime)``, or that every task has ended."""
    if not tasks:
        return f"SLURM job {job_id}: every task has ended"
    counts: Counter = Counter()
    for task in tasks:
        waiting = task.state == PENDING and task.reason not in ("", "None")
        counts[f"{task.state} ({task.reason})" if waiting else task.state] += task_count(task)
    return f"SLURM job {job_id}: " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def follow(job: SubmittedJob, study: optuna.Study, console: StudyWatcher, poll_seconds: float = FOLLOW_POLL_SECONDS
           ) -> None:
    """Wait until every task of ``job`` has ended, saying how they stand; then check the budget was done.

    Raises:
        ConfigurationError: the tasks ended before the budget was done.
    """
    said = None
    while True:
        tasks = array_tasks(job.job_id)
        if tasks is not None:  # None: squeue did not answer this time
            line = describe_tasks(job.job_id, tasks)
            if line != said:
                console.output.line(line)
                said = line
            if not tasks:
                break
            if job.work_done(study) and any(task.state == PENDING for task in tasks):
                cancel_pending(job.job_id)
        time.sleep(poll_seconds)
    check_budget_done(job, study)


def check_budget_done(job: SubmittedJob, study: optuna.Study) -> None:
    """Refuse a study whose tasks all ended short of the budget (and before its deadline): the error that
    stopped them, or where to look."""
    if job.target is None or job.work_done(study):
        return
    stopped = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if STUDY_ERROR_ATTR in t.user_attrs]
    if stopped:
        raise StudyError(str(stopped[-1].user_attrs[STUDY_ERROR_ATTR]))
    finished = StudyBudget(job.target).finished(study)
    raise ConfigurationError(
        f"SLURM job {job.job_id} ended with {finished} of {job.target} trials COMPLETE or PRUNED; see its tasks' "
        f"output in {job.output}, then run the same command with --skip-if-exists to go on"
    )
