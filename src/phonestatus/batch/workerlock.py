"""One busy batch worker per SQLite database: an advisory lock on a file beside it.

On SQLite, workers claim chunks without row locks, so two worker processes
(``serve`` and ``batch run``, or ``serve --workers 2``) would query the same
chunk. The chunk guard bills it once, but the carrier is asked twice. A
worker therefore takes this lock before it claims a chunk and gives it back
when it finds nothing to do. The operating system releases the lock when
the holding process exits, SIGKILL included, so a crash leaves nothing to
clean up. PostgreSQL needs no lock: claims there use ``FOR UPDATE SKIP
LOCKED``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_SUFFIX = ".batch-worker.lock"


class WorkerLock:
    """A non-blocking exclusive ``flock`` on ``path``, held between ``acquire`` and ``release``.

    Locks of separate ``WorkerLock`` objects exclude each other in one
    process too, because each opens the file anew.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_database(cls, url: str) -> WorkerLock | None:
        """Return the lock for a SQLite file URL, or None for other databases and memory."""
        if not url.startswith("sqlite"):
            return None
        database = url.split(":///", 1)[1] if ":///" in url else ""
        database = database.split("?", 1)[0]
        if not database or database == ":memory:":
            return None
        return cls(Path(database + LOCK_SUFFIX))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free and return whether this object holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back; does nothing if this object does not hold it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            # Closing the descriptor releases the flock.
            os.close(fd)
