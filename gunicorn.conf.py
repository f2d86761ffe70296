"""gunicorn settings shared by `make run` and the Dockerfile."""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '5000')}")
# WEB_CONCURRENCY is gunicorn's own convention for the worker count.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The marketplace gives each call 5 s; a worker stuck far beyond that is restarted.
timeout = 30
graceful_timeout = 10
accesslog = "-"
# V1 calls carry authToken and encrypted phone/e-mail in the query string: log the path only.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
