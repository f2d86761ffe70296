"""SQLite as a multi-process server database: write-ahead log, and writers that queue.

gunicorn's workers and the job worker share one database file, and SQLite lets one writer in
at a time. Two things keep that from becoming the bottleneck:

* A transaction takes the write lock only at its first write, not at its first read. Reads
  before it run outside any transaction, each statement seeing the latest commit, which is what
  PostgreSQL's READ COMMITTED gives too; `SELECT … FOR UPDATE` counts as a write, so the
  read-modify-write paths that lock a row on PostgreSQL hold the write lock here. A read-only
  call (queryInstance) never waits for a writer.
* Writers queue on a lock file next to the database (`<db>-writer.lock`) before BEGIN
  IMMEDIATE. SQLite's own busy handler sleeps 1, 2, 5, 10… ms between tries whatever the
  holder is doing; our write transactions last about a millisecond, so under load the
  waiters slept longer than the holders worked and the CPU idled while requests queued.
"""

import fcntl
import os
import sqlite3
import time

from sqlalchemy import event

# Polling granularity while another process writes: first try again soon, then at this pace.
FIRST_WAIT = 0.00005
LONGEST_WAIT = 0.0005
DEFAULT_TIMEOUT = 5.0  # pysqlite's own default


class QueuedWriterConnection(sqlite3.Connection):
    """A pysqlite connection whose transactions take the writer lock file before BEGIN."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self.lock_timeout = float(kwargs.get("timeout", args[0] if args else DEFAULT_TIMEOUT))
        path = os.fsdecode(database)
        # In-memory and URI databases have no file to put the lock next to: SQLite alone decides.
        plain_file = path not in ("", ":memory:") and not kwargs.get("uri")
        self.writer_lock = open(f"{path}-writer.lock", "a") if plain_file else None  # noqa: SIM115
        self.holds_lock = False

    def begin_immediate(self) -> None:
        """Queue for the writer lock, then take SQLite's write lock with BEGIN IMMEDIATE."""
        if self.writer_lock is not None and not self.holds_lock:
            self._take_writer_lock()
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release_writer_lock()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release_writer_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_writer_lock()
            if self.writer_lock is not None:
                self.writer_lock.close()

    def _take_writer_lock(self) -> None:
        # flock() cannot time out, so poll: the connection's timeout still bounds the wait, and
        # past it the caller gets SQLite's own error, as without this lock.
        deadline = time.monotonic() + self.lock_timeout
        wait = FIRST_WAIT
        while True:
            try:
                fcntl.flock(self.writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.holds_lock = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)

    def _release_writer_lock(self) -> None:
        if self.holds_lock:
            self.holds_lock = False
            fcntl.flock(self.writer_lock, fcntl.LOCK_UN)


def sqlite_engine_options(options: dict) -> dict:
    """Return engine options that make SQLite connections QueuedWriterConnections."""
    connect_args = {**options.get("connect_args", {}), "factory": QueuedWriterConnection}
    return {**options, "connect_args": connect_args}


def configure_sqlite(engine) -> None:
    """Use the write-ahead log, and begin each write transaction with BEGIN IMMEDIATE.

    By default pysqlite begins a transaction before the first statement and upgrades its read
    lock to a write lock on the first write; two connections doing that at once deadlock, and
    SQLite answers one of them "database is locked" at once, without waiting. BEGIN IMMEDIATE
    takes the write lock first, so concurrent writers queue instead of failing (SQLAlchemy's
    pysqlite documentation, "Serializable isolation / Savepoints / Transactional DDL"). Here it
    is issued just before the first write, so that reads never hold the lock. The engine must
    have been made with sqlite_engine_options(), whose connections know how to queue for it.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        # Let SQLAlchemy, not the driver, say when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # No BEGIN when SQLAlchemy begins a transaction: it begins at its first write, here.
    @event.listens_for(engine, "before_cursor_execute")
    def before_write(connection, cursor, statement, parameters, context, executemany):
        dbapi_connection = connection.connection.dbapi_connection
        if (
            not dbapi_connection.in_transaction
            and connection.in_transaction()
            and is_write(statement, context)
        ):
            dbapi_connection.begin_immediate()


def is_write(statement: str, context) -> bool:
    """Tell whether a statement needs the write lock: anything but a plain SELECT."""
    if statement.lstrip()[:6].upper() != "SELECT":
        return True
    # SQLite has no FOR UPDATE: it is dropped from the SQL, but the statement still says so.
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None
