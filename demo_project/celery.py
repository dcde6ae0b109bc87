"""The demo's Celery app: a prefork worker whose tasks call the Admin API through the app
(``scripts/deploy.sh start`` runs one; needs Celery, which the package itself never does).

    celery -A demo_project.celery worker --pool prefork --concurrency 4
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

app = Celery("demo_project", include=["demo_project.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
