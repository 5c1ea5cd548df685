"""Riding out a database outage: storage calls wait for the server to come back.

A PostgreSQL or MySQL server restarts (an upgrade, a failover, a crash) while a study runs.
Every worker holds pooled connections that are now dead, and each storage call during the
outage fails: a pruning report fails its trial, a failed ``tell`` kills its worker and leaves the
trial RUNNING. :class:`ReconnectingStorage` is Optuna's ``RDBStorage`` whose calls, on a lost
or refused connection, wait and try again (with growing pauses, for up to
:data:`OUTAGE_SECONDS`) instead of failing; SQLAlchemy's ``pool_pre_ping`` replaces dead
pooled connections when the server is back. Each call opens its own session and transaction,
so trying it again repeats the whole transaction. SQLite storages are files: nothing to wait for.

Two calls are not simply repeatable, and are handled:

* ``set_trial_state_values`` (finishing a trial) whose commit reached the server but whose
  answer was lost: trying again finds the trial finished; if it finished with the state being
  set, the call succeeded.
* creating a trial whose answer was lost leaves an extra RUNNING trial without a worker; this
  needs the connection to drop in the instant between the server's commit and its reply, and is
  not handled (it would stay RUNNING, and is visible in ``tune-report``).
"""
import functools
import logging
import threading
import time
from typing import Any, Callable, Optional

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from allennlp_optuna.core.compat import RDB_BACKEND_CALLS
from allennlp_optuna.core.redaction import redact_url
from allennlp_optuna.study.storage import is_sqlite

logger = logging.getLogger(__name__)

OUTAGE_SECONDS = 300.0
"""How long a storage call waits for its database server to come back before it fails."""

_FIRST_PAUSE, _LONGEST_PAUSE = 0.5, 10.0
_inside = threading.local()


def disconnect_in(error: BaseException) -> Optional[BaseException]:
    """The error in ``error``'s chain (itself or a cause) saying the database server was unreachable, if any."""
    import sqlalchemy.exc

    seen: Optional[BaseException] = error
    while seen is not None:
        if isinstance(seen, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                             sqlalchemy.exc.DisconnectionError)):
            return seen
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _waiting_out_outages(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` calling again on a lost connection, for up to :data:`OUTAGE_SECONDS` (outermost call only)."""

    @functools.wraps(method)
    def call(storage: "ReconnectingStorage", *args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "call", False):  # a storage call within another: the outer one tries again
            return method(storage, *args, **kwargs)
        _inside.call = True
        try:
            return until_reachable(storage.url, lambda attempt: _attempt(storage, name, method, attempt, args, kwargs))
        finally:
            _inside.call = False

    return call


def _attempt(storage: RDBStorage, name: str, method: Callable[..., Any], attempt: int, args: Any, kwargs: Any) -> Any:
    try:
        return method(storage, *args, **kwargs)
    except optuna.exceptions.UpdateFinishedTrialError:
        if attempt and name == "set_trial_state_values" and _finished_as(storage, args, kwargs):
            return True  # the attempt whose answer was lost had committed
        raise


def until_reachable(url: str, call: Callable[[int], Any]) -> Any:
    """``call(attempt)``, called again while it fails for an unreachable server, for up to :data:`OUTAGE_SECONDS`."""
    deadline, pause, attempt = time.monotonic() + OUTAGE_SECONDS, _FIRST_PAUSE, 0
    while True:
        try:
            return call(attempt)
        except Exception as error:
            cause = disconnect_in(error)
            if cause is None or time.monotonic() + pause > deadline:
                raise
            if attempt == 0:
                logger.warning("Storage %s is unreachable (%s); trying again for up to %.0f s.",
                               redact_url(url), redact_url(str(cause).strip().splitlines()[0]), OUTAGE_SECONDS)
        time.sleep(pause)
        attempt, pause = attempt + 1, min(pause * 2, _LONGEST_PAUSE)


def _finished_as(storage: RDBStorage, args: Any, kwargs: Any) -> bool:
    """Whether the trial a ``set_trial_state_values(trial_id, state, values)`` call names already has that state."""
    trial_id = kwargs.get("trial_id", args[0] if args else None)
    state = kwargs.get("state", args[1] if len(args) > 1 else None)
    return isinstance(state, TrialState) and RDBStorage.get_trial(storage, trial_id).state == state


class ReconnectingStorage(RDBStorage):
    """Optuna's ``RDBStorage``, waiting out database outages (see the module's docstring).

    It takes ``RDBStorage``'s arguments; ``engine_kwargs`` gain ``pool_pre_ping``. Opening it
    waits for the server too: a worker started (or replaced) during an outage waits, then joins.
    """

    def __init__(self, url: str, engine_kwargs: Optional[dict] = None, **kwargs: Any) -> None:
        options = {**(engine_kwargs or {}), "pool_pre_ping": True}
        until_reachable(url, lambda attempt: super(ReconnectingStorage, self).__init__(url, engine_kwargs=options,
                                                                                      **kwargs))


for _name in sorted(RDB_BACKEND_CALLS):
    if callable(getattr(RDBStorage, _name, None)):
        setattr(ReconnectingStorage, _name, _waiting_out_outages(_name, getattr(RDBStorage, _name)))


def rdb_storage_for(url: str, **kwargs: Any) -> RDBStorage:
    """An ``RDBStorage`` for ``url`` as workers and training processes open it: a
    :class:`ReconnectingStorage` for a database server, plain for SQLite.

    ``tune`` opens the storage first with a plain ``RDBStorage``
    (:func:`allennlp_optuna.study.storage.open_storage`): a server that cannot be reached when the
    command starts is a wrong URL or a server that is down, and it says so at once.
    """
    if is_sqlite(url):
        return RDBStorage(url, **kwargs)
    return ReconnectingStorage(url, **kwargs)
