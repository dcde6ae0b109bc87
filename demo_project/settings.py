"""Settings of the demo project, read from the environment (and an optional .env file)."""

from __future__ import annotations

import os
from pathlib import Path

import environ

from demo_project.caches import cache_from_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
FROM_ENVIRONMENT = frozenset(os.environ)  # what the real environment sets, before .env
environ.Env.read_env(BASE_DIR / ".env")  # optional; real environment variables win

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keycloak_jwt_auth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
LOGIN_URL = "admin:login"  # staff sign in through the admin to see the demo views
WSGI_APPLICATION = "demo_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}

# Tokens live in this cache: locmem for one process, Redis to share them across workers/hosts.
# CACHE_URL=redis://HOST:PORT/DB is Django's RedisCache, django-redis://HOST:PORT/DB django-redis,
# django-redis-sentinel://PRIMARY/DB?sentinels=HOST:PORT its Sentinel client; each with socket
# timeouts (demo_project/caches.py).
CACHES = {"default": cache_from_url(env.str("CACHE_URL", default="locmemcache://"))}

# Celery (demo_project/celery.py, only where Celery is installed): the broker is a Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6390/1")
CELERY_TASK_IGNORE_RESULT = True  # the demo's tasks report through their logs, not a backend

KEYCLOAK_AUTH_METHOD = env.str("KEYCLOAK_AUTH_METHOD", default="client_secret_jwt")
KEYCLOAK_JWT_AUTH = {
    "SERVER_URL": env.str("KEYCLOAK_SERVER_URL", default="http://127.0.0.1:8080"),
    "REALM": env.str("KEYCLOAK_REALM", default="demo"),
    "CLIENT_ID": env.str("KEYCLOAK_CLIENT_ID", default="django-service"),
    "AUTH_METHOD": KEYCLOAK_AUTH_METHOD,
    # None: HS256 for client_secret_jwt, RS256 for private_key_jwt.
    "ALGORITHM": env.str("KEYCLOAK_JWT_ALGORITHM", default=None) or None,
    "TOKEN_ENDPOINT": env.str("KEYCLOAK_TOKEN_ENDPOINT", default=None),
}
if KEYCLOAK_AUTH_METHOD == "private_key_jwt":
    KEYCLOAK_JWT_AUTH["PRIVATE_KEY_FILE"] = env.str("KEYCLOAK_PRIVATE_KEY_FILE", default=None)
else:
    KEYCLOAK_JWT_AUTH["CLIENT_SECRET"] = env.str("KEYCLOAK_CLIENT_SECRET", default=None)

# A client with manage-users for the Admin API writes: the demo page's "create user" form and
# `manage.py keycloak_user ... --client provisioning`. Only when its secret is set.
# The .env's provisioning client belongs to the .env's Keycloak: when the environment points
# KEYCLOAK_SERVER_URL or KEYCLOAK_REALM elsewhere, a client only .env defines is left out (the
# doctor would report it failing there); set KEYCLOAK_PROVISIONING_* there too to keep one.
_provisioning_secret = env.str("KEYCLOAK_PROVISIONING_CLIENT_SECRET", default=None)
_elsewhere = bool({"KEYCLOAK_SERVER_URL", "KEYCLOAK_REALM"} & FROM_ENVIRONMENT)
if _elsewhere and "KEYCLOAK_PROVISIONING_CLIENT_SECRET" not in FROM_ENVIRONMENT:
    _provisioning_secret = None
if _provisioning_secret:
    KEYCLOAK_JWT_AUTH.setdefault("CLIENTS", {})["provisioning"] = {
        "CLIENT_ID": env.str("KEYCLOAK_PROVISIONING_CLIENT_ID", default="django-provisioning"),
        "CLIENT_SECRET": _provisioning_secret,
    }
KEYCLOAK_JWT_AUTH_DEMO_WRITE_CLIENT = "provisioning" if _provisioning_secret else "default"

# The demo views list the realm's users; without this they are for staff users only.
KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS = env.bool("KEYCLOAK_DEMO_ALLOW_ANONYMOUS", default=DEBUG)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "keycloak_jwt_auth": {
            "handlers": ["console"],
            "level": env.str("KEYCLOAK_JWT_AUTH_LOG_LEVEL", default="INFO"),
        },
    },
}
