"""Where studies are kept: opening a ``--storage``, finding and loading the studies it holds.

``--storage`` is a SQLAlchemy URL (``sqlite:///study.db``, ``postgresql://user:password@host/db``)
or a journal file (:func:`journal_file`): a path ending in ``.log`` (``/shared/study.log``, as
``optuna-dashboard study.log`` opens it) or any path after ``journal:`` (``journal:/shared/study``).
A journal file is Optuna's ``JournalStorage``, every change appended as a line under a lock that
works on NFS (``JournalFileOpenLock``): what a SLURM job array on a shared filesystem without a
database server uses (see ``docs/cluster.md``). The storage stays a string in the settings and is
opened here (:func:`open_storage`), or, by workers and training processes, by
:func:`allennlp_optuna.faults.recovery.recoverable_storage`.

The default storage is an SQLite file in the current directory, as the older plugin used.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import optuna
from allennlp.common.checks import ConfigurationError
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from allennlp_optuna.core.errors import first_line
from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.study.record import StoredStudy

DEFAULT_STORAGE = "sqlite:///allennlp_optuna.db"
"""An SQLite file ``allennlp_optuna.db`` in the current directory, as the older plugin used."""

STORAGE_CONNECT_TIMEOUT = 10
"""Seconds to wait for a database server to answer a new connection (an unreachable host, a
firewall dropping packets) before ``tune`` gives up with one line, instead of the driver's minutes."""


JOURNAL_PREFIX = "journal:"
"""Names a journal file whatever its name: ``journal:/shared/study``."""

JOURNAL_SUFFIX = ".log"
"""A ``--storage`` that is a path ending in this (and no URL) is a journal file, as ``optuna-dashboard`` takes it."""


def journal_file(storage: str) -> Optional[str]:
    """The path of the journal file ``storage`` names, or ``None`` for a database URL.

    Example::

        >>> journal_file("/shared/study.log"), journal_file("journal:study"), journal_file("sqlite:///s.db")
        ('/shared/study.log', 'study', None)
    """
    if storage.startswith(JOURNAL_PREFIX):
        return storage[len(JOURNAL_PREFIX):]
    if "://" not in storage and storage.endswith(JOURNAL_SUFFIX):
        return storage
    return None


def url_backend(storage: str) -> str:
    """The database of a storage URL: ``sqlite``, ``postgresql``, ``mysql``... (``postgresql+psycopg`` is ``postgresql``)."""
    return storage.split(":", 1)[0].split("+", 1)[0]


def is_sqlite(storage: str) -> bool:
    """Whether ``storage`` is an SQLite URL (a file, or ``sqlite:///:memory:``) or ``:memory:``."""
    return url_backend(storage) == "sqlite" or storage == ":memory:"


class JournalFileStorage(JournalStorage):
    """Optuna's ``JournalStorage`` on a journal file, with the lock that works on NFS.

    Args:
        storage: the ``--storage`` that names the file (see :func:`journal_file`); kept as ``url``,
            which training processes open again, as an ``RDBStorage``'s ``url``.
    """

    def __init__(self, storage: str) -> None:
        path = journal_file(storage)
        if path is None:
            raise ValueError(f"{storage} names no journal file")
        self.url = storage
        super().__init__(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def engine_options(storage: str) -> Optional[Dict[str, Any]]:
    """SQLAlchemy engine options for ``storage``: a bounded connect wait for database servers, a lock wait for SQLite."""
    backend = url_backend(storage)
    if backend == "sqlite":
        return {"connect_args": {"timeout": 120}}  # one process writes at a time: wait for the lock, not 5 s
    if backend in ("postgresql", "postgres", "mysql"):
        return {"connect_args": {"connect_timeout": STORAGE_CONNECT_TIMEOUT}}
    return None


def check_storage_url(storage: str, tuning: bool = True) -> None:
    """Refuse an in-memory SQLite ``--storage`` (``sqlite:///:memory:``, ``sqlite://``), naming the storage to use.

    A study in an in-memory database lives in one connection of one process: the console, worker
    processes, the pruning callback and the commands that read the study later (``best-params``,
    ``retrain``, ``tune-report``) could not open it, so ``tune`` refuses it and says which storage
    to use; for those commands it is an empty database. Other URLs are checked by opening them
    (:func:`open_storage`).

    Args:
        storage: the ``--storage`` URL.
        tuning: for ``tune`` (the study would be created there), else for a command that reads a study.
    """
    scheme, _, location = storage.partition("://")
    if scheme.split("+", 1)[0] != "sqlite" or not _in_memory(location):
        return
    if tuning:
        raise ConfigurationError(
            f"--storage {storage} keeps the study in memory, where no other connection or process can open it "
            "(the console, workers, best-params, retrain, tune-report); use a file, e.g. --storage "
            "sqlite:///study.db, or PostgreSQL or MySQL to share it between machines"
        )
    raise ConfigurationError(
        f"--storage {storage} is an in-memory database, empty in every new process; pass the --storage that "
        "allennlp tune used"
    )


def _in_memory(location: str) -> bool:
    """Whether an SQLite URL's part after ``sqlite://`` opens an in-memory database: no file (and no host,
    which SQLAlchemy refuses), ``:memory:``, or an SQLite URI asking for memory."""
    host, _, database = location.partition("/")
    database = database.split("?", 1)[0]
    if not database:
        return not host
    return database == ":memory:" or database.startswith("file::memory:") or "mode=memory" in location


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """Open a ``--storage`` (a database URL or a journal file), turning problems into one ``ConfigurationError`` line.

    A database server that does not answer within :data:`STORAGE_CONNECT_TIMEOUT` seconds is
    such a problem, and so is a journal file that cannot be opened (``tune`` checks its directory
    first, :func:`~allennlp_optuna.study.preflight.check_journal_directory`). The message never shows the
    URL's password.
    """
    if journal_file(storage) is not None:
        try:
            return JournalFileStorage(storage)
        except (OSError, ValueError) as error:  # no directory, unreadable, or lines that are no journal
            raise ConfigurationError(f"cannot open journal file {journal_file(storage)}: {first_line(error)}")
    try:
        return optuna.storages.get_storage(optuna.storages.RDBStorage(storage, engine_kwargs=engine_options(storage)))
    except Exception as error:  # SQLAlchemy, driver and URL errors come in many types
        raise ConfigurationError(f"cannot open storage {redact_url(storage)}: {redact_url(first_line(error))}")


def study_names(storage: optuna.storages.BaseStorage) -> List[str]:
    """Names of the studies held in ``storage``."""
    return [study.study_name for study in storage.get_all_studies()]


def load_existing_study(study_name: Optional[str], storage: str) -> optuna.Study:
    """Load a study for reading; without a name, the storage's only study.

    Unknown names list the studies that do exist. A missing SQLite file is an error rather
    than a new empty database.
    """
    check_storage_url(storage, tuning=False)
    check_storage_exists(storage)
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


def read_study(study_name: Optional[str], storage: str) -> StoredStudy:
    """:func:`load_existing_study`, read as :class:`~allennlp_optuna.study.record.StoredStudy` (what it recorded)."""
    return StoredStudy.read(load_existing_study(study_name, storage))


def check_storage_exists(storage: str) -> None:
    """Refuse a journal file or an ``sqlite:///`` URL whose file does not exist (opening it would create it).

    When no ``--storage`` was given (the default file is missing: the command runs elsewhere than
    ``tune`` did), the line lists the studies in the SQLite files below the current directory.
    """
    missing = missing_storage_file(storage)
    if missing is not None:
        found = studies_below(os.getcwd()) if storage == DEFAULT_STORAGE else []
        advice = (
            f"studies found below {os.getcwd()}: {'; '.join(found)}; pass the one you mean with --study-name and "
            "--storage" if found else "pass the --storage that allennlp tune used"
        )
        raise ConfigurationError(f"storage {storage} does not exist: no file {missing}; {advice}")


def missing_storage_file(storage: str) -> Optional[str]:
    """The absolute path of a journal file's or an ``sqlite:///`` URL's file when there is no such file yet
    (opening the storage would create it); else ``None``."""
    path = journal_file(storage) or _sqlite_file(storage)
    return os.path.abspath(path) if path is not None and not os.path.isfile(path) else None


def _sqlite_file(storage: str) -> Optional[str]:
    """The file of an ``sqlite:///`` URL (``None`` for other URLs and in-memory databases)."""
    # SQLAlchemy takes a quarter of a second to import; only commands that read a study need it.
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except ArgumentError:
        return None  # open_storage reports malformed URLs
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return url.database
    return None


STORAGE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SEARCH_DEPTH = 2
"""How many directory levels below the current one :func:`studies_below` looks for SQLite storages."""


def studies_below(directory: str, depth: int = SEARCH_DEPTH) -> List[str]:
    """The studies in the Optuna SQLite files below ``directory`` (``depth`` levels at most), each as
    ``NAME (--storage sqlite:///PATH)``, PATH relative to ``directory``; hidden folders and virtualenvs are skipped."""
    from allennlp_optuna.core.compat import is_optuna_sqlite_file

    found = []
    for root, folders, files in os.walk(directory):
        level = 0 if root == directory else os.path.relpath(root, directory).count(os.sep) + 1
        folders[:] = [] if level >= depth else sorted(f for f in folders if not f.startswith(".") and f != "venv")
        for name in sorted(f for f in files if f.endswith(STORAGE_SUFFIXES)):
            path = os.path.join(root, name)
            if not is_optuna_sqlite_file(path):
                continue
            url = f"sqlite:///{os.path.relpath(path, directory)}"
            found += [f"{study} (--storage {url})" for study in optuna.get_all_study_names(storage=url)]
    return found


def default_study_name(config_file: str) -> str:
    """The config file's stem, e.g. ``imdb_optuna`` for ``config/imdb_optuna.jsonnet``."""
    return Path(config_file).name.split(".")[0]
