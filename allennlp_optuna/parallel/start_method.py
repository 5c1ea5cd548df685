"""How processes start: never by forking a process that runs threads.

A study process runs threads (Optuna's heartbeat, torch's thread pools), and forking a process
that runs threads can deadlock the child: Python 3.12 warns about it, Python 3.14 no longer
forks by default, and AllenNLP's own docs trace data-loader hangs to it (allenai/allennlp#4848).
Worker processes and AllenNLP's data-loader workers therefore start from a *fork server*, a
single-threaded process that imports the training code once and forks a child per request, so
a child still starts in well under a second (``spawn``, where there is no fork server, imports
everything anew in each child).
"""
import logging
import multiprocessing
from typing import Any, List

from allennlp.common import Params

logger = logging.getLogger(__name__)

FORK_SERVER_PRELOAD: List[str] = ["allennlp_optuna.trial.executor", "allennlp_optuna.parallel.workers"]
"""Modules the fork server imports once, before it forks any child: AllenNLP's training code."""

DATA_LOADERS = ("data_loader", "validation_data_loader")


def safe_start_method() -> str:
    """``forkserver`` where the platform has one (Linux, macOS), else ``spawn``."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def safe_context() -> Any:
    """The multiprocessing context of :func:`safe_start_method`, its fork server preloading AllenNLP."""
    method = safe_start_method()
    if method == "forkserver":
        multiprocessing.set_forkserver_preload(FORK_SERVER_PRELOAD)
    return multiprocessing.get_context(method)


def data_loaders_without_fork(params: Params) -> None:
    """Start the config's data-loader workers safely where the config leaves it to AllenNLP.

    AllenNLP's ``MultiProcessDataLoader`` forks its ``num_workers`` workers by default, at every
    epoch, from the training process. Where a data loader has workers and no ``start_method``,
    this sets :func:`safe_start_method` (it shows in the trial's ``config.json``) and makes it
    this process's default start method too, as Python 3.14 does: the loader creates its
    progress-bar lock in the default context (``multiprocessing.RLock()``), which must match
    the workers'. A ``start_method`` that the config sets is kept.
    """
    config = params.params
    for key in DATA_LOADERS:
        loader = config.get(key)
        if isinstance(loader, dict) and loader.get("num_workers") and "start_method" not in loader:
            loader["start_method"] = _safe_default_start_method()
            logger.info("%s: its worker processes start by %s, not fork", key, loader["start_method"])


def _safe_default_start_method() -> str:
    method = safe_start_method()
    if multiprocessing.get_start_method(allow_none=True) != method:
        multiprocessing.set_start_method(method, force=True)
    safe_context()
    return method
