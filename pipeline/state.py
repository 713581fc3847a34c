"""State that survives between runs: an embedded SQLite database plus a lock.

What it holds: each input file processed (by its path relative to the input root, size and content
hash) with the config hash it was processed with, and rows that stages keep about what they have
seen (the dedup index of everything kept so far). A file's row and its stage rows are committed in
one transaction, and only after the file's outputs are durable, so a killed run loses nothing and
repeats nothing when run again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson
import xxhash

from pipeline import __version__

STATE_DIRNAME = ".cleancorpus"  # inside the output folder unless the config's `state:` says otherwise

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    documents INTEGER NOT NULL,
    kept INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    finished TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    output TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS stage_rows (
    id INTEGER PRIMARY KEY,
    stage TEXT NOT NULL,
    source TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS stage_rows_by_source ON stage_rows (stage, source);
-- commit_file replaces a file's rows of every stage: without this index each commit scanned the
-- whole table (20 ms a file once 20,000 files were recorded; quadratic in the files of a folder)
CREATE INDEX IF NOT EXISTS stage_rows_by_file ON stage_rows (source);
-- What a first pass learnt from each input file (e.g. its line hashes), so that a later run need not
-- read an unchanged file again; used only while the file's content and the config are the same.
CREATE TABLE IF NOT EXISTS first_pass (
    stage TEXT NOT NULL,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (stage, source)
);
"""


class StateLocked(Exception):
    """Another run holds the lock on this state folder."""


class StateCorrupt(Exception):
    """The state database (or a file beside it, ``what``) is damaged: not a database, truncated or empty."""

    def __init__(self, path: Path, detail: str, what: str = "state database") -> None:
        super().__init__(f"the {what} {path} is damaged ({detail})")
        self.path = path


class Inaccessible(Exception):
    """A folder or file a command must use (the output folder, the state folder, its database or lock
    file) that this process cannot write, or read: a usage error (exit 2), not damage and not a failed run."""

    def __init__(self, path: Path, what: str, problem: str, verb: str = "write to") -> None:
        super().__init__(f"cannot {verb} the {what} {path}: {problem}")
        self.path = path


def _problem(err: OSError) -> str:
    return err.strerror or str(err)


def check_writable(folder: Path, what: str) -> None:
    """Make ``folder`` (and its parents) if missing, and check that a file can be made in it (a file is
    made and removed: permissions, ACLs, a read-only file system all show); raises Inaccessible naming
    ``what`` it is, so that a command stops before it does anything instead of failing half-way."""
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise Inaccessible(folder, what, "it is a file, not a folder", "use") from None
    except OSError as err:
        raise Inaccessible(folder, what, _problem(err), "write to" if existed else "create") from None
    try:
        fd, name = tempfile.mkstemp(prefix=".cleancorpus-write-check-", dir=folder)
    except OSError as err:
        raise Inaccessible(folder, what, _problem(err)) from None
    os.close(fd)
    os.unlink(name)


def _on_read_only_file_system(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # (no statvfs: not POSIX)
        return False


def is_unwritable(err: sqlite3.Error) -> bool:
    """Whether SQLite failed because it may not write or create a file (not because the database is damaged
    or busy): a read-only database file, or a folder where it cannot make its -wal and -shm files."""
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return "readonly" in str(err) or "unable to open" in str(err)
    return code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def _unwritable_database(err: sqlite3.Error, path: Path) -> Inaccessible:
    """Inaccessible for an ``is_unwritable`` error of the database at ``path``: it names the folder when the
    folder is the cause (SQLite makes its -wal and -shm files beside the database, even to read it)."""
    if getattr(err, "sqlite_errorname", "") == "SQLITE_READONLY_DIRECTORY" or not os.access(path.parent, os.W_OK):
        return Inaccessible(
            path.parent, "state folder", f"SQLite must make its -wal and -shm files there, even to read ({err})"
        )
    return Inaccessible(path, "state database", str(err))


DB_NAME = "state.sqlite"
_SQLITE_HEADER = b"SQLite format 3\x00"  # how every SQLite database file begins
_SIDE_FILES = ("", "-wal", "-shm")  # the database and SQLite's files beside it, which belong to it


def is_damage(err: sqlite3.Error) -> bool:
    """Whether SQLite failed because the database file is damaged (not, e.g., busy or unwritable)."""
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return type(err) is sqlite3.DatabaseError  # what the module raises for SQLITE_CORRUPT and SQLITE_NOTADB
    return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)  # (extended codes: low byte)


@dataclass(frozen=True)
class FileRecord:
    source: str
    path: str
    size: int
    content_hash: str
    config_hash: str
    documents: int = 0
    kept: int = 0
    rejected: int = 0
    finished: str = ""
    # The file's modification time when it was hashed, so that a later run that finds the same size and
    # time need not read it again; 0: hash it again (unknown, or modified too shortly before: ``trusted_mtime``).
    mtime_ns: int = 0
    # Its output file, relative to the output folder ('' for stdin, or recorded by an earlier version), so that
    # --rebuild can remove it when the file is processed again under another name (a changed output.format).
    output: str = ""


# A file modified this shortly before it was hashed could change again within the same timestamp (file
# systems with a coarse clock keep seconds, FAT two), so its time is not trusted later (cf. git's racy index).
RACY_SECONDS = 3


def trusted_mtime(mtime_ns: int, now_ns: int) -> int:
    """The time to record for a file hashed at ``now_ns``: its modification time, or 0 if too recent."""
    return mtime_ns if now_ns - mtime_ns > RACY_SECONDS * 1_000_000_000 else 0


def file_hash(path: Path) -> str:
    """Content hash of a file (xxh3-128, streamed)."""
    with open(path, "rb") as fh:
        return stream_hash(fh)


def stream_hash(fh: IO[bytes]) -> str:
    """``file_hash`` of the bytes read from ``fh`` (e.g. a compressed file's, decompressed)."""
    h = xxhash.xxh3_128()
    while chunk := fh.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


def result_config(config_dump: dict[str, Any]) -> dict[str, Any]:
    """What in a config changes results (the names or the content of the outputs), not where files are
    read or written nor whether audit files are written."""
    relevant: dict[str, Any] = {
        "input": {k: v for k, v in config_dump["input"].items() if k != "paths"},
        "metadata_field": config_dump["output"].get("metadata_field"),
        "stages": [s for s in config_dump["stages"] if s.get("enabled", True)],
    }
    # Output names and formats. Only when set, so that the hash of a config that leaves it out is the one
    # earlier versions recorded (they did not hash it), and their states are not taken for changed.
    if config_dump["output"].get("format") is not None:
        relevant["format"] = config_dump["output"]["format"]
    return relevant


def config_hash(config_dump: dict[str, Any]) -> str:
    """Hash of everything in a config that changes results (``result_config``)."""
    return hashlib.sha256(orjson.dumps(result_config(config_dump), option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def config_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], bool]:
    """The key paths in which two ``result_config`` differ, as the config names them (``output.format``,
    ``input.max_doc_chars``, ``stages[3].threshold``; stages counted among the enabled ones), and whether
    they are all stage options ``before`` lacks: options a newer cleancorpus added, not the user's edits."""
    added = 0  # stage options the recorded config lacks
    changes = [
        f"input.{key}"
        for key in sorted(set(before.get("input", {})) | set(after.get("input", {})))
        if before.get("input", {}).get(key) != after.get("input", {}).get(key)
    ]
    for key in ("metadata_field", "format"):
        if before.get(key) != after.get(key):
            changes.append(f"output.{key}")
    old_stages, new_stages = before.get("stages", []), after.get("stages", [])
    if [s.get("stage") for s in old_stages] != [s.get("stage") for s in new_stages]:
        changes.append("stages (which run, in which order)")
    else:
        for i, (old, new) in enumerate(zip(old_stages, new_stages, strict=True)):
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    # an option the recorded config lacks came with a newer cleancorpus, not from the user
                    new_option = key not in old
                    added += new_option
                    changes.append(
                        f"stages[{i}].{key} ({old.get('stage')}{', new in this version' if new_option else ''})"
                    )
    return changes, bool(changes) and added == len(changes)


# The files table as FileRecord(*row) reads it.
_FILE_COLUMNS = "source, path, size, content_hash, config_hash, documents, kept, rejected, finished, mtime_ns, output"


# The database's page: most of its bytes are a few large payloads (dedup's index of a 40 MB input: 26 MB in 3 rows),
# which SQLite keeps as chains of overflow pages, written to the WAL and copied again to the database a page at
# a time. At 16 kB (SQLite's default is 4 kB) recording those 26 MB and copying them from the WAL costs 0.052 s
# of CPU rather than 0.074 (64 kB: 0.038, but an empty database of 640 kB, not 160 kB, and more bytes for each
# small commit). A database made before keeps its pages (the size is fixed once written in WAL mode).
PAGE_SIZE = 16384


def _create_database(path: Path) -> None:
    """Make a new state database at ``path`` in one step: built under another name, then linked into
    place, so that no process finds ``path`` empty while it is made (an empty file is damage)."""
    new = path.with_name(f"{path.name}.new-{os.getpid()}")
    for suffix in _SIDE_FILES:  # left by a process of the same id that was killed here
        Path(f"{new}{suffix}").unlink(missing_ok=True)
    try:
        db = sqlite3.connect(new, isolation_level=None)
        try:
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # (before anything is written: fixed after that, in WAL mode)
            # Not synced step by step (14 syncs: the switch to WAL, each table and index, the checkpoint; ~0.05 s
            # of a run's start-up where other writes keep the disk busy): no one sees the file until it is
            # linked into place, after the one sync below.
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(f"BEGIN;{_SCHEMA};COMMIT;")
        finally:
            db.close()  # (copies the WAL into the file and removes it)
        fd = os.open(new, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(new, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(new, path)
    finally:  # (also when a stop signal ends the run here: a stray state.sqlite.new-PID was left once)
        for suffix in _SIDE_FILES:
            Path(f"{new}{suffix}").unlink(missing_ok=True)


def _take_lock(folder: Path) -> IO[str]:
    """The run lock's file, locked, or raise StateLocked. The OS drops the lock when the process dies,
    so a lock left by a killed run is simply taken over."""
    try:
        fh = open(folder / "lock", "a+")  # noqa: SIM115 - held by the caller
    except OSError as err:  # (a missing folder too: the callers made it, or found it)
        raise Inaccessible(folder / "lock", "lock file", _problem(err), "open") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown process"
        fh.close()
        raise StateLocked(f"another cleancorpus run ({holder}) is using {folder}") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}, started {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n")
    fh.flush()
    _held_locks.add(fh.fileno())
    return fh


def lock_holder(folder: Path) -> str | None:
    """Who holds the run lock of ``folder`` (``pid N, started TIME``), or None: it is free, or that cannot be
    told without taking it (not Linux). Read from /proc/locks, so that asking never makes a run that starts
    meanwhile find it taken."""
    try:
        st = (folder / "lock").stat()
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    inode = f":{st.st_ino} "
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (device as major:minor, in hex)
        if len(fields) >= 6 and fields[1] == "FLOCK" and f"{fields[5]} ".endswith(inode):
            major, minor, _ = fields[5].split(":")
            if (int(major, 16), int(minor, 16)) == (os.major(st.st_dev), os.minor(st.st_dev)):
                try:
                    return (folder / "lock").read_text(encoding="utf-8").strip() or f"pid {fields[4]}"
                except OSError:
                    return f"pid {fields[4]}"
    return None


def _release_lock(fh: IO[str]) -> None:
    _held_locks.discard(fh.fileno())
    fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()


# The run lock is an flock on an open file, and a forked worker shares it: a worker outliving a killed run
# kept the lock, and every later run exited 75 naming the dead run. Forked children close their copy.
_held_locks: set[int] = set()


def close_lock_in_child() -> None:
    """In a forked child: the held lock's descriptor now points to /dev/null (not closed: the file object
    that owns the number must not close another file that would reuse it)."""
    if not _held_locks:
        return
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in _held_locks:
            os.dup2(null, fd)
        os.close(null)
    _held_locks.clear()


os.register_at_fork(after_in_child=close_lock_in_child)


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold the run lock of a state folder without opening its database (which may be damaged)."""
    fh = _take_lock(folder)
    try:
        yield
    finally:
        _release_lock(fh)


_INSERT_ROWS = "INSERT INTO stage_rows (stage, source, payload) VALUES (?, ?, ?)"


class StageRows:
    """A stage's saved (source, payload) rows, oldest first, without the left-out sources; iterable more than
    once (each pass reads the payloads again, one at a time: a stage may size its tables first). The row
    ids come first, from the index, then each payload by its id: ordering the rows themselves made SQLite
    sort their payloads too, through a temporary copy (0.5 s for the 127 MB of a 200 MB archive's dedup
    index, against 0.1 s), and the left-out sources' payloads are not read at all."""

    def __init__(self, db: sqlite3.Connection, stage: str, exclude_sources: set[str]) -> None:
        self.db, self.stage, self.exclude = db, stage, exclude_sources

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for row_id, source in self._listed():
            row = self.db.execute("SELECT payload FROM stage_rows WHERE id = ?", (row_id,)).fetchone()
            if row is not None:
                yield source, row[0]

    def blobs(self) -> Iterator[IO[bytes]]:
        """The payloads (``__iter__``'s order) as files to read: only what is read of each comes from the
        database (SQLite's incremental blob I/O; Python 3.11+, else each payload whole). A stage sizing its
        tables reads the arrays' headers alone: 2 MB of the 127 MB a 200 MB archive's dedup rows hold."""
        blobopen = getattr(self.db, "blobopen", None)
        for row_id, _ in self._listed():
            if blobopen is None:
                row = self.db.execute("SELECT payload FROM stage_rows WHERE id = ?", (row_id,)).fetchone()
                yield io.BytesIO(row[0] if row is not None else b"")
                continue
            with blobopen("stage_rows", "payload", row_id, readonly=True) as blob:
                yield blob

    def _listed(self) -> list[tuple[int, str]]:
        listed = self.db.execute(
            "SELECT id, source FROM stage_rows WHERE stage = ? ORDER BY id", (self.stage,)
        ).fetchall()
        return [(row_id, source) for row_id, source in listed if source not in self.exclude]


class _RolledBack(Exception):
    """Ends a transaction by rolling it back (StateStore.check_writable)."""


class StateStore:
    # Sources whose rows ``add_rows`` wrote into the transaction it left open (None: none is open).
    _adding: set[str] | None = None

    def __init__(self, folder: Path) -> None:
        """Open (or create) the state database; raises StateCorrupt if it is damaged, Inaccessible if it cannot
        be read or written (SQLite writes beside it even to read it)."""
        self.folder = folder
        self._lock_fh: IO[str] | None = None
        path = folder / DB_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise Inaccessible(folder, "state folder", _problem(err), "create") from None
        try:
            with open(path, "rb") as fh:
                header = fh.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            try:
                _create_database(path)
            except OSError as err:
                raise Inaccessible(folder, "state folder", _problem(err)) from None
            except sqlite3.Error as err:
                if is_unwritable(err):
                    raise _unwritable_database(err, path) from None
                raise
            header = _SQLITE_HEADER
        except OSError as err:
            raise Inaccessible(path, "state database", _problem(err), "read") from None
        # SQLite opens a read-only database read-only without a word (a run would fail when it records its first
        # file), and makes its -wal and -shm files with the database's permissions, even to read it (mode=ro too):
        # read-only as well, they would stay in the way once the database is fixed. So it is not opened at all.
        for suffix in _SIDE_FILES:
            side = Path(f"{path}{suffix}")
            if side.exists() and not os.access(side, os.W_OK):
                raise Inaccessible(side, "state database" if not suffix else "SQLite file", "Permission denied")
        # Checked before SQLite opens it: SQLite takes an empty file for a new database (the state would be
        # forgotten unsaid), and closing a connection to a file that is not a database deletes its -wal file.
        if not header:
            raise StateCorrupt(path, "the file is empty")
        if header != _SQLITE_HEADER:
            raise StateCorrupt(path, "file is not a database")
        try:
            # (Used by one thread at a time: the run records its last file in a thread, runner._Outputs.finish.)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            if is_unwritable(err):
                raise _unwritable_database(err, path) from None
            raise
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(files)")}
            if "mtime_ns" not in columns:  # a state folder made before modification times were kept
                self.db.execute("ALTER TABLE files ADD COLUMN mtime_ns INTEGER NOT NULL DEFAULT 0")
            if "output" not in columns:  # made before output names were kept
                self.db.execute("ALTER TABLE files ADD COLUMN output TEXT NOT NULL DEFAULT ''")
        except sqlite3.DatabaseError as err:
            self.db.close()
            if is_damage(err):  # e.g. a truncated file: SQLite checks its size against its header
                raise StateCorrupt(path, str(err)) from None
            if is_unwritable(err):
                raise _unwritable_database(err, path) from None
            raise

    @classmethod
    def for_reading(cls, folder: Path) -> StateStore:
        """The state, to read only (explain, state info). On a read-only file system (a backup or snapshot
        of an output folder, a read-only mount), where SQLite cannot make the -shm file it needs to read a WAL
        database, it is opened read-only, and as immutable when no -wal file holds recent commits: both commands
        failed with "cannot write to the state database ...: Permission denied". Elsewhere as ``StateStore``."""
        if not _on_read_only_file_system(folder):
            return cls(folder)
        path = folder / DB_NAME
        try:
            with open(path, "rb") as fh:
                header = fh.read(len(_SQLITE_HEADER))
        except OSError as err:
            raise Inaccessible(path, "state database", _problem(err), "read") from None
        if header != _SQLITE_HEADER:
            raise StateCorrupt(path, "the file is empty" if not header else "file is not a database")
        store = cls.__new__(cls)
        store.folder, store._lock_fh = folder, None
        immutable = "" if Path(f"{path}-wal").exists() else "&immutable=1"
        try:
            store.db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro{immutable}", uri=True, isolation_level=None, check_same_thread=False
            )
            store.db.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.DatabaseError as err:
            if is_damage(err):
                raise StateCorrupt(path, str(err)) from None
            raise Inaccessible(path, "state database", f"{err} (on a read-only file system)", "read") from None
        return store

    def check_writable(self) -> None:
        """Raise Inaccessible unless the database can be written. A read-only database file (in a folder
        that is not) opens read-only without a word, and a run would fail only when it records its first
        file, after writing that file's outputs. A row is written and rolled back: nothing changes."""
        try:
            with self._transaction():  # (which waits for a reader, as a commit does)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('write-check', '')")
                raise _RolledBack
        except _RolledBack:
            pass
        except sqlite3.OperationalError as err:
            if is_unwritable(err):
                raise _unwritable_database(err, self.folder / DB_NAME) from None
            raise

    # ------------------------------------------------------------ locking

    def lock(self) -> None:
        """Take the run lock or raise StateLocked (held until ``close``)."""
        self._lock_fh = _take_lock(self.folder)

    def close(self) -> None:
        self.db.close()
        if self._lock_fh is not None:
            _release_lock(self._lock_fh)
            self._lock_fh = None

    # ------------------------------------------------------------ reading

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def file(self, source: str) -> FileRecord | None:
        row = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE source = ?",
            (source,),
        ).fetchone()
        return FileRecord(*row) if row else None

    def files(self) -> list[FileRecord]:
        rows = self.db.execute(f"SELECT {_FILE_COLUMNS} FROM files ORDER BY source").fetchall()
        return [FileRecord(*row) for row in rows]

    def reader(self) -> sqlite3.Connection:
        """A second connection to the database, for reading from another thread (the runner loads what
        the stages learnt while its first pass goes on); the caller closes it."""
        return sqlite3.connect(self.folder / DB_NAME, isolation_level=None)

    def stage_rows(self, stage: str, exclude_sources: set[str]) -> StageRows:
        """(source, payload) rows a stage saved, oldest first, leaving out the given sources (``StageRows``)."""
        return StageRows(self.db, stage, exclude_sources)

    def first_pass_parts(self, stage: str, source: str, content_hash: str, config_hash: str) -> bytes | None:
        """What ``save_first_pass`` kept for this file's content under this config, if anything."""
        row = self.db.execute(
            "SELECT payload FROM first_pass WHERE stage = ? AND source = ? AND content_hash = ? AND config_hash = ?",
            (stage, source, content_hash, config_hash),
        ).fetchone()
        return row[0] if row else None

    def first_pass_files(self, stage: str, config_hash: str) -> dict[str, str]:
        """Input file -> content hash of the files ``first_pass_parts`` has parts for, under this config."""
        return dict(
            self.db.execute(
                "SELECT source, content_hash FROM first_pass WHERE stage = ? AND config_hash = ?", (stage, config_hash)
            ).fetchall()
        )

    def save_first_pass(self, rows: Iterable[tuple[str, str, str, str, bytes]]) -> None:
        """Keep (stage, source, content_hash, config_hash, payload) rows, replacing a file's older one.
        Independent of commit_file: a row describes a file's content, whether or not it was processed.

        Committed without waiting for its sync (``synchronous=NORMAL``: the run's next commit, its files' record,
        syncs the WAL, these rows with it): it is a cache, which a crash of the system before that may lose but not
        damage (SQLite's WAL mode), and the run waited ~0.02 s for the sync between its two passes."""
        relaxed = not self.db.in_transaction  # (else _transaction says why it may not commit: add_rows' rows)
        if relaxed:
            self.db.execute("PRAGMA synchronous=NORMAL")  # (SQLite refuses it inside a transaction)
        try:
            with self._transaction():
                self.db.executemany("INSERT OR REPLACE INTO first_pass VALUES (?, ?, ?, ?, ?)", rows)
        finally:
            if relaxed and not self.db.in_transaction:
                self.db.execute("PRAGMA synchronous=FULL")

    def info(self) -> dict[str, Any]:
        files = self.files()
        stage_rows = {  # per stage (position:name): files with rows, bytes of their payloads
            stage: (files, size or 0)
            for stage, files, size in self.db.execute(
                "SELECT stage, COUNT(DISTINCT source), SUM(LENGTH(payload)) FROM stage_rows GROUP BY stage"
            )
        }
        side_files = (self.folder / f"{DB_NAME}{suffix}" for suffix in _SIDE_FILES)
        size = sum(p.stat().st_size for p in side_files if p.exists())  # (not copies set aside)
        return {
            "folder": str(self.folder),
            "config_hash": self.meta("config_hash"),
            "cleancorpus": self.meta("cleancorpus"),
            "files": len(files),
            "documents": sum(f.documents for f in files),
            "kept": sum(f.kept for f in files),
            "rejected": sum(f.rejected for f in files),
            "last_finished": max((f.finished for f in files), default=None),
            "stage_rows": stage_rows,
            "first_pass_files": self.db.execute("SELECT COUNT(DISTINCT source) FROM first_pass").fetchone()[0],
            "bytes": size,
        }

    # ------------------------------------------------------------ writing

    def commit_file(
        self, record: FileRecord, rows: Iterable[tuple[str, bytes]], config: dict[str, Any] | None = None
    ) -> None:
        """Record a finished file and the stage rows learnt from it, atomically; replaces an older
        record of the same file (a changed file that was processed again)."""
        self.commit_files([(record, rows)], config)

    def commit_files(
        self, entries: Iterable[tuple[FileRecord, Iterable[tuple[str, bytes]]]], config: dict[str, Any] | None = None
    ) -> None:
        """``commit_file`` for several files in one transaction, all or none: one commit (and fsync) for a
        group of small files rather than one each. Goes on with the transaction ``add_rows`` left open: the
        files' rows it wrote are committed with them (each file's ``rows`` are then the rest of its rows)."""
        finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._transaction(going_on=True):
            added, self._adding = self._adding or set(), None
            config_hash = None
            for record, rows in entries:
                if record.source not in added:  # (else add_rows did)
                    self.db.execute("DELETE FROM stage_rows WHERE source = ?", (record.source,))
                self.db.executemany(_INSERT_ROWS, ((stage, record.source, payload) for stage, payload in rows))
                self.db.execute(
                    f"INSERT OR REPLACE INTO files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.source,
                        record.path,
                        record.size,
                        record.content_hash,
                        record.config_hash,
                        record.documents,
                        record.kept,
                        record.rejected,
                        finished,
                        record.mtime_ns,
                        record.output,
                    ),
                )
                config_hash = record.config_hash
            if config_hash is None:
                return
            meta = [("config_hash", config_hash), ("cleancorpus", __version__)]
            if config is not None:  # what it hashes (``result_config``), to name what changed later
                meta.append(("config", orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()))
            for key, value in meta:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def add_rows(self, source: str, rows: Iterable[tuple[str, bytes]]) -> None:
        """Write (stage, payload) rows of input file ``source`` now, for the ``commit_files`` that records the file:
        into a transaction begun at the first call and left open, which ``commit_files`` goes on with and commits
        (or ``discard_rows`` rolls back: a run that stops first records nothing of it, as before). The first call
        for a file deletes its rows of earlier runs, as ``commit_files`` does. Rows are kept in the order they are
        written (the state's order: loaded oldest first), so a file's rows all go before the next file's, and
        ``commit_files``' ``rows`` of a file are what comes after these. So the rows of a large file (dedup's
        index entries: 24 of the 26 MB recorded for 40 MB of web text) are written while the run goes on, not
        all of them after its last document, when nothing else is left to do."""
        if self._adding is None:
            self._begin()
            self._adding = set()
        try:
            if source not in self._adding:
                self.db.execute("DELETE FROM stage_rows WHERE source = ?", (source,))
                self._adding.add(source)
            self.db.executemany(_INSERT_ROWS, ((stage, source, payload) for stage, payload in rows))
        except BaseException:
            self.discard_rows()
            raise
        self._start_log_write_back()

    def _start_log_write_back(self) -> None:
        """Start writing what the WAL holds out to disk (``io.start_write_back``: SQLite writes a large
        transaction's pages into it before the commit, ~24 MB on 40 MB of web text, and the commit's sync waited for
        them in the run's tail: 0.05 s there; ~0.025 s so)."""
        from pipeline.io import start_write_back  # (imported by every run already)

        try:
            fd = os.open(f"{self.folder / DB_NAME}-wal", os.O_RDONLY)
        except OSError:
            return  # (none yet: nothing to write back)
        try:
            start_write_back(fd)
        finally:
            os.close(fd)

    def discard_rows(self) -> None:
        """Roll back what ``add_rows`` wrote (nothing of it is recorded); nothing to do if it wrote nothing."""
        if self._adding is None:
            return
        self._adding = None
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")

    def defer_checkpoint(self) -> None:
        """Leave the copy of this connection's commits from the WAL into the database to ``checkpoint`` (SQLite
        makes it at the commit that leaves more than 1,000 pages in the WAL, and the commit waits for it: the
        run's last one, 26 MB on 40 MB of web text, ~0.03-0.05 s)."""
        self.db.execute("PRAGMA wal_autocheckpoint=0")

    def close_database(self) -> None:
        """Close the connection (e.g. in the thread that made the last commit), keeping the run lock until
        ``close``; the store cannot be read or written after it."""
        self.db.close()

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database now (as closing the last connection would), e.g. in the
        thread that made the run's last commit, rather than later in ``close``, on the run's serial path. A
        reader in another process (state info) may keep part of it in the WAL: closing copies that."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def note_mtimes(self, times: Iterable[tuple[int, str, str]]) -> None:
        """(mtime_ns, source, content_hash): the modification times of recorded files found unchanged
        by their content (e.g. touched, or recorded before times were kept)."""
        with self._transaction():
            self.db.executemany("UPDATE files SET mtime_ns = ? WHERE source = ? AND content_hash = ?", times)

    def reset(self) -> None:
        with self._transaction():
            for table in ("files", "stage_rows", "first_pass", "meta"):
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        self.db.execute("VACUUM")

    def _begin(self) -> None:
        for attempt in range(50):  # another reader (state info) may hold the database briefly
            try:
                self.db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.1)

    @contextlib.contextmanager
    def _transaction(self, going_on: bool = False) -> Iterator[None]:
        """A transaction: begun here, or (``going_on``) the one ``add_rows`` left open, if there is one."""
        if self._adding is None or not going_on:
            if self._adding is not None:  # (nothing else may commit what add_rows wrote for commit_files)
                raise RuntimeError("the state's transaction holds rows of files not recorded yet")
            self._begin()
        try:
            yield
        except BaseException:
            self._adding = None
            # SQLite rolls back by itself on some errors (a full disk: SQLITE_FULL); ROLLBACK then raised "cannot
            # rollback - no transaction is active" in place of the error that said what happened.
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def set_aside_if_damaged(folder: Path) -> Path | None:
    """With the run lock held: if the state database is damaged, rename it and its side files to
    ``state.sqlite.corrupt-<UTC time>`` (-wal, -shm: SQLite finds them by that name), kept for
    inspection; returns the new name, or None if the database is sound or absent."""
    path = folder / DB_NAME
    if not path.exists():
        return None
    try:
        store = StateStore(folder)
        try:
            # Damage past the header and the schema shows only in a scan (seconds for a large state,
            # which the callers, a reset or a rebuild, can spend)
            if store.db.execute("PRAGMA quick_check(1)").fetchone() == ("ok",):
                return None
        finally:
            store.close()
    except StateCorrupt:
        pass
    except sqlite3.DatabaseError as err:
        if not is_damage(err):
            raise
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{DB_NAME}.corrupt-{stamp}")
    n = 1
    while any(Path(f"{aside}{suffix}").exists() for suffix in _SIDE_FILES):  # twice in a second
        aside, n = path.with_name(f"{DB_NAME}.corrupt-{stamp}-{n}"), n + 1
    for suffix in _SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
    return aside


def clear_state(folder: Path) -> Path | None:
    """With the run lock held: forget everything in the state folder. The lock file stays (a run starting
    meanwhile would lock a new file of that name and overlap), and so does a damaged database, set aside
    (``set_aside_if_damaged``; its new name is returned), as do copies set aside before."""
    aside = set_aside_if_damaged(folder)
    for entry in folder.iterdir():
        if entry.name == "lock" or entry.name.startswith(f"{DB_NAME}.corrupt-"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return aside
