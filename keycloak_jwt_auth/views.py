"""Demo views: the service-account token's status and the realm's users via the Admin API.

They expose realm data, so they are for staff users unless
``KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS`` is True (the demo project's local default).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import jwt
from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST, require_safe

from .admin import AsyncKeycloakAdmin, KeycloakAdmin, UserRepresentation
from .clients import get_token_manager
from .exceptions import (
    AdminForbiddenError,
    AdminNotFoundError,
    KeycloakJWTAuthError,
    KeycloakUnavailableError,
)
from .jwks import key_set, shared_kids
from .settings import DEFAULT_CLIENT, demo_views_allow_anonymous, demo_write_client
from .tokens.manager import TokenManager
from .tokens.token import AccessToken

PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
SHOWN_CLAIMS = ("azp", "iss", "exp", "scope")

View = Callable[..., HttpResponse]
AsyncView = Callable[..., Coroutine[Any, Any, HttpResponse]]


def staff_unless_demo_open(*, json: bool, write: bool = False) -> Callable[[View], View]:
    """Staff only (unless the demo is open, and never for a ``write``), and never kept by a
    browser or a shared proxy: the answers hold realm data."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            open_to_anyone = not write and demo_views_allow_anonymous()
            refusal = None if open_to_anyone else _refusal(request, request.user, json)
            return _private(refusal or view(request, *args, **kwargs))

        return wrapper

    return decorator


def async_staff_unless_demo_open(view: AsyncView) -> AsyncView:
    """``staff_unless_demo_open(json=True)`` for an ``async def`` view."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        open_to_anyone = demo_views_allow_anonymous()
        refusal = None if open_to_anyone else _refusal(request, await request.auser(), json=True)
        return _private(refusal or await view(request, *args, **kwargs))

    return wrapper


def _refusal(request: HttpRequest, user: Any, json: bool) -> HttpResponse | None:
    if user.is_active and user.is_staff:
        return None
    if json:
        return JsonResponse({"error": "Staff users only."}, status=403)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return HttpResponse("Staff users only.", status=403, content_type="text/plain")


def _private(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_store=True)
    return response


def token_status(client: str = DEFAULT_CLIENT) -> dict[str, Any]:
    """What may be shown of the token: never its value."""
    token, from_cache = get_token_manager(client).get_token_with_origin()
    return _status(client, token, from_cache)


async def atoken_status(client: str = DEFAULT_CLIENT) -> dict[str, Any]:
    manager = get_token_manager(client)
    fetched_before = manager.fetch_count
    token = await manager.aget_token()
    return _status(client, token, from_cache=manager.fetch_count == fetched_before)


def _status(client: str, token: AccessToken, from_cache: bool) -> dict[str, Any]:
    manager = get_token_manager(client)
    try:
        claims = token.unverified_claims()
    except jwt.DecodeError:
        claims = {}
    return {
        "client": client,
        "client_id": manager.config.client_id,
        "realm": manager.config.realm,
        **token.status(from_cache=from_cache),
        "token_type": token.token_type,
        "bound_to": _bound_to(claims),
        "claims": {name: claims[name] for name in SHOWN_CLAIMS if name in claims},
        "activity": activity(manager, token),
    }


def _bound_to(claims: dict[str, Any]) -> str | None:
    """The thumbprint of the key a DPoP-bound token is bound to (``cnf.jkt``), or None."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def activity(manager: TokenManager, token: AccessToken) -> dict[str, Any]:
    """What this process's manager did so far, and when it renews ``token``."""
    renew_at = manager.renew_from(token)
    return {
        **manager.stats.as_dict(),
        "cache_failures": manager.store.failures,
        "next_renewal_in": max(0, int(renew_at - time.time())),
    }


def _int_param(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return default
    return min(max(value, 0), maximum)


def _page_query(request: HttpRequest) -> tuple[str, int, int]:
    search = request.GET.get("search", "").strip()
    first = _int_param(request, "first", 0, 10**9)
    size = _int_param(request, "max", PAGE_SIZE, MAX_PAGE_SIZE) or PAGE_SIZE
    return search, first, size


def users_page(request: HttpRequest) -> dict[str, Any]:
    search, first, size = _page_query(request)
    admin = KeycloakAdmin()
    users = admin.users(search=search or None, first=first, max=size, brief=True)
    return _page(search, first, size, users, admin.users_count(search=search or None))


async def ausers_page(request: HttpRequest) -> dict[str, Any]:
    search, first, size = _page_query(request)
    admin = AsyncKeycloakAdmin()
    users, count = await asyncio.gather(
        admin.users(search=search or None, first=first, max=size, brief=True),
        admin.users_count(search=search or None),
    )
    return _page(search, first, size, users, count)


def _page(
    search: str, first: int, size: int, users: list[UserRepresentation], count: int
) -> dict[str, Any]:
    return {
        "search": search,
        "first": first,
        "max": size,
        "count": count,
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


def user_details(admin: KeycloakAdmin, user_id: str) -> dict[str, Any]:
    """One user's organizations and client roles (``request()`` reads every role mapping at
    once). A realm without organizations, or a token without their roles, shows none."""
    user = admin.user(user_id)
    mappings = admin.request("GET", f"users/{user['id']}/role-mappings") or {}
    client_roles = {
        client: sorted(role["name"] for role in mapping.get("mappings", []))
        for client, mapping in sorted((mappings.get("clientMappings") or {}).items())
    }
    try:
        organizations = [org.get("name", "") for org in admin.user_organizations(user["id"])]
    except (AdminForbiddenError, AdminNotFoundError) as exc:
        organizations, note = [], f"Organizations not shown: {exc}"
    else:
        note = ""
    return {"username": user.get("username"), "organizations": organizations,
            "client_roles": client_roles, "note": note}  # fmt: skip


@staff_unless_demo_open(json=False)
def index(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"messages": messages.get_messages(request)}
    try:
        context["token"] = token_status()
        context.update(users_page(request))
        if request.GET.get("user"):
            context["details"] = user_details(KeycloakAdmin(), request.GET["user"])
    except KeycloakJWTAuthError as exc:
        status, context["error"] = error_status(exc)
        return render(request, "keycloak_jwt_auth/index.html", context, status=status)
    first, size, count = context["first"], context["max"], context["count"]
    context["previous_first"] = max(first - size, 0) if first > 0 else None
    context["next_first"] = first + size if first + size < count else None
    context["last_shown"] = first + len(context["users"])
    return render(request, "keycloak_jwt_auth/index.html", context)


def error_json(exc: KeycloakJWTAuthError) -> JsonResponse:
    """A failure as the JSON views answer it: the status ``error_status`` maps it to."""
    status, message = error_status(exc)
    return JsonResponse({"error": message}, status=status)


def _json_view(build: Callable[[HttpRequest], dict[str, Any]]) -> View:
    @staff_unless_demo_open(json=True)
    @functools.wraps(build)
    def view(request: HttpRequest) -> HttpResponse:
        try:
            return JsonResponse(build(request))
        except KeycloakJWTAuthError as exc:
            return error_json(exc)

    return view


def default_token_status(request: HttpRequest) -> dict[str, Any]:
    return token_status()


async def adefault_token_status(request: HttpRequest) -> dict[str, Any]:
    return await atoken_status()


api_users = _json_view(users_page)
api_token = _json_view(default_token_status)


def _async_json_view(build: Callable[[HttpRequest], Awaitable[dict[str, Any]]]) -> AsyncView:
    @async_staff_unless_demo_open
    @functools.wraps(build)
    async def view(request: HttpRequest) -> HttpResponse:
        try:
            return JsonResponse(await build(request))
        except KeycloakJWTAuthError as exc:
            return error_json(exc)

    return view


async_api_users = _async_json_view(ausers_page)
async_api_token = _async_json_view(adefault_token_status)


# --- the "create user" form: an Admin API write ------------------------------------------------


class NewUserForm(forms.Form):
    username = forms.CharField(max_length=255)
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=255, required=False)
    last_name = forms.CharField(max_length=255, required=False)

    def representation(self) -> UserRepresentation:
        """An enabled user (Keycloak creates users disabled when not told otherwise)."""
        data = self.cleaned_data
        user: UserRepresentation = {"username": data["username"], "enabled": True}
        for key, field in (
            ("email", "email"),
            ("firstName", "first_name"),
            ("lastName", "last_name"),
        ):
            if data[field]:
                user[key] = data[field]  # type: ignore[literal-required]
        return user


@csrf_protect
@require_POST
@staff_unless_demo_open(json=False, write=True)
def create_user(request: HttpRequest) -> HttpResponse:
    """Create a Keycloak user from the demo page's form, then show it in the list. A write:
    an authenticated, active staff user only, whatever the demo's anonymous switch says."""
    form = NewUserForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(map(str, e))}" for name, e in form.errors.items())
        messages.error(request, f"User not created: {errors}")
        return redirect("keycloak_jwt_auth:index")
    username = form.cleaned_data["username"]
    try:
        KeycloakAdmin(demo_write_client()).create_user(form.representation())
    except KeycloakJWTAuthError as exc:
        messages.error(request, f"User {username!r} not created. {error_status(exc)[1]}")
        return redirect("keycloak_jwt_auth:index")
    messages.success(request, f"Created user {username!r}.")
    return redirect(f"{reverse('keycloak_jwt_auth:index')}?{urlencode({'search': username})}")


# --- the JWKS Keycloak reads the public keys from (not a demo view: public by design) ---------

JWKS_CONTENT_TYPE = "application/jwk-set+json"  # RFC 7517 section 8.5.1
JWKS_MAX_AGE = 60  # seconds: long enough to spare the app, short enough for a key rotation


@require_safe
def jwks(request: HttpRequest, client: str | None = None) -> HttpResponse:
    """The JSON Web Key Set (current and next public keys) of ONE Keycloak client, for its
    "JWKS URL": ``path(".well-known/jwks/<str:client>.json", jwks)`` serves the client whose
    ``CLIENT_ID`` is ``client``. Mounted without ``client``, it serves the default client's
    keys, or every client's with ``KEYCLOAK_JWT_AUTH_JWKS_ALL_CLIENTS`` (see ``jwks.py``)."""
    keys = key_set(client)
    if keys is None:
        return JsonResponse({"error": "No such client."}, status=404)
    if shared_kids(keys):
        error = "Several keys share one kid: run 'manage.py check' (keycloak_jwt_auth.E023)."
        return JsonResponse({"error": error}, status=500)
    response = JsonResponse({"keys": keys}, content_type=JWKS_CONTENT_TYPE)
    patch_cache_control(response, public=True, max_age=JWKS_MAX_AGE)
    return response
