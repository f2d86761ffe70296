"""KooGallery merchant server: the application factory."""

import logging
from collections.abc import Mapping

from flask import Flask

from config import DEVELOPMENT, INSTANCE_DIR, PRODUCTION, Config


def create_app(overrides: Mapping | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    """Create and configure the app: config, extensions, blueprints, error handlers, CLI."""
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(Config(environ))
    if overrides:
        app.config.update(overrides)
    configure_logging()

    from app.devkeys import apply_development_keys, check_production_config

    if app.config["KOOGALLERY_ENV"] == PRODUCTION:
        check_production_config(app.config)
    elif app.config["KOOGALLERY_ENV"] == DEVELOPMENT and not app.testing:
        filled = apply_development_keys(app.config, app.instance_path)
        # `flask market keys` prints these, and only these: the rest came from the environment.
        app.config["KOOGALLERY_DEVELOPMENT_KEYS"] = filled
        if filled:
            app.logger.info("development keys loaded for %s", ", ".join(filled))

    from app.extensions import db, migrate
    from app.sqlite import configure_sqlite, sqlite_engine_options

    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    if sqlite:
        options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = sqlite_engine_options(options)
    db.init_app(app)
    migrate.init_app(app, db)
    if sqlite:
        with app.app_context():
            configure_sqlite(db.engine)

    from app import health
    from app.jobs import init_queue

    init_queue(app)

    from app.console import routes as console_routes
    from app.kit import routes as kit_routes
    from app.license import routes as license_routes
    from app.notify import routes as notify_routes
    from app.oauth import routes as oauth_routes
    from app.saas import routes as saas_routes

    app.register_blueprint(health.bp)
    app.register_blueprint(saas_routes.bp)
    app.register_blueprint(kit_routes.bp)
    app.register_blueprint(license_routes.bp)
    app.register_blueprint(notify_routes.bp)
    app.register_blueprint(oauth_routes.bp)
    app.register_blueprint(oauth_routes.demo)
    app.register_blueprint(console_routes.bp)

    from app.calllog import record_call
    from app.errors import register_error_handlers
    from app.headers import add_security_headers

    app.after_request(record_call)
    add_security_headers(app)
    register_error_handlers(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def configure_logging() -> None:
    """Log to stderr in one format; gunicorn collects it."""
    # A no-op when logging is already configured (pytest, or a merchant's own setup).
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic announces each of its plugins at INFO whenever it is imported; say nothing.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
