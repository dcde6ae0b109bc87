"""``manage.py keycloak_keys``: make a private key for ``private_key_jwt`` or DPoP, or print the
JWKS."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.keys import (
    INSTALL_HINT,
    KEY_ALGORITHMS,
    cryptography_installed,
    generate_private_key,
)

KEEP_IT_PRIVATE = (
    "Save it where only the app's user can read it, e.g.\n"
    "  (umask 077; python manage.py keycloak_keys generate --algorithm {algorithm} > key.pem)\n"
    "then set PRIVATE_KEY_FILE (or NEXT_PRIVATE_KEY_FILE, to publish it before it signs) and "
    "ALGORITHM = {algorithm!r}. Never commit it."
)
KEEP_DPOP_KEY_PRIVATE = (
    "Save it where only the app's user can read it, e.g.\n"
    "  (umask 077; python manage.py keycloak_keys generate --dpop > dpop.pem)\n"
    "then set DPOP_KEY_FILE (proofs sign with {algorithm}). A key of its own: never the "
    "client-authentication key. Never commit it."
)


class Command(BaseCommand):
    help = (
        "Keys for private_key_jwt and DPoP: 'generate' prints a new private key (PEM), 'jwks' "
        "prints the public JSON Web Key Set the jwks view serves to Keycloak."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{generate,jwks}")
        generate = actions.add_parser("generate", help="Print a new private key (PEM).")
        generate.add_argument(
            "--algorithm",
            default=None,
            choices=KEY_ALGORITHMS,
            help="The ALGORITHM the key will sign with (default: RS256, ES256 with --dpop; RSA "
            "keys are 3072 bits).",
        )
        generate.add_argument(
            "--dpop",
            action="store_true",
            help="A key for DPOP_KEY_FILE (DPoP-bound tokens) instead of PRIVATE_KEY_FILE.",
        )
        actions.add_parser("jwks", help="Print the JWKS of the configured private_key_jwt clients.")

    def execute(self, *args: Any, **options: Any) -> str | None:
        if options.get("action") == "generate":
            # It reads no settings. The system checks would refuse it exactly when it is needed:
            # "generate > key.pem" with PRIVATE_KEY_FILE naming key.pem, emptied by the shell.
            options["skip_checks"] = True
        return super().execute(*args, **options)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if not cryptography_installed():
            raise CommandError(f"keycloak_keys needs the cryptography package: {INSTALL_HINT}")
        if action == "generate":
            dpop = options["dpop"]
            algorithm = options["algorithm"] or ("ES256" if dpop else "RS256")
            self.stdout.write(generate_private_key(algorithm), ending="")
            advice = KEEP_DPOP_KEY_PRIVATE if dpop else KEEP_IT_PRIVATE
            self.stderr.write(advice.format(algorithm=algorithm))
        else:
            self.stdout.write(json.dumps({"keys": clients.published_keys()}, indent=2))
