"""Memory between trials: free what a finished trial held, and keep the garbage collector
off the objects that live as long as the study.

A study process holds millions of long-lived objects: the modules of torch, AllenNLP and
their dependencies, and (with data reuse) every cached ``Instance`` with its tokens. Python's
full garbage collection walks all of them, every time: about 0.3 s per trial on 2,000 IMDB
reviews, and another second when the interpreter exits. :class:`TrialMemory` collects once
after each trial and then *freezes* what survived (``gc.freeze``) whenever the data cache has
grown, so later collections only look at objects made since; :func:`frozen_between_trials`
undoes that when the study ends. Freezing never keeps an object alive: reference counting
still frees everything that is dropped; it only stops the collector from searching frozen
objects for reference cycles.
"""
import ctypes
import gc
from contextlib import contextmanager
from typing import Iterator

import optuna
import torch
from optuna.trial import FrozenTrial

from allennlp_optuna.core.compat import clear_transformer_caches
from allennlp_optuna.trial.data_reuse import CACHE


def release_training_memory() -> None:
    """Free what a finished training held, so that trials neither leak memory nor state.

    AllenNLP caches pretrained transformers by name and hands the *same* module to the next
    model that asks; a later trial would start from an earlier trial's fine-tuned weights.
    """
    clear_transformer_caches()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    _return_freed_heap_to_the_system()


def _return_freed_heap_to_the_system() -> None:
    """glibc keeps freed tensor memory in its arenas; ``malloc_trim`` hands it back, so a
    long study's resident memory stays flat instead of creeping up trial after trial."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


class TrialMemory:
    """Optuna study callback: after each trial, free its memory; freeze the data cache once it grew.

    It runs after Optuna has recorded the trial, when a pruned or failed trial's exception (whose
    traceback holds the model) is gone, so nothing of the trial is frozen. It watches this
    process's :data:`~allennlp_optuna.trial.data_reuse.CACHE` (in a worker process, the worker's own).
    """

    def __init__(self) -> None:
        self.frozen_entries = -1

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        release_training_memory()
        entries = len(CACHE.instances) + len(CACHE.vocabularies)
        if entries != self.frozen_entries:
            gc.freeze()
            self.frozen_entries = entries


@contextmanager
def frozen_between_trials() -> Iterator[None]:
    """Freeze what is alive now (the imported modules) for the study; on exit, drop the
    data cache and let the collector see every object again.

    There is no collection first: it would cost 0.2 s and find next to nothing, since
    nothing has trained yet.
    """
    gc.freeze()
    try:
        yield
    finally:
        CACHE.clear()
        gc.unfreeze()


def exit_without_final_collection() -> None:
    """Before the process exits: spare the interpreter's final collections (about 1 s after
    AllenNLP's imports); memory goes back to the system with the process anyway."""
    gc.freeze()
