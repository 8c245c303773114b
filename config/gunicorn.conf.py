"""gunicorn settings; each value can be overridden from the environment."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# A request mostly waits on Corti, so threads, not processes, carry the load:
# two processes per core of a 2-core machine, 16 threads each. With CONN_MAX_AGE
# every thread may keep a PostgreSQL connection: 4 x 16 + the db_worker = 65,
# inside PostgreSQL's default max_connections of 100 (docs/PERFORMANCE.md);
# on_starting refuses a size the server cannot hold (config/connections.py).
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
worker_class = "gthread"
# Longer than the Corti read timeout, so a slow Corti answer never kills a worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 10
accesslog = "-"
# Paths only, never query strings: a search can carry a patient identifier.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
# Each record one line, control characters escaped: gunicorn logs the decoded
# path, and a %0a in it would otherwise start a forged line.
logger_class = "config.logs.GunicornLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Before any worker starts: refuse a size PostgreSQL cannot serve."""
    from config.connections import check_budget

    check_budget(workers=server.cfg.workers, threads=server.cfg.threads)


def post_fork(server, worker):
    """Leave django-axes' start-up line to the first worker (config.logs)."""
    from config.logs import STARTUP_LOGGED

    # Ages count from 1 for each worker the master starts, replacements too.
    if worker.age > 1:
        os.environ[STARTUP_LOGGED] = "1"
