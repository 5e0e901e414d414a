"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Request logs must hold no personal data (crm/weblog.py): the access-log format names no query
string (``%(q)s``), no raw request line (``%(r)s``) and no referer, and the logger class
``crm.weblog.GunicornLogger`` redacts whatever a changed format asks for — the path loses its query
string and the self-service link token (``/my/link/***``), the referer and credentials are masked —
and filters the error log the same way. Command-line options override these values
(``--bind``, ``--workers``, ``--access-logfile``, ``--error-logfile``).
"""
import os

bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
logger_class = "crm.weblog.GunicornLogger"
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'
