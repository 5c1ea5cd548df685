"""What identifies the process that runs a trial, so that a dead one is recognised without mistakes.

A host name does not identify a machine: containers and cluster nodes often share one
(``localhost``, a pod template), and a restarted ``tune`` there would fail another machine's
live trial. A process id is meaningful only within one pid namespace of one running kernel, so a
trial's worker is identified by the kernel's boot id (new at every boot, distinct between
machines), its pid namespace, the pid and the process start time (a reused pid starts later).
"""
import os
import socket
from typing import Dict, Optional, Union

WorkerIdentity = Dict[str, Union[str, int, None]]

_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_PID_NAMESPACE = "/proc/self/ns/pid"


def process_space() -> Optional[str]:
    """``BOOT_ID/PID_NAMESPACE``: where a pid means one process; ``None`` where Linux's ``/proc`` is missing."""
    try:
        with open(_BOOT_ID, encoding="ascii") as file:
            boot_id = file.read().strip()
        namespace = os.readlink(_PID_NAMESPACE)
    except OSError:
        return None
    return f"{boot_id}/{namespace}"


def process_start_time(pid: int) -> Optional[int]:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat(5); the first two fields were split off


def this_process() -> WorkerIdentity:
    """This process's identity: the host name (for people to read), process space, pid, start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "space": process_space(), "pid": pid, "started": process_start_time(pid)}


def same_process_space(identity: WorkerIdentity) -> bool:
    """Whether ``identity``'s pid can be looked up from here (same kernel boot, same pid namespace)."""
    here = process_space()
    return here is not None and identity.get("space") == here


def is_this_process(identity: WorkerIdentity) -> bool:
    """Whether ``identity`` is this very process."""
    return same_process_space(identity) and identity.get("pid") == os.getpid()


def has_ended(identity: WorkerIdentity) -> bool:
    """Whether the process of ``identity``, in this process space, has ended (its pid gone or reused)."""
    pid = int(identity["pid"])  # type: ignore[arg-type]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    started = identity.get("started")
    now = process_start_time(pid)
    return started is not None and now is not None and now != started
