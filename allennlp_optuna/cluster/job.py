"""What ``allennlp tune --launcher slurm`` submits: a batch script and the settings of its tasks, under ``DIR/slurm``.

One submission writes two files in ``SERIALIZATION_DIR/slurm/``, named ``tune-TIME-PID``:

* ``.json``: the run's settings as ``allennlp tune``'s options (:meth:`TuneSettings.options
  <allennlp_optuna.study.settings.TuneSettings.options>`), as each task runs them: joining the
  study, within the study-wide budget that the submission fixed, until its deadline;
* ``.sh``: the batch script. Its ``#SBATCH`` lines make the job array (one task per worker),
  requeueable (``--requeue``), with each task's output appended to ``slurm/ARRAYID_TASK.out``
  (kept over requeues), and the time limit's warning (``--signal=B:USR1@90``) sent to the worker.
  Its one command ``exec``s the worker with this very Python, so that the worker *is* the batch
  step's process and gets SLURM's signals itself (a shell would hold them until its child ends).

``--sbatch`` options go on ``sbatch``'s command line, where they take precedence over the
``#SBATCH`` lines (a ``--job-name``, an ``--output`` of the user's own), verbatim.
"""
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.cluster.slurm import split_options
from allennlp_optuna.study.settings import LAUNCH_LOCAL, TuneSettings

SLURM_DIR = "slurm"
"""Where a submission's files and its tasks' output go, in the serialization directory."""

TIME_LIMIT_WARNING_SECONDS = 90
"""How long before a task's time limit SLURM warns its worker (SIGUSR1), which then requeues the task.
SLURM sends the signal up to 60 s late; the rest is time to record the trial."""

WORKER_MODULE = "allennlp_optuna.cluster.worker"

_NOT_OPTIONS = {"--array": "--n-workers sets the number of tasks", "--wrap": "the job runs the tune worker's batch script"}


@dataclass(frozen=True)
class ArrayJob:
    """One submission of ``allennlp tune --launcher slurm``: a job array of ``--n-workers`` tasks.

    Args:
        settings: the run's settings.
        sbatch_options: ``--sbatch``, split into ``sbatch``'s arguments.
        name: the stem of its files in ``DIR/slurm`` (``tune-TIME-PID``).
    """

    settings: TuneSettings
    sbatch_options: List[str]
    name: str

    @classmethod
    def plan(cls, settings: TuneSettings) -> "ArrayJob":
        """The job for ``settings``; ``--sbatch`` options that the launcher sets itself are refused."""
        options = split_options(settings.sbatch)
        for option in options:
            flag = "--array" if option.startswith("-a") else option.split("=", 1)[0]  # -a N, -aN: --array
            if flag in _NOT_OPTIONS:
                raise ConfigurationError(f"--sbatch cannot set {flag}: {_NOT_OPTIONS[flag]}")
        return cls(settings, options, f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")

    @property
    def directory(self) -> str:
        """``DIR/slurm``, absolute: the tasks may start in another directory."""
        return os.path.abspath(os.path.join(self.settings.serialization_dir, SLURM_DIR))

    @property
    def settings_file(self) -> str:
        """The tasks' settings (JSON)."""
        return os.path.join(self.directory, f"{self.name}.json")

    @property
    def script_file(self) -> str:
        """The batch script."""
        return os.path.join(self.directory, f"{self.name}.sh")

    @property
    def n_tasks(self) -> int:
        """The tasks of the array: one per ``--n-workers``."""
        return self.settings.n_workers or 1

    def output_pattern(self, job_id: str = "%A") -> str:
        """Where the tasks' output goes: ``DIR/slurm/ARRAYID_TASK.out``."""
        return os.path.join(self.directory, f"{job_id}_%a.out" if job_id == "%A" else f"{job_id}_*.out")

    def script(self) -> str:
        """The batch script's text (see the module's docstring)."""
        lines = [
            "#!/bin/bash",
            f"# Written by allennlp tune --launcher slurm: each task is one worker of study "
            f"{self.settings.study_name!r}; its settings are in {self.settings_file}.",
            f"#SBATCH --job-name=tune-{self.settings.study_name}",
            f"#SBATCH --array=0-{self.n_tasks - 1}",
            "#SBATCH --requeue",
            "#SBATCH --open-mode=append",
            f"#SBATCH --output={self.output_pattern()}",
            f"#SBATCH --chdir={os.getcwd()}",
            f"#SBATCH --signal=B:USR1@{TIME_LIMIT_WARNING_SECONDS}",
            f"exec {sys.executable} -m {WORKER_MODULE} {self.settings_file}",
        ]
        return "\n".join(lines) + "\n"

    def write(self, max_trials: Optional[int], deadline: Optional[float]) -> None:
        """Write the tasks' settings and the batch script into ``DIR/slurm``.

        Args:
            max_trials: the study-wide budget every task keeps to (``None``: none).
            deadline: ``time.time()`` after which no task starts a trial (``None``: none).
        """
        os.makedirs(self.directory, exist_ok=True)
        task = {
            "config_file": self.settings.training.config_file,
            "search_space_file": self.settings.search_space_file,
            "serialization_dir": self.settings.serialization_dir,
            "options": task_options(self.settings, max_trials),
            "deadline": deadline,
        }
        with open(self.settings_file, "w", encoding="utf-8") as file:
            json.dump(task, file, indent=2)
        with open(self.script_file, "w", encoding="utf-8") as file:
            file.write(self.script())


def task_options(settings: TuneSettings, max_trials: Optional[int]) -> Dict[str, Any]:
    """The options a task runs with: it joins the study (already created, its ``--enqueue-trial`` values
    queued) and runs its workers here, within the study-wide budget; no ``--n-trials`` of its own."""
    return {
        **settings.options(),
        "launcher": LAUNCH_LOCAL, "sbatch": "", "detach": False, "n_workers": None, "devices": None,
        "skip_if_exists": True, "enqueue_trial": [], "n_trials": None, "timeout": None, "max_trials": max_trials,
    }


def read_task_settings(path: str, gpus: int) -> Optional[TuneSettings]:
    """The settings a task of the job runs with, on ``gpus`` GPUs; ``None`` once the job's deadline has passed.

    The task's workers go round its GPUs (``--trials-per-device`` per GPU) or, without GPUs, are
    ``--trials-per-device`` workers sharing its CPUs.
    """
    with open(path, encoding="utf-8") as file:
        task = json.load(file)
    options = task["options"]
    deadline = task.get("deadline")
    if deadline is not None:
        if deadline <= time.time():
            return None
        options["timeout"] = deadline - time.time()
    if gpus:
        options["devices"] = list(range(gpus))
    else:
        options["n_workers"], options["trials_per_device"] = options.get("trials_per_device", 1), 1
    return TuneSettings.parse(task["config_file"], task["search_space_file"], task["serialization_dir"], **options)
