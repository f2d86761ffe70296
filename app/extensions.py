"""Extensions, created unbound here and bound to the app in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
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


def insert_if_new(model, rows: dict | list[dict]) -> bool:
    """INSERT a row or rows and commit; roll back and return False if a unique constraint refuses.

    A plain INSERT of the table rather than ORM objects, for rows written on every call (the
    nonce guard) or by the thousand (a department tree): the compiled statement is cached, the
    unit of work skipped, and a list goes out as one multi-row INSERT. Whatever the session
    already holds is committed with it.
    """
    try:
        if rows:
            db.session.execute(model.__table__.insert(), rows)
    except IntegrityError:
        db.session.rollback()
        return False
    return commit_if_new()
