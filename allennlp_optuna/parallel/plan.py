"""What each worker process gets: its GPUs, or its share of the CPU cores.

With ``--devices 0,1,2,3`` each worker sees only its own GPU(s) (``CUDA_VISIBLE_DEVICES``) and
the trainer's ``cuda_device`` is set to match; on CPU the workers split the cores between their
torch thread pools.
"""
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from allennlp.common.checks import ConfigurationError


logger = logging.getLogger(__name__)


@dataclass
class WorkerPlan:
    """What one worker process gets: its GPUs, or its share of the CPU threads.

    Args:
        index: the worker's number, from 0.
        devices: the GPU ids it may use (empty on CPU).
        torch_threads: size of its torch thread pool (``None``: torch's default).
    """

    index: int
    devices: List[int] = field(default_factory=list)
    torch_threads: Optional[int] = None

    def environment(self) -> Dict[str, str]:
        """Environment variables the worker sets before torch touches a device."""
        env: Dict[str, str] = {}
        if self.devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in self.devices)
        if self.torch_threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.torch_threads)
        return env

    def config_overrides(self) -> Dict[str, Any]:
        """Overrides that point the trainer at the worker's devices, renumbered from 0."""
        if len(self.devices) == 1:
            return {"trainer.cuda_device": 0}
        if len(self.devices) > 1:
            return {"distributed.cuda_devices": list(range(len(self.devices)))}
        return {}


def plan_workers(
    n_workers: Optional[int],
    devices: Optional[Sequence[int]] = None,
    devices_per_trial: int = 1,
    cpu_count: Optional[int] = None,
) -> List[WorkerPlan]:
    """Split the GPUs, or the CPU cores, between the workers.

    Args:
        n_workers: how many workers; with ``devices`` it defaults to one per
            ``devices_per_trial`` GPUs, else to 1.
        devices: GPU ids (``--devices 0,1,2,3``); ``None`` trains on CPU.
        devices_per_trial: GPUs each trial uses (more than one trains distributed).
        cpu_count: cores to split on CPU; defaults to the cores this process may use.

    Example::

        >>> [p.devices for p in plan_workers(None, [0, 1, 2, 3], devices_per_trial=2)]
        [[0, 1], [2, 3]]
        >>> [p.torch_threads for p in plan_workers(2, cpu_count=8)]
        [4, 4]
    """
    if devices_per_trial < 1:
        raise ConfigurationError(f"--devices-per-trial must be at least 1, got {devices_per_trial}")
    if devices_per_trial > 1 and not devices:
        raise ConfigurationError(
            f"--devices-per-trial {devices_per_trial} takes effect only with --devices; list the GPUs to split "
            f"between the workers, e.g. --devices {','.join(map(str, range(devices_per_trial)))}"
        )
    if devices:
        devices = list(devices)
        if len(set(devices)) != len(devices):
            raise ConfigurationError(f"--devices lists a GPU twice: {','.join(map(str, devices))}")
        fitting = len(devices) // devices_per_trial
        n_workers = fitting if n_workers is None else n_workers
        if n_workers < 1 or n_workers > fitting:
            raise ConfigurationError(
                f"--devices {','.join(map(str, devices))} holds {fitting} worker(s) of {devices_per_trial} GPU(s) "
                f"each, but --n-workers {n_workers} was asked for; list more devices or lower --n-workers"
            )
        _warn_about_idle_devices(devices, n_workers * devices_per_trial)
        return [
            WorkerPlan(i, devices[i * devices_per_trial : (i + 1) * devices_per_trial]) for i in range(n_workers)
        ]
    n_workers = 1 if n_workers is None else n_workers
    if n_workers < 1:
        raise ConfigurationError(f"--n-workers must be at least 1, got {n_workers}")
    if n_workers == 1:
        return [WorkerPlan(0)]
    cpus = cpu_count or len(os.sched_getaffinity(0))
    return [WorkerPlan(i, torch_threads=max(1, cpus // n_workers)) for i in range(n_workers)]


def _warn_about_idle_devices(devices: Sequence[int], used: int) -> None:
    if used < len(devices):
        logger.warning(
            "--devices %s: the workers train on GPU(s) %s; GPU(s) %s stay idle.",
            ",".join(map(str, devices)), ",".join(map(str, devices[:used])), ",".join(map(str, devices[used:])),
        )


def with_overrides(overrides: Union[str, Dict[str, Any]], extra: Dict[str, Any]) -> Union[str, Dict[str, Any]]:
    """``overrides`` (a dict, or a Jsonnet string as ``allennlp train -o``) with ``extra`` on top."""
    if not extra:
        return overrides
    if isinstance(overrides, dict):
        return {**overrides, **extra}
    if not overrides.strip():
        return json.dumps(extra)
    return f"({overrides}) + {json.dumps(extra)}"  # Jsonnet: evaluated with the trial's ext vars

