"""SLURM's own commands, as the launcher uses them: ``sbatch``, ``squeue``, ``scancel``, ``scontrol``.

Nothing here needs SLURM's accounting database (``sacct``): the study's storage records what the
trials did, and ``squeue`` says which tasks of a job array are still pending or running.
"""
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import List, Optional, Sequence

from allennlp.common.checks import ConfigurationError

SLURM_TIMEOUT = 60.0
"""Seconds to wait for a SLURM command (a busy controller answers slowly)."""

PENDING = "PENDING"


@dataclass(frozen=True)
class TaskState:
    """A task (or a range of pending tasks) of a job array, as ``squeue`` lists it.

    Args:
        task: ``ARRAYID_TASK``, or ``ARRAYID_[2-3]`` for tasks that have not started yet.
        state: SLURM's state, e.g. ``PENDING``, ``RUNNING``, ``COMPLETING``.
        reason: why a pending task waits, e.g. ``Resources``, ``BeginTime`` (a requeued task's hold),
            ``PartitionConfig`` (it never fits the partition); ``None`` otherwise.
    """

    task: str
    state: str
    reason: str = "None"


def split_options(text: str) -> List[str]:
    """``--sbatch``'s text as ``sbatch`` arguments, split as a shell would."""
    try:
        return shlex.split(text)
    except ValueError as error:
        raise ConfigurationError(f"--sbatch {text!r} cannot be split into options: {error}")


def require_sbatch() -> None:
    """Refuse to go on where there is no ``sbatch`` to submit with."""
    if shutil.which("sbatch") is None:
        raise ConfigurationError(
            "--launcher slurm submits with SLURM's sbatch, which is not on this machine's PATH; run tune where "
            "jobs are submitted (a login node), or leave out --launcher slurm to run the workers here"
        )


def sbatch(options: Sequence[str], script: str, test_only: bool = False) -> str:
    """Submit the batch ``script`` (its text) with ``options``; the job's id (``--parsable``).

    Args:
        options: ``sbatch`` options; they take precedence over the script's ``#SBATCH`` lines.
        script: the batch script's text, given on standard input.
        test_only: only check that SLURM would take the job (``--test-only``); nothing is submitted.

    Raises:
        ConfigurationError: sbatch refused the job; its own message, in one line.
    """
    mode = "--test-only" if test_only else "--parsable"
    result = _run(["sbatch", mode, *options], script)
    if result.returncode != 0:
        said = "; ".join(line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip())
        raise ConfigurationError(f"sbatch refused the job{_given(options)}: {said or f'exit status {result.returncode}'}")
    return result.stdout.strip().split(";")[0]


def _given(options: Sequence[str]) -> str:
    return f" (--sbatch {shlex.join(options)!r})" if options else ""


def array_tasks(job_id: str) -> Optional[List[TaskState]]:
    """The tasks of job array ``job_id`` that have not ended; ``None`` when SLURM did not answer."""
    result = _run(["squeue", "--noheader", "--jobs", job_id, "--format", "%i|%T|%r"])
    if result.returncode != 0:
        # A job that ended a while ago (SLURM's MinJobAge) is unknown to squeue: no task is left.
        return [] if "Invalid job id" in result.stderr else None
    tasks = []
    for line in result.stdout.splitlines():
        task, state, reason = (line.strip().split("|") + ["", ""])[:3]
        if task:
            tasks.append(TaskState(task, state, reason))
    return tasks


def cancel_pending(job_id: str) -> None:
    """Cancel the tasks of ``job_id`` that have not started (or were requeued and wait to start again)."""
    _run(["scancel", "--state", PENDING, job_id])


def requeue(task: str) -> bool:
    """Ask SLURM to requeue ``task`` (``ARRAYID_TASK``); whether it agreed."""
    return _run(["scontrol", "requeue", task]).returncode == 0


def _run(command: List[str], stdin: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    try:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=SLURM_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(command, 1, "", str(error))
