"""``manage.py keycloak_doctor``: a live preflight of the configured clients against Keycloak."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from keycloak_jwt_auth.doctor.diagnose import FAIL, OK, WARN, Finding, diagnose
from keycloak_jwt_auth.settings import client_names


class Command(BaseCommand):
    help = (
        "Check clients against the live Keycloak: server and realm, a fresh token request, clock "
        "skew, token lifetime vs REFRESH_MARGIN and LOCK_TIMEOUT, Admin API roles, the client's "
        "Keycloak configuration, the shared cache. Exits 1 when any check fails."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--client", help="Name of one client in KEYCLOAK_JWT_AUTH (default: every client)."
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help='Print [{"client": ..., "findings": [{"check", "status", "message", "hint"}]}].',
        )

    def handle(self, *args: Any, client: str | None, as_json: bool, **options: Any) -> None:
        names = [client] if client else client_names()
        reports = [(name, diagnose(name)) for name in names]
        if as_json:
            self.stdout.write(json.dumps(
                [{"client": name, "findings": [f.as_dict() for f in found]}
                 for name, found in reports],
                indent=2,
            ))  # fmt: skip
        else:
            for name, found in reports:
                self._print(name, found)
        failed = sum(f.status == FAIL for _, found in reports for f in found)
        if failed:
            raise CommandError(f"{failed} check(s) failed", returncode=1)

    def _print(self, name: str, findings: list[Finding]) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"Client {name}"))
        style = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FAIL: self.style.ERROR}
        for finding in findings:
            status = style[finding.status](f"{finding.status:<4}")
            self.stdout.write(f"  {status} {finding.check:<14} {finding.message}")
            if finding.hint:
                self.stdout.write(f"       {'':<14} hint: {finding.hint}")
