"""Extensions, created unbound here and bound to the app in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase

# Named constraints let Alembic alter tables on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def configure_sqlite(engine) -> None:
    """Make SQLite transactions take the write lock at BEGIN, and use its write-ahead log.

    By default pysqlite starts a transaction lazily and upgrades a read lock to a write lock on
    the first write; two connections doing that at once deadlock, and SQLite answers one of them
    "database is locked" at once, without waiting. BEGIN IMMEDIATE takes the write lock first, so
    concurrent requests queue (for the connect timeout) instead of failing. This is the recipe of
    SQLAlchemy's pysqlite documentation ("Serializable isolation / Savepoints / Transactional DDL").
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        # Let SQLAlchemy, not the driver, say when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def commit_if_new() -> bool:
    """Commit the session; roll back and return False if a unique constraint refused a row.

    This is how the project stays idempotent under resends and concurrency: insert first, and
    let the database say whether the thing existed, rather than checking and then inserting.
    """
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True
