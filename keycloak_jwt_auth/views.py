"""Demo views: the service-account token's status and the realm's users via the Admin API.

They expose realm data, so they are for staff users unless
``KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS`` is True (the demo project's local default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jwt
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control

from .admin_api import KeycloakAdmin
from .conf import DEFAULT_CLIENT, demo_views_allow_anonymous
from .exceptions import AdminForbiddenError, KeycloakJWTAuthError, KeycloakUnavailableError
from .manager import get_token_manager

PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
SHOWN_CLAIMS = ("azp", "iss", "exp", "scope")

View = Callable[..., HttpResponse]


def staff_unless_demo_open(*, json: bool) -> Callable[[View], View]:
    """Staff only (unless the demo is open), and never kept by a browser or a shared proxy:
    the answers hold realm data."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = _for_staff(view, json, request, *args, **kwargs)
            patch_cache_control(response, private=True, no_store=True)
            return response

        return wrapper

    return decorator


def _for_staff(
    view: View, json: bool, request: HttpRequest, *args: Any, **kwargs: Any
) -> HttpResponse:
    user = request.user
    if demo_views_allow_anonymous() or (user.is_active and user.is_staff):
        return view(request, *args, **kwargs)
    if json:
        return JsonResponse({"error": "Staff users only."}, status=403)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return HttpResponse("Staff users only.", status=403, content_type="text/plain")


def token_status(client: str = DEFAULT_CLIENT) -> dict[str, Any]:
    """What may be shown of the token: never its value."""
    manager = get_token_manager(client)
    token, from_cache = manager.get_token_with_origin()
    try:
        claims = token.unverified_claims()
    except jwt.DecodeError:
        claims = {}
    return {
        "client": client,
        "client_id": manager.config.client_id,
        "realm": manager.config.realm,
        **token.status(from_cache=from_cache),
        "claims": {name: claims[name] for name in SHOWN_CLAIMS if name in claims},
    }


def _int_param(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return default
    return min(max(value, 0), maximum)


def users_page(request: HttpRequest) -> dict[str, Any]:
    search = request.GET.get("search", "").strip()
    first = _int_param(request, "first", 0, 10**9)
    size = _int_param(request, "max", PAGE_SIZE, MAX_PAGE_SIZE) or PAGE_SIZE
    admin = KeycloakAdmin()
    users = admin.users(search=search or None, first=first, max=size, brief=True)
    return {
        "search": search,
        "first": first,
        "max": size,
        "count": admin.users_count(search=search or None),
        "users": [
            {
                key: user.get(key)
                for key in ("id", "username", "email", "firstName", "lastName", "enabled")
            }
            for user in users
        ],
    }


def error_status(exc: KeycloakJWTAuthError) -> tuple[int, str]:
    """503 when Keycloak cannot be reached; 502 when it answered with a refusal."""
    if isinstance(exc, KeycloakUnavailableError):
        return 503, f"Keycloak is unavailable: {exc}"
    if isinstance(exc, AdminForbiddenError):
        return 502, (
            f"Keycloak refused the Admin API call: the service account lacks the "
            f"realm-management role '{exc.required_role}'."
        )
    return 502, f"Keycloak refused: {exc}"


@staff_unless_demo_open(json=False)
def index(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {}
    try:
        context["token"] = token_status()
        context.update(users_page(request))
    except KeycloakJWTAuthError as exc:
        status, context["error"] = error_status(exc)
        return render(request, "keycloak_jwt_auth/index.html", context, status=status)
    first, size, count = context["first"], context["max"], context["count"]
    context["previous_first"] = max(first - size, 0) if first > 0 else None
    context["next_first"] = first + size if first + size < count else None
    context["last_shown"] = first + len(context["users"])
    return render(request, "keycloak_jwt_auth/index.html", context)


def _json_view(build: Callable[[HttpRequest], dict[str, Any]]) -> View:
    @staff_unless_demo_open(json=True)
    @functools.wraps(build)
    def view(request: HttpRequest) -> HttpResponse:
        try:
            return JsonResponse(build(request))
        except KeycloakJWTAuthError as exc:
            status, message = error_status(exc)
            return JsonResponse({"error": message}, status=status)

    return view


api_users = _json_view(users_page)
api_token = _json_view(lambda request: token_status())
