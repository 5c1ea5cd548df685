"""Checks that ``allennlp tune`` runs before the first trial trains, one ``ConfigurationError`` each.

What the machine decides (a directory that cannot be created, a package that does not import,
a GPU that is not there) fails here with one line naming the flag, instead of as a traceback
after a trial has started. Nothing is written: the serialization directory is probed, not
created (``tune`` creates it once the study is open).
"""
import os
import tempfile
from typing import Dict, Optional, Sequence

from allennlp.common.checks import ConfigurationError

from allennlp_optuna.core.errors import first_line
from allennlp_optuna.study.config import example_ext_vars, unread_ext_vars
from allennlp_optuna.study.repeats import RepeatPlan
from allennlp_optuna.study.search_space import SearchSpace
from allennlp_optuna.study.storage import journal_file


def check_named(path: str, flag: str, what: str, example: str) -> None:
    """Refuse an empty path (``-s ''``, ``-o ''``), which would name the current directory or nothing.

    Args:
        path: the path given.
        flag: the option that gave it, e.g. ``--serialization-dir``.
        what: what it names, e.g. ``directory``.
        example: how the option is used, e.g. ``-s result``.
    """
    if not path.strip():
        raise ConfigurationError(f"{flag} is empty; name a {what}, e.g. {example}")


def check_serialization_dir(path: str, nonempty_advice: Optional[str] = None) -> None:
    """Refuse a ``--serialization-dir`` that is no directory, or that cannot be created or written to.

    Args:
        path: the directory (it may not exist yet).
        nonempty_advice: refuse a directory that holds files too, with this advice (``retrain``'s
            ``pass -f to overwrite it or -r to resume its training``); ``None`` accepts one.
    """
    check_named(path, "--serialization-dir", "directory", "-s result")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigurationError(f"--serialization-dir {path} is a file, not a directory")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise ConfigurationError(f"cannot create --serialization-dir {path}: {existing} is not a directory")
    try:
        probe_writing(existing)
    except OSError as error:
        what = "write to" if existing == os.path.abspath(path) else "create"
        raise ConfigurationError(f"cannot {what} --serialization-dir {path}: {error.strerror} ({existing})")
    if nonempty_advice is not None and os.path.isdir(path) and os.listdir(path):
        raise ConfigurationError(f"serialization directory {path} is not empty; {nonempty_advice}")


def probe_writing(directory: str) -> None:
    """Create (and remove) a directory in ``directory``: the ``OSError`` that writing there would raise, or nothing."""
    with tempfile.TemporaryDirectory(dir=directory, prefix=".allennlp-optuna-probe-"):
        pass


def check_journal_directory(storage: str) -> None:
    """Refuse a ``--storage`` journal file in a directory that is missing or cannot be written (nothing is written)."""
    path = journal_file(storage)
    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(f"cannot use journal file {path}: no directory {directory}")
    try:
        probe_writing(directory)
    except OSError as error:
        raise ConfigurationError(f"cannot write journal file {path}: {error.strerror} ({directory})")


def _nearest_existing(path: str) -> str:
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def import_packages(packages: Sequence[str]) -> None:
    """Import each ``--include-package`` with its submodules; one that does not import is named."""
    from allennlp.common.util import import_module_and_submodules

    for package in packages:
        try:
            import_module_and_submodules(package)
        except Exception as error:  # ModuleNotFoundError, and whatever the package's own code raises
            raise ConfigurationError(f"--include-package: cannot import {package!r}: {first_line(error)}")


def check_devices(devices: Optional[Sequence[int]], visible: Optional[int] = None) -> None:
    """Refuse ``--devices`` that name a GPU this process cannot see.

    Args:
        devices: the GPU ids of ``--devices``.
        visible: how many GPUs are visible (default: ``torch.cuda.device_count()``, which
            respects ``CUDA_VISIBLE_DEVICES`` and starts no CUDA context).
    """
    if not devices:
        return
    if visible is None:
        import torch

        visible = torch.cuda.device_count()
    missing = [device for device in devices if device < 0 or device >= visible]
    if not missing:
        return
    listed = ",".join(str(device) for device in devices)
    if visible == 0:
        raise ConfigurationError(
            f"--devices {listed}: this machine has no GPU visible to PyTorch; leave out --devices to train on CPU"
        )
    raise ConfigurationError(
        f"--devices {listed}: GPU {','.join(map(str, missing))} is not among the {visible} visible here "
        f"(ids 0 to {visible - 1})"
    )


OUTPUT_EXAMPLES = {"-o/--output": "report.html", "--csv": "trials.csv", "--output-file": "best_config.json"}
"""How each output file option is used, for the message when it is empty."""


def check_output_file(path: str, flag: str) -> None:
    """Refuse an output file (``--output-file``, ``tune-report -o``/``--csv``) that cannot be written.

    Checked before anything is written, so that one bad path leaves no other output behind.
    """
    check_named(path, flag, "file", f"{flag.split('/')[-1]} {OUTPUT_EXAMPLES.get(flag, 'out.json')}")
    if os.path.isdir(path):
        raise ConfigurationError(f"{flag} {path} is a directory; name a file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(f"cannot write {flag} {path}: no directory {directory}")
    if not os.access(directory, os.W_OK):
        raise ConfigurationError(f"cannot write {flag} {path}: {directory} is not writable")


def check_repeat_variable(repeats: RepeatPlan, search_space: SearchSpace, config_file: str) -> Dict[str, str]:
    """The ``--repeat`` variable's first value as an ext var; refuse one the search space also samples, or
    one the config never reads (every run of a trial would train the same)."""
    extra = repeats.extra_ext_vars
    clash = sorted(set(extra) & set(search_space.names))
    if clash:
        raise ConfigurationError(
            f"--repeat varies {clash[0]!r}, which the search space also samples; repeat another std.extVar"
        )
    variable = repeats.variable
    if variable is not None and unread_ext_vars(config_file, example_ext_vars(search_space, extra), [variable]):
        raise ConfigurationError(
            f"--repeat {repeats.repeat}: {config_file} never reads std.extVar({variable!r}), so the "
            f"{len(repeats.values)} runs of a trial would train the same; read it in the config (a data path per "
            f"fold, say), or use --seeds {len(repeats.values)} for runs that differ by seed"
        )
    return extra
