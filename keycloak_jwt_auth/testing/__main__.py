"""``python -m keycloak_jwt_auth.testing``: a ``FakeKeycloak`` for local development. It prints
the ``KEYCLOAK_JWT_AUTH`` that points a project at it and serves until interrupted."""

from __future__ import annotations

import argparse
import pprint
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from keycloak_jwt_auth.testing.realm import FakeClient
from keycloak_jwt_auth.testing.server import FakeKeycloak


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keycloak_jwt_auth.testing",
        description="Serve a FakeKeycloak on 127.0.0.1 and print the settings that use it.",
    )
    parser.add_argument("--port", type=int, default=0, help="Port to listen on (default: free).")
    parser.add_argument("--realm", default="demo", help="Realm name (default: %(default)s).")
    parser.add_argument(
        "--client",
        action="append",
        dest="clients",
        metavar="ID",
        help="A client_secret_jwt client (repeatable; the first is the default client, the "
        "others named clients; default: django-service).",
    )
    parser.add_argument(
        "--secret",
        action="append",
        dest="secrets",
        metavar="S",
        help="The secret of the --client in the same position (default: a random one).",
    )
    return parser.parse_args(argv)


def fake_from(args: argparse.Namespace) -> FakeKeycloak:
    client_ids = args.clients or ["django-service"]
    given = args.secrets or []
    if len(given) > len(client_ids):
        raise SystemExit("error: more --secret than --client options")
    clients = [
        FakeClient(client_id, secret=given[i] if i < len(given) else secrets.token_urlsafe(32))
        for i, client_id in enumerate(client_ids)
    ]
    return FakeKeycloak(realm=args.realm, clients=clients, port=args.port)


def project_settings(fake: FakeKeycloak) -> dict[str, Any]:
    """The default client's settings, the others under ``CLIENTS`` by their client id (with
    only what differs from the default client)."""
    default, *named = fake.clients
    own = fake.settings(default)
    if named:
        own["CLIENTS"] = {
            client_id: {"CLIENT_ID": client_id, "CLIENT_SECRET": fake.clients[client_id].secret}
            for client_id in named
        }
    return own


def main(argv: Sequence[str] | None = None) -> int:
    fake = fake_from(parse_args(argv))
    with fake:
        print("KEYCLOAK_JWT_AUTH = " + pprint.pformat(project_settings(fake), sort_dicts=False))
        print(f"FakeKeycloak serving realm {fake.realm!r} at {fake.url}; Ctrl-C stops it.")
        sys.stdout.flush()
        interrupted = threading.Event()
        # Set here, not inherited: a parent that ignores SIGINT would make Ctrl-C do nothing.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: interrupted.set())
        interrupted.wait()
        print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
