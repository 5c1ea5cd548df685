"""What each worker process gets: its GPUs, or its share of the CPU cores.

With ``--devices 0,1,2,3`` each worker sees only its own GPU(s) (``CUDA_VISIBLE_DEVICES``) and
the trainer's ``cuda_device`` is set to match; ``--trials-per-device K`` gives each GPU (each
group of ``--devices-per-trial`` GPUs) K workers, for models too small to fill a GPU alone. On
CPU the workers split the cores between their torch thread pools. The ids of ``--devices``
count the GPUs this process sees: where ``CUDA_VISIBLE_DEVICES`` is set already (by SLURM for a
job's GPUs, say), a worker's GPU is the one that it lists at that position.
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
            env["CUDA_VISIBLE_DEVICES"] = ",".join(visible_device_ids(self.devices))
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


def visible_device_ids(devices: Sequence[int]) -> List[str]:
    """The ``CUDA_VISIBLE_DEVICES`` entries of GPUs counted among those this process sees: with
    ``CUDA_VISIBLE_DEVICES=4,6`` (as SLURM sets it for a job's GPUs) GPU 1 is ``"6"``; without it, ``"1"``."""
    visible = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    return [visible[d] if visible and 0 <= d < len(visible) else str(d) for d in devices]


def plan_workers(
    n_workers: Optional[int],
    devices: Optional[Sequence[int]] = None,
    devices_per_trial: int = 1,
    cpu_count: Optional[int] = None,
    trials_per_device: int = 1,
) -> List[WorkerPlan]:
    """Split the GPUs, or the CPU cores, between the workers (counts of at least 1, as
    :class:`~allennlp_optuna.study.settings.TuneSettings` checks them).

    Args:
        n_workers: how many workers; with ``devices`` it defaults to ``trials_per_device`` per
            ``devices_per_trial`` GPUs, else to 1.
        devices: GPU ids (``--devices 0,1,2,3``); ``None`` trains on CPU.
        devices_per_trial: GPUs each trial uses (more than one trains distributed).
        cpu_count: cores to split on CPU; defaults to the cores this process may use.
        trials_per_device: workers sharing each group of ``devices_per_trial`` GPUs (``--trials-per-device``);
            the workers go round the groups, so fewer workers than places spread over the GPUs.

    Example::

        >>> [p.devices for p in plan_workers(None, [0, 1, 2, 3], devices_per_trial=2)]
        [[0, 1], [2, 3]]
        >>> [p.devices for p in plan_workers(None, [0, 1], trials_per_device=2)]
        [[0], [1], [0], [1]]
        >>> [p.torch_threads for p in plan_workers(2, cpu_count=8)]
        [4, 4]
    """
    if devices:
        return _plan_on_devices(n_workers, list(devices), devices_per_trial, trials_per_device)
    if devices_per_trial > 1:
        raise ConfigurationError(
            f"--devices-per-trial {devices_per_trial} takes effect only with --devices; list the GPUs to split "
            f"between the workers, e.g. --devices {','.join(map(str, range(devices_per_trial)))}"
        )
    if trials_per_device > 1:
        raise ConfigurationError(
            f"--trials-per-device {trials_per_device} shares each GPU of --devices between trials; "
            "name the GPUs with --devices (on CPU, --n-workers splits the cores)"
        )
    n_workers = 1 if n_workers is None else n_workers
    if n_workers == 1:
        return [WorkerPlan(0)]
    cpus = cpu_count or len(os.sched_getaffinity(0))
    return [WorkerPlan(i, torch_threads=max(1, cpus // n_workers)) for i in range(n_workers)]


def _plan_on_devices(
    n_workers: Optional[int], devices: List[int], devices_per_trial: int, trials_per_device: int
) -> List[WorkerPlan]:
    """Workers on GPUs: ``trials_per_device`` per group of ``devices_per_trial`` GPUs, going round the groups."""
    listed = ",".join(map(str, devices))
    if len(set(devices)) != len(devices):
        raise ConfigurationError(f"--devices lists a GPU twice: {listed}")
    groups = [devices[i * devices_per_trial : (i + 1) * devices_per_trial]
              for i in range(len(devices) // devices_per_trial)]
    places = [group for _ in range(trials_per_device) for group in groups]
    n_workers = len(places) if n_workers is None else n_workers
    if n_workers < 1 or n_workers > len(places):
        shared = f" ({trials_per_device} trials per GPU)" if trials_per_device > 1 else ""
        raise ConfigurationError(
            f"--devices {listed} holds {len(places)} worker(s) of {devices_per_trial} GPU(s) each{shared}, "
            f"but --n-workers {n_workers} was asked for; list more devices or lower --n-workers"
        )
    _warn_about_idle_devices(devices, places[:n_workers])
    return [WorkerPlan(i, places[i]) for i in range(n_workers)]


def _warn_about_idle_devices(devices: Sequence[int], places: Sequence[Sequence[int]]) -> None:
    used = sorted({device for place in places for device in place}, key=devices.index)
    idle = [device for device in devices if device not in used]
    if idle:
        logger.warning(
            "--devices %s: the workers train on GPU(s) %s; GPU(s) %s stay idle.",
            ",".join(map(str, devices)), ",".join(map(str, used)), ",".join(map(str, idle)),
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

