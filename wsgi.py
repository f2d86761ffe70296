"""Entry point for gunicorn (`wsgi:app`) and the flask CLI (`flask --app wsgi …`)."""

from dotenv import load_dotenv

# Read .env here rather than in config.py, so tests never pick up a developer's local settings.
load_dotenv()

from app import create_app  # noqa: E402

app = create_app()
