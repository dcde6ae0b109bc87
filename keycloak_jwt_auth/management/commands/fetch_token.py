"""``manage.py fetch_token``: print the service-account access token (or its claims)."""

from __future__ import annotations

import contextlib
import json
import logging
from argparse import ArgumentParser
from collections.abc import Iterator
from typing import Any

import jwt
from django.core.management.base import BaseCommand, CommandError

from keycloak_jwt_auth.clients import get_token_manager
from keycloak_jwt_auth.doctor.probe import refusal_hint
from keycloak_jwt_auth.exceptions import KeycloakJWTAuthError, OAuthError
from keycloak_jwt_auth.settings import DEFAULT_CLIENT


class Command(BaseCommand):
    # It validates its own client when it builds it (the rules of the checks); the project-wide
    # check block would bury the one line a failure prints.
    requires_system_checks: list[str] = []
    help = (
        "Print a Keycloak service-account access token for a configured client, fetched with a "
        "client_secret_jwt assertion (or taken from the cache while it is valid)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--client",
            default=DEFAULT_CLIENT,
            help="Name of the client in KEYCLOAK_JWT_AUTH (default: %(default)s).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Skip the cache: fetch a new token and store it.",
        )
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print one JSON object: access_token, token_type, expires_in, expires_at, "
            "from_cache, scope.",
        )
        output.add_argument(
            "--decode",
            action="store_true",
            help="Print the token's claims as JSON instead of the token (not verified).",
        )

    def handle(
        self, *args: Any, client: str, force: bool, as_json: bool, decode: bool, **options: Any
    ) -> None:
        try:
            with quiet_unless_configured():
                manager = get_token_manager(client)
                token, from_cache = manager.get_token_with_origin(force_refresh=force)
        except OAuthError as exc:
            hint = refusal_hint(manager.config, exc)
            raise CommandError(one_line(exc) + (f" Hint: {hint}" if hint else "")) from exc
        except KeycloakJWTAuthError as exc:
            raise CommandError(one_line(exc)) from exc

        if decode:
            try:
                claims = token.unverified_claims()
            except jwt.DecodeError as exc:
                raise CommandError(f"The access token is not a JWT: {exc}") from exc
            self.stderr.write("Claims decoded without verifying the signature.")
            self.stdout.write(dumps(claims))
        elif as_json:
            self.stdout.write(
                dumps(
                    {
                        "access_token": token.value,
                        "token_type": token.token_type,
                        **token.status(from_cache=from_cache),
                        "scope": token.scope,
                    }
                )
            )
        else:
            self.stdout.write(token.value)


@contextlib.contextmanager
def quiet_unless_configured() -> Iterator[None]:
    """The app's retry and failure logs reach stderr only through a handler the project
    configured: Python's last-resort handler would print them beside the one error line."""
    logger = logging.getLogger("keycloak_jwt_auth")
    if logger.hasHandlers():
        yield
        return
    silent = logging.NullHandler()
    logger.addHandler(silent)
    try:
        yield
    finally:
        logger.removeHandler(silent)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
