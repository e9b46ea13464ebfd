"""Making a load all-or-nothing: one writer at a time, a journal of moves, recovery on start.

Protocol: every file a load writes goes first to ``_state/staging/<load id>/``. When all are written
(and fsync'ed), the load writes the journal: the list of (staged file -> final path) moves and of the
lake files the load replaces (a rewritten partition's old files), with fsync, atomically (temp file +
rename). Then it renames every staged file onto its final path, deletes the replaced files and
deletes the journal. A crash before the journal exists leaves the lake untouched (staging is swept
away on the next start); a crash after it is rolled forward on the next start (moves are renames,
deletions of files already gone are skipped, so repeating them is harmless). Loads hold
``_state/lake.lock`` for their whole run.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from flows.lake.paths import LakePaths

CRASH_ENV = "LOCALSHELF_TEST_CRASH_AT"  # tests: exit hard at a named point of the commit


class LakeLockedError(RuntimeError):
    """Another load holds the lake."""


def crash_point(name: str) -> None:
    """Exit at once, like a kill, when the test hook names this point (a no-op otherwise)."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


@contextmanager
def lake_lock(lake: LakePaths, timeout_s: float) -> Iterator[None]:
    """Hold the lake's writer lock; raise LakeLockedError after ``timeout_s`` seconds of waiting."""
    lake.state.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lake.lock_file), timeout=timeout_s)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise LakeLockedError(
            f"another load holds the lake lock at {lake.lock_file}; it waits up to {timeout_s:g} s "
            "(settings ingest.lock_timeout_s / LOCALSHELF_INGEST__LOCK_TIMEOUT_S)"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _fsync_dir(path: Path) -> None:
    # a rename is durable only once its directory is flushed (POSIX); not possible on Windows
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a written file to disk."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _roll_forward(lake: LakePaths, moves: list[list[str]], deletes: list[str]) -> None:
    for src_rel, dst_rel in moves:
        src, dst = lake.root / src_rel, lake.root / dst_rel
        if src.exists():  # absent: already moved before the crash
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            crash_point("mid_moves")
    for rel in deletes:
        (lake.root / rel).unlink(missing_ok=True)  # gone: already deleted before the crash
        crash_point("mid_deletes")
    for parent in {(lake.root / d).parent for _, d in moves} | {(lake.root / d).parent for d in deletes}:
        if parent.exists():
            _fsync_dir(parent)


def recover(lake: LakePaths, say: Callable[[str], None] = lambda _: None) -> str:
    """Finish or discard a load that was interrupted; call with the lock held.

    Returns "rolled forward" (a committed load's moves were completed), "discarded" (an uncommitted
    load's staging was removed) or "clean".
    """
    outcome = "clean"
    if lake.journal.exists():
        journal = json.loads(lake.journal.read_text())
        moves = journal["moves"]
        _roll_forward(lake, moves, journal.get("deletes", []))
        lake.journal.unlink()
        outcome = "rolled forward"
        say(f"recovered an interrupted load: completed its {len(moves)} file moves")
    leftovers = [p for p in (lake.staging, lake.journal.with_suffix(".tmp")) if p.exists()]
    for path in leftovers:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if leftovers and outcome == "clean":
        outcome = "discarded"
        say("removed the staging files of an interrupted load that never committed")
    return outcome


@dataclass
class Commit:
    """The files one load will publish, staged under ``_state/staging/<load_id>``."""

    lake: LakePaths
    load_id: str
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    deletes: list[Path] = field(default_factory=list)  # lake files the load replaces
    _lock: threading.Lock = field(default_factory=threading.Lock)  # files are staged from threads
    _names: itertools.count = field(default_factory=itertools.count)  # staging names, never reused

    @property
    def folder(self) -> Path:
        return self.lake.staging / self.load_id

    def stage(self, final: Path) -> Path:
        """Return a fresh staging path whose file will be moved onto ``final`` at commit."""
        with self._lock:
            temp = self.folder / "commit" / f"{next(self._names)}-{final.name}"
            temp.parent.mkdir(parents=True, exist_ok=True)
            self.moves.append((temp, final))
        return temp

    def unstage(self, temp: Path) -> None:
        """Take a staged file back out of the commit (and delete it)."""
        with self._lock:
            self.moves = [(t, f) for t, f in self.moves if t != temp]
        temp.unlink(missing_ok=True)

    def delete(self, final: Path) -> None:
        """Delete the lake file ``final`` at commit (after the moves)."""
        self.deletes.append(final)

    def commit(self) -> None:
        """Publish every staged file: fsync them, write the journal, move, delete the journal."""
        for temp, _ in self.moves:
            fsync_file(temp)
        crash_point("before_journal")
        rel = [
            [str(t.relative_to(self.lake.root)), str(f.relative_to(self.lake.root))] for t, f in self.moves
        ]
        gone = [str(f.relative_to(self.lake.root)) for f in self.deletes]
        tmp = self.lake.journal.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump({"load_id": self.load_id, "moves": rel, "deletes": gone}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.lake.journal)
        _fsync_dir(self.lake.state)
        crash_point("after_journal")
        _roll_forward(self.lake, rel, gone)
        self.lake.journal.unlink()
        _fsync_dir(self.lake.state)
        shutil.rmtree(self.folder, ignore_errors=True)  # spool files; the commit is done

    def discard(self) -> None:
        """Remove the staged files of a load that will not commit (no-op once committed)."""
        if not self.lake.journal.exists():
            shutil.rmtree(self.folder, ignore_errors=True)


def read_history(lake: LakePaths) -> list[dict]:
    """Return the records of every committed load, oldest first."""
    if not lake.history.exists():
        return []
    return [json.loads(line) for line in lake.history.read_text().splitlines() if line.strip()]


def stage_history(commit: Commit, record: dict) -> None:
    """Stage the load history with ``record`` appended (published atomically with the load)."""
    old = commit.lake.history.read_text() if commit.lake.history.exists() else ""
    temp = commit.stage(commit.lake.history)
    temp.write_text(old + json.dumps(record, default=str) + "\n")
