# Production image: the same steps as `make run`, without development keys.
# Build: docker build -t koogallery-isv .
# Run:   docker run -p 8000:8000 --env-file .env koogallery-isv
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    KOOGALLERY_ENV=production \
    GUNICORN_BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=2

RUN useradd --create-home --uid 10001 koogallery
WORKDIR /srv/koogallery

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=koogallery:koogallery . .
# instance/ holds the SQLite database when DATABASE_URL is not set.
RUN mkdir -p instance && chown koogallery:koogallery instance

USER koogallery
EXPOSE 8000

# The job worker is a second container of the same image, sharing the queue:
#   docker run --env-file .env -e KOOGALLERY_QUEUE=redis://redis:6379/0 koogallery-isv \
#       flask --app wsgi market worker
# (the default SQLite queue lives in instance/ and suits one machine with a shared volume).
# Migrate, then serve. The app refuses to start without SECRET_KEY and KOOGALLERY_BASIC_KEY.
CMD ["sh", "-c", "flask --app wsgi db upgrade && exec gunicorn -c gunicorn.conf.py wsgi:app"]
