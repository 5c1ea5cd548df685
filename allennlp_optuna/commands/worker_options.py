"""Options of ``allennlp tune`` for parallel workers, SLURM job arrays, study-wide budgets and crash recovery."""
import argparse
from typing import List

from allennlp_optuna.study.settings import DEFAULT_HEARTBEAT_INTERVAL, LAUNCH_LOCAL, LAUNCHERS


def _device_list(text: str) -> List[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GPU ids separated by commas, e.g. 0,1,2,3; got {text!r}")


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--n-workers``, ``--devices``, ``--devices-per-trial``, ``--trials-per-device``, ``--max-trials``,
    ``--heartbeat-interval``, ``--max-worker-restarts``, and the launcher's options (:func:`add_launcher_arguments`)."""
    parser.add_argument(
        "--n-workers",
        type=int,
        default=None,
        help="worker processes running trials of the study at once (default: 1, or one per "
        "--devices-per-trial GPUs of --devices); on CPU they split the cores",
    )
    parser.add_argument(
        "--devices",
        type=_device_list,
        default=None,
        help="GPU ids to split between the workers, e.g. 0,1,2,3 (each worker sees only its own)",
    )
    parser.add_argument("--devices-per-trial", type=int, default=1, help="GPUs each trial trains on (default: 1)")
    parser.add_argument(
        "--trials-per-device",
        type=int,
        default=1,
        metavar="K",
        help="K workers share each GPU (of --devices, or of each SLURM task), for models too small to fill "
        "one alone (default: 1)",
    )
    parser.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="study-wide budget: stop when the study has this many COMPLETE+PRUNED trials, counting every "
        "worker, machine and earlier run (--n-trials counts only this command's trials)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help="seconds between a running trial's heartbeats; a trial silent for twice as long (its worker "
        f"died) is marked FAIL and retried with the same parameters (default: {DEFAULT_HEARTBEAT_INTERVAL})",
    )
    parser.add_argument(
        "--max-worker-restarts",
        type=int,
        default=3,
        help="how many killed workers (SIGKILL, out of memory) this run replaces in all, waiting 1, 2, 4 ... "
        "30 s before each; one more kill stops it with advice (default: 3)",
    )
    add_launcher_arguments(parser)


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--launcher``, ``--sbatch`` and ``--detach`` (see ``docs/cluster.md``)."""
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default=LAUNCH_LOCAL,
        help="where the --n-workers workers run: 'local' processes (default) or 'slurm', the tasks of one "
        "SLURM job array sharing a journal file (--storage /shared/study.log) or PostgreSQL; tune follows the "
        "study until its budget is done (Ctrl-C detaches, scancel cancels)",
    )
    parser.add_argument(
        "--sbatch",
        type=str,
        default="",
        metavar="OPTIONS",
        help='with --launcher slurm: sbatch options for every task, verbatim, e.g. --sbatch="--partition=gpu '
        '--gres=gpu:1 --time=04:00:00" (with "=", so that one option alone is not read as one of tune\'s)',
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="with --launcher slurm: print the job id and the commands to follow, report on and cancel the "
        "study, and return at once",
    )
