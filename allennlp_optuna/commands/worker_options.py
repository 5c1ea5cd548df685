"""Options of ``allennlp tune`` for parallel workers, study-wide budgets and crash recovery."""
import argparse
from typing import List

from allennlp_optuna.study.settings import DEFAULT_HEARTBEAT_INTERVAL


def _device_list(text: str) -> List[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GPU ids separated by commas, e.g. 0,1,2,3; got {text!r}")


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--n-workers``, ``--devices``, ``--devices-per-trial``, ``--max-trials``, ``--heartbeat-interval``,
    ``--max-worker-restarts``."""
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
