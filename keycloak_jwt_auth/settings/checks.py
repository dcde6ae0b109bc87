"""The system checks of ``KEYCLOAK_JWT_AUTH``, registered with Django (their IDs: ``problems``).

They report what the rules find: each client's ``rules.client_problems`` (the same list the run
time refuses a client by), the caches the tokens are shared through (``rules.UNFIT_CACHES``),
and demo views left open in production.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .defaults import DEFAULT_CLIENT, DEMO_SETTING_NAME, SETTING_NAME
from .problems import DEMO_VIEWS_OPEN, Problem
from .reading import client_names, demo_views_allow_anonymous, raw_client_settings
from .rules import UNFIT_CACHES as UNFIT_CACHES  # the doctor reads it from here
from .rules import client_problems, shape_problem

TAG = "keycloak_jwt_auth"


def _label(name: str, key: str | None = None) -> str:
    base = SETTING_NAME if name == DEFAULT_CLIENT else f"{SETTING_NAME}['CLIENTS'][{name!r}]"
    return f"{base}[{key!r}]" if key else base


def _message(name: str, problem: Problem) -> CheckMessage:
    level = Error if problem.is_error else Warning
    return level(
        f"{_label(name, problem.key)} {problem.text}.",
        hint=problem.hint,
        obj=_label(name),
        id=f"{TAG}.{problem.id}",
    )


def _report(*, deploy: bool) -> list[CheckMessage]:
    shape = shape_problem()
    if shape is not None:
        return [] if deploy else [_message(DEFAULT_CLIENT, shape)]
    return [
        _message(name, problem)
        for name in client_names()
        for problem in client_problems(name)
        if problem.deploy is deploy
    ]


@register(TAG)
def check_client_settings(**kwargs: Any) -> list[CheckMessage]:
    return _report(deploy=False)


@register(TAG, deploy=True)
def check_client_settings_for_production(**kwargs: Any) -> list[CheckMessage]:
    return _report(deploy=True)


@register(TAG, Tags.caches)
def check_token_cache_is_shared(**kwargs: Any) -> list[CheckMessage]:
    if shape_problem() is not None:
        return []
    named = [raw_client_settings(name)["CACHE_ALIAS"] for name in client_names()]
    aliases = {alias for alias in named if isinstance(alias, str)}  # others are an E011
    return [
        Warning(
            f"Keycloak tokens are kept in cache {alias!r}, {what}.",
            hint=hint,
            obj=f"CACHES[{alias!r}]",
            id=f"{TAG}.{check.id}",
        )
        for alias in sorted(aliases & set(settings.CACHES))
        for unfit, check, what, hint in UNFIT_CACHES
        if unfit(settings.CACHES[alias])
    ]


@register(TAG, deploy=True)
def check_demo_views_closed(**kwargs: Any) -> list[CheckMessage]:
    if not demo_views_allow_anonymous():
        return []
    # Reported with DEBUG on too: a deployment check runs against what will be deployed.
    return [
        Warning(
            f"{DEMO_SETTING_NAME} is True: anyone can list the realm's users through the demo "
            "views (creating users always needs a staff login).",
            hint=f"Set {DEMO_SETTING_NAME} = False (staff only) or do not include "
            "keycloak_jwt_auth.urls in production.",
            id=f"{TAG}.{DEMO_VIEWS_OPEN.id}",
        )
    ]
