"""Setting up the Optuna study: storage, sampler and pruner, direction, create or join.

The sampler and pruner come from the ``--optuna-param-path`` JSON file, naming classes of
``optuna.samplers`` / ``optuna.pruners`` with their keyword ``attributes``::

    {
      "sampler": {"type": "TPESampler", "attributes": {"seed": 42, "n_startup_trials": 5}},
      "pruner": {"type": "PatientPruner",
                 "attributes": {"patience": 1,
                                "wrapped_pruner": {"type": "MedianPruner", "attributes": {}}}}
    }

An attribute that is itself ``{"type": ..., "attributes": ...}`` naming a sampler or pruner is
built first, so wrapping pruners and samplers work.
"""
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import optuna
from allennlp.common.checks import ConfigurationError

from allennlp_optuna.errors import first_line, read_json_file
from allennlp_optuna.redaction import redact_url
from allennlp_optuna.objectives import infer_direction  # noqa: F401 (re-exported)
from allennlp_optuna.trial_attrs import CONFIG_ATTR, METRIC_ATTR  # noqa: F401 (re-exported)
from allennlp_optuna.typed_entries import is_typed_entry, keyword_arguments, unknown_attributes

DEFAULT_STORAGE = "sqlite:///allennlp_optuna.db"
"""An SQLite file ``allennlp_optuna.db`` in the current directory, as the older plugin used."""

@dataclass
class OptunaSettings:
    """The sampler and pruner a study uses (``None`` means Optuna's default)."""

    sampler: Optional[optuna.samplers.BaseSampler] = None
    pruner: Optional[optuna.pruners.BasePruner] = None

    @classmethod
    def from_file(cls, path: Optional[str], sampler_arguments: Optional[Mapping[str, Any]] = None) -> "OptunaSettings":
        """Read the ``--optuna-param-path`` file; ``None`` gives Optuna's defaults.

        Args:
            path: the file, or ``None``.
            sampler_arguments: keyword arguments the sampler gets too, where its class takes them
                and the file does not set them (a ``constraints_func``, say).
        """
        if path is None:
            return cls()
        settings = read_json_file(path, "Optuna settings file")
        return cls.from_dict(settings, source=path, sampler_arguments=sampler_arguments)

    @classmethod
    def from_dict(
        cls, settings: Any, source: str = "Optuna settings", sampler_arguments: Optional[Mapping[str, Any]] = None
    ) -> "OptunaSettings":
        """Build from the parsed file content (keys ``sampler`` and ``pruner``); see :meth:`from_file`."""
        if not isinstance(settings, dict):
            raise ConfigurationError(f"{source}: expected an object with 'sampler' and/or 'pruner'")
        unknown = sorted(set(settings) - {"sampler", "pruner"})
        if unknown:
            raise ConfigurationError(f"{source}: unknown key(s) {unknown}; expected 'sampler' and/or 'pruner'")
        sampler = settings.get("sampler")
        pruner = settings.get("pruner")
        return cls(
            sampler=None if sampler is None else _build(sampler, "sampler", f"{source}: sampler", sampler_arguments),
            pruner=None if pruner is None else _build(pruner, "pruner", f"{source}: pruner"),
        )


_MODULES = {"sampler": (optuna.samplers, optuna.samplers.BaseSampler), "pruner": (optuna.pruners, optuna.pruners.BasePruner)}


def _public_classes(kind: str) -> List[str]:
    module, base = _MODULES[kind]
    return sorted(
        name
        for name in getattr(module, "__all__", dir(module))
        if inspect.isclass(getattr(module, name, None))
        and issubclass(getattr(module, name), base)
        and not name.startswith("Base")
    )


def _build(spec: Any, kind: str, where: str, defaults: Optional[Mapping[str, Any]] = None) -> Any:
    if not is_typed_entry(spec):
        raise ConfigurationError(f"{where}: expected {{\"type\": ..., \"attributes\": {{...}}}}, got {json.dumps(spec)}")
    name = spec["type"]
    if name not in _public_classes(kind):
        raise ConfigurationError(
            f"{where}: unknown {kind} {name!r}; use one of {', '.join(_public_classes(kind))}"
        )
    cls = getattr(_MODULES[kind][0], name)
    attributes = dict(spec.get("attributes") or {})
    for key, value in attributes.items():
        if is_typed_entry(value):
            nested_kind = "pruner" if value["type"] in _public_classes("pruner") else "sampler"
            attributes[key] = _build(value, nested_kind, f"{where}.{key}")
    accepted, _ = keyword_arguments(cls)
    unknown = unknown_attributes(attributes, accepted)
    if unknown:
        raise ConfigurationError(
            f"{where}: {name} has no argument(s) {unknown}; it takes {', '.join(accepted)}"
        )
    extra = {key: value for key, value in (defaults or {}).items() if key in accepted and key not in attributes}
    try:
        return cls(**attributes, **extra)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {name}({json.dumps(spec.get('attributes') or {})}) failed: {error}")


STORAGE_CONNECT_TIMEOUT = 10
"""Seconds to wait for a database server to answer a new connection (an unreachable host, a
firewall dropping packets) before ``tune`` gives up with one line, instead of the driver's minutes."""


def engine_options(storage: str) -> Optional[Dict[str, Any]]:
    """SQLAlchemy engine options for ``storage``: a bounded connect wait for database servers, a lock wait for SQLite."""
    backend = storage.split(":", 1)[0].split("+", 1)[0]
    if backend == "sqlite":
        return {"connect_args": {"timeout": 120}}  # one process writes at a time: wait for the lock, not 5 s
    if backend in ("postgresql", "postgres", "mysql"):
        return {"connect_args": {"connect_timeout": STORAGE_CONNECT_TIMEOUT}}
    return None


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """Open a storage URL, turning connection problems into one ``ConfigurationError`` line.

    A database server that does not answer within :data:`STORAGE_CONNECT_TIMEOUT` seconds is
    such a problem. The message never shows the URL's password.
    """
    try:
        return optuna.storages.get_storage(optuna.storages.RDBStorage(storage, engine_kwargs=engine_options(storage)))
    except Exception as error:  # SQLAlchemy, driver and URL errors come in many types
        raise ConfigurationError(f"cannot open storage {redact_url(storage)}: {redact_url(first_line(error))}")


def create_or_join_study(
    study_name: str,
    storage: str,
    direction: Union[str, Sequence[str]],
    settings: OptunaSettings,
    join_existing: bool,
) -> optuna.Study:
    """Create the study, or join it when it exists and ``join_existing`` is set.

    An existing study is never touched without ``join_existing``; joining it with another
    direction is refused. Several directions (a list) create a multi-objective study.
    """
    directions = [direction] if isinstance(direction, str) else list(direction)
    rdb = open_storage(storage)
    exists = study_name in study_names(rdb)
    if exists and not join_existing:
        raise ConfigurationError(
            f"study {study_name!r} already exists in {storage}; pass --skip-if-exists to continue it, "
            "or choose another --study-name"
        )
    if exists:
        study = optuna.load_study(study_name=study_name, storage=rdb, sampler=settings.sampler, pruner=settings.pruner)
        existing = ",".join(d.name.lower() for d in study.directions)
        if existing != ",".join(directions):
            raise ConfigurationError(
                f"study {study_name!r} was created to {existing}, but --direction {','.join(directions)} was asked for"
            )
        return study
    return optuna.create_study(
        study_name=study_name,
        storage=rdb,
        directions=directions,
        sampler=settings.sampler,
        pruner=settings.pruner,
        load_if_exists=join_existing,
    )


def study_names(storage: optuna.storages.BaseStorage) -> List[str]:
    """Names of the studies held in ``storage``."""
    return [study.study_name for study in storage.get_all_studies()]


def load_existing_study(study_name: Optional[str], storage: str) -> optuna.Study:
    """Load a study for reading; without a name, the storage's only study.

    Unknown names list the studies that do exist. A missing SQLite file is an error rather
    than a new empty database.
    """
    check_sqlite_file_exists(storage)
    rdb = open_storage(storage)
    names = study_names(rdb)
    if study_name is None:
        if len(names) == 1:
            study_name = names[0]
        else:
            raise ConfigurationError(
                f"{storage} holds {len(names)} studies ({', '.join(names) or 'none'}); choose one with --study-name"
            )
    if study_name not in names:
        raise ConfigurationError(
            f"no study {study_name!r} in {storage}; studies there: {', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=study_name, storage=rdb)


def check_sqlite_file_exists(storage: str) -> None:
    """Refuse an ``sqlite:///`` URL whose file does not exist (opening it would create it)."""
    # SQLAlchemy takes a quarter of a second to import; only commands that read a study need it.
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except ArgumentError:
        return  # open_storage reports malformed URLs
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not os.path.isfile(url.database):
            raise ConfigurationError(
                f"storage {storage} does not exist: no file {os.path.abspath(url.database)}; "
                "pass the --storage that allennlp tune used"
            )


def default_study_name(config_file: str) -> str:
    """The config file's stem, e.g. ``imdb_optuna`` for ``config/imdb_optuna.jsonnet``."""
    return Path(config_file).name.split(".")[0]
