"""One writer per state: an OS lock on a lock file beside the state (:func:`state_lock`).

The lock file is ``<state>.lock``, beside the file the state's path resolves to (through
symlinks), so that every spelling of one state takes the same lock. It is an advisory
``flock`` lock (``msvcrt.locking`` on Windows): the operating system releases it when its
process ends, ``kill -9`` included, so a lock never outlives its writer. The holder removes the
lock file when it is done; a writer that was killed leaves it behind, and the next writer takes
the lock on it and removes it in turn.

Readers do not lock: a state file is only ever replaced whole, by a rename
(:func:`rfm_fast.core.io.write_together`), so a reader sees the old state or the new one.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rfm_fast.errors import RFMError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:  # pragma: no cover - Windows
    import msvcrt
except ImportError:
    msvcrt = None  # type: ignore[assignment]

DEFAULT_WAIT_SECONDS = 300.0
"""How long a writer waits for another writer of the same state before it gives up."""
_POLL_SECONDS = 0.05

_held: dict[tuple[str, int], int] = {}
"""(lock file, thread) -> depth: the locks this process holds, so that a holder can call
functions that take the lock again (:meth:`rfm_fast.DailyState.save` inside
:func:`state_lock`)."""
_held_guard = threading.Lock()


def lock_path(state: str | os.PathLike) -> Path:
    """The lock file of the state at ``state``: ``<state>.lock`` beside the file it resolves
    to."""
    target = Path(os.path.realpath(state))
    return target.with_name(target.name + ".lock")


def holds_lock(state: str | os.PathLike) -> bool:
    """Whether this thread holds the lock of the state at ``state``."""
    with _held_guard:
        return (str(lock_path(state)), threading.get_ident()) in _held


@contextlib.contextmanager
def state_lock(
    state: str | os.PathLike,
    wait: float = DEFAULT_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the lock of the state at ``state`` (which need not exist yet) for the ``with``
    block: no other process (or thread) that writes this state through rfm_fast runs its
    block at the same time.

    Once the lock is held, the temporary files that killed writers left beside the state
    (``.<name>.XXXXXXXX.tmp``) are removed. The same thread may take the lock again inside the
    block (it is held once).

    Parameters
    ----------
    state
        The state file.
    wait : float, default 300
        Seconds to wait for another writer to finish; 0 gives up at once.
    on_wait : callable, optional
        Called once with a line to show (``"waiting for the lock on ..."``) when the lock is
        busy and the call starts to wait.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    RFMError
        When another writer still holds the lock after ``wait`` seconds, or the lock file
        cannot be made (a read-only or missing folder).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "shop.rfmstate"
    >>> with state_lock(path) as lock:
    ...     lock.name, holds_lock(path)
    ('shop.rfmstate.lock', True)
    >>> lock.exists(), holds_lock(path)
    (False, False)
    """
    if wait < 0 or wait != wait:
        raise RFMError(f"the wait for a state's lock is a number of seconds >= 0; got {wait}")
    lock = lock_path(state)
    key = (str(lock), threading.get_ident())
    with _held_guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield lock
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    handle = _acquire(lock, state, wait, on_wait)
    with _held_guard:
        _held[key] = 1
    try:
        remove_leftovers(lock.with_name(lock.name[: -len(".lock")]))
        yield lock
    finally:
        with _held_guard:
            del _held[key]
        _release(lock, handle)


def remove_leftovers(target: Path) -> list[Path]:
    """Remove the temporary files beside ``target`` that a writer of it left when it was killed
    (``.<name>.XXXXXXXX.tmp``, as :func:`rfm_fast.core.io.write_together` names them); call it
    only while holding the lock of ``target``. Returns what was removed."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if pattern.fullmatch(name):
            with contextlib.suppress(OSError):
                os.unlink(target.parent / name)
                removed.append(target.parent / name)
    return removed


def _acquire(
    lock: Path, state: str | os.PathLike, wait: float, on_wait: Callable[[str], None] | None
) -> int:
    """Open ``lock`` and lock it, waiting up to ``wait`` seconds; the open file."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RFMError(
                f"cannot lock the state {state}: cannot make its lock file {lock} "
                f"({exc.strerror or exc}); the state was not changed"
            ) from None
        if not _is_lock_file(handle):
            os.close(handle)
            raise RFMError(
                f"cannot lock the state {state}: {lock} exists and is not an rfm_fast lock file "
                "(it holds more than a process id); move it away, or give the state another name"
            )
        if _try_lock(handle):
            if _is_current(handle, lock):
                _note_holder(handle)
                return handle
            os.close(handle)  # its holder removed it as we waited: lock the new one
            continue
        os.close(handle)
        if time.monotonic() >= deadline:
            holder = _holder(lock)
            raise RFMError(
                f"the state {state} is being written by another process{holder} (lock file "
                f"{lock}); it was not changed. Run again when that one has finished, or wait "
                f"longer with --wait SECONDS (waited {wait:g} s)"
            )
        if not told and on_wait is not None:
            on_wait(f"waiting for the lock on {state} (another process is writing it)")
            told = True
        time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))


def _is_lock_file(handle: int) -> bool:
    """Whether the open file is empty or holds a process id (as :func:`_note_holder` writes
    it): a lock file, not a file of the user's that happens to have its name."""
    try:
        size = os.fstat(handle).st_size
        text = os.pread(handle, 32, 0) if size <= 32 else b"x"
    except (OSError, AttributeError):  # (no pread on Windows: trust the name)
        return True
    return re.fullmatch(rb"[0-9]*\n?", text) is not None


def _try_lock(handle: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is not None:  # pragma: no cover - Windows
        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    return True  # pragma: no cover - no OS lock on this platform (documented)


def _is_current(handle: int, lock: Path) -> bool:
    """Whether the locked file is still the one at ``lock`` (a holder removes it as it lets go:
    a waiter that locked the removed file must lock the new one)."""
    try:
        now = os.stat(lock)
    except FileNotFoundError:
        return False
    held = os.fstat(handle)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _note_holder(handle: int) -> None:
    """Write the holder's process id into the lock file (for the message of a waiter)."""
    with contextlib.suppress(OSError):
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, f"{os.getpid()}\n".encode())


def _holder(lock: Path) -> str:
    try:
        pid = int(lock.read_text().strip())
    except (OSError, ValueError):
        return ""
    return f" (process {pid})"


def _release(lock: Path, handle: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(lock)  # while still locked: a waiter then sees the file is gone
    if msvcrt is not None and fcntl is None:  # pragma: no cover - Windows
        with contextlib.suppress(OSError):
            msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)
    os.close(handle)
