"""SQLite shared by several processes: reads never wait, writers queue on the lock file."""

import sqlite3
import threading

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.sqlite import QueuedWriterConnection, configure_sqlite, sqlite_engine_options

metadata = MetaData()
things = Table("thing", metadata, Column("id", Integer, primary_key=True), Column("name", String))


@pytest.fixture
def database(tmp_path):
    return tmp_path / "shared.db"


def engine_for(database, timeout: float = 3):
    """An engine set up as create_app sets up the app's (one per process in production)."""
    options = sqlite_engine_options({"connect_args": {"timeout": timeout}})
    engine = create_engine(f"sqlite:///{database}", **options)
    configure_sqlite(engine)
    return engine


@pytest.fixture
def engine(database):
    engine = engine_for(database)
    metadata.create_all(engine)
    with Session(engine) as session:
        session.execute(insert(things).values(name="first"))
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def other_writer(database, engine):
    """Another process's connection holding the writer lock (and SQLite's) until released."""
    connection = sqlite3.connect(
        database, factory=QueuedWriterConnection, timeout=3, check_same_thread=False
    )
    connection.isolation_level = None
    connection.begin_immediate()
    connection.execute("INSERT INTO thing (name) VALUES ('uncommitted')")
    yield connection
    connection.rollback()
    connection.close()


def test_connections_are_queued_writer_connections_with_a_lock_file(engine, database):
    with engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, QueuedWriterConnection)
    assert database.with_name("shared.db-writer.lock").exists()


def test_a_read_only_transaction_does_not_wait_for_a_writer(engine, other_writer):
    # Were it waiting for the lock, it would fail after 3 s: the other writer never lets go.
    with Session(engine) as session:
        names = session.scalars(select(things.c.name)).all()
        session.commit()
    assert names == ["first"]  # the other writer's row is not committed


def test_a_write_waits_for_the_writer_and_then_goes_ahead(engine, other_writer):
    released = threading.Event()

    def release():
        released.set()
        other_writer.commit()

    threading.Timer(0.3, release).start()
    with Session(engine) as session:
        session.execute(insert(things).values(name="second"))
        # Our INSERT could only run once the other writer had let go.
        assert released.is_set()
        session.commit()
    with Session(engine) as session:
        assert session.scalars(select(things.c.name).order_by(things.c.id)).all() == [
            "first",
            "uncommitted",
            "second",
        ]


def test_a_write_gives_up_after_the_connection_timeout(database, engine, other_writer):
    impatient = engine_for(database, timeout=0.3)
    with Session(impatient) as session, pytest.raises(OperationalError, match="database is locked"):
        session.execute(insert(things).values(name="never"))
    impatient.dispose()


def test_select_for_update_takes_the_write_lock_as_on_postgresql(database, engine):
    with Session(engine) as session:
        session.scalars(select(things.c.name).with_for_update()).all()
        holder = session.connection().connection.dbapi_connection
        assert holder.holds_lock and holder.in_transaction
        # Another writer now waits, as another transaction would for PostgreSQL's row lock.
        rival = sqlite3.connect(database, factory=QueuedWriterConnection, timeout=0.2)
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            rival.begin_immediate()
        rival.close()
        session.commit()
        assert not holder.holds_lock


def test_the_lock_is_released_by_commit_and_by_rollback(engine):
    for end in (Session.commit, Session.rollback):
        with Session(engine) as session:
            session.execute(insert(things).values(name="x"))
            holder = session.connection().connection.dbapi_connection
            assert holder.holds_lock
            end(session)
            assert not holder.holds_lock
