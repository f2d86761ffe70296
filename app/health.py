"""Liveness and readiness for load balancers and `make run`."""

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db

bp = Blueprint("health", __name__)


# Docs: none (our own endpoint, not part of the KooGallery protocol)
@bp.get("/livez")
def livez():
    """Answer without touching the database: the process is up (and the benchmark's baseline)."""
    return jsonify(status="ok")


# Docs: none (our own endpoint, not part of the KooGallery protocol)
@bp.get("/healthz")
def healthz():
    """Report whether the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
