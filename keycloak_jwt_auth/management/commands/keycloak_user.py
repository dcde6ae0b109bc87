"""``manage.py keycloak_user``: the Admin API writes from the command line.

    keycloak_user create USERNAME [--email E] [--first-name F] [--last-name L] [--password]
    keycloak_user set-password USERNAME [--temporary]
    keycloak_user add-to-group USERNAME GROUP_PATH
    keycloak_user grant-role USERNAME ROLE [ROLE ...]
    keycloak_user grant-client-role USERNAME CLIENT_ID ROLE [ROLE ...]
    keycloak_user add-to-org USERNAME ORGANIZATION
    keycloak_user logout USERNAME
    keycloak_user send-actions USERNAME ACTION [ACTION ...] [--lifespan SECONDS]
    keycloak_user show USERNAME
    keycloak_user delete USERNAME

A password is read from a prompt (twice), or from the first line of standard input when that is
not a terminal; never from the command line, where ``ps`` and the shell's history would see it.
"""

from __future__ import annotations

import getpass
import sys
from argparse import ArgumentParser
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError

from keycloak_jwt_auth.admin import KeycloakAdmin, UserRepresentation
from keycloak_jwt_auth.exceptions import KeycloakJWTAuthError
from keycloak_jwt_auth.management.commands.fetch_token import dumps, one_line
from keycloak_jwt_auth.masked import Masked
from keycloak_jwt_auth.settings import DEFAULT_CLIENT


class Command(BaseCommand):
    help = (
        "Create a Keycloak user, set a password, add to a group or an organization, grant realm "
        "or client roles, end its sessions, e-mail it required actions, show or delete it, "
        "through the Admin API as a service account (it needs manage-users; organizations "
        "need manage-organizations, client roles view-clients)."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: ArgumentParser) -> None:
        common = ArgumentParser(add_help=False)
        common.add_argument(
            "--client",
            default=DEFAULT_CLIENT,
            help="Name of the client in KEYCLOAK_JWT_AUTH (default: %(default)s).",
        )
        common.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        def action(name: str, help: str) -> ArgumentParser:
            sub: ArgumentParser = actions.add_parser(name, help=help, parents=[common])
            sub.add_argument("username", help="The user's username (an exact match).")
            return sub

        create = action("create", "Create an enabled user (--disabled: a disabled one).")
        create.add_argument("--email", help="The user's email address.")
        create.add_argument("--first-name", help="The user's first name.")
        create.add_argument("--last-name", help="The user's last name.")
        create.add_argument("--disabled", action="store_true", help="Create the user disabled.")
        create.add_argument(
            "--password",
            action="store_true",
            help="Also set a password, read from a prompt or from stdin (never from argv).",
        )
        create.add_argument(
            "--temporary", action="store_true", help="The password must be changed at login."
        )
        password = action("set-password", "Set the password (from a prompt or stdin).")
        password.add_argument(
            "--temporary", action="store_true", help="The password must be changed at login."
        )
        group = action("add-to-group", "Add the user to a group.")
        group.add_argument("group", help="The group's path, e.g. /staff/editors, or its name.")
        role = action("grant-role", "Grant realm roles to the user.")
        role.add_argument("roles", nargs="+", metavar="ROLE", help="A realm role's name.")
        client_role = action("grant-client-role", "Grant a client's roles to the user.")
        client_role.add_argument("client_id", help="The client's clientId, e.g. my-app.")
        client_role.add_argument("roles", nargs="+", metavar="ROLE", help="A client role's name.")
        org = action("add-to-org", "Add the user to an organization.")
        org.add_argument("organization", help="The organization's alias or name.")
        action("logout", "End every session of the user.")
        actions_ = action("send-actions", "E-mail the user a link to do required actions.")
        actions_.add_argument(
            "actions", nargs="+", metavar="ACTION", help="e.g. VERIFY_EMAIL UPDATE_PASSWORD."
        )
        actions_.add_argument(
            "--lifespan", type=int, help="Seconds the link stays valid (Keycloak: 12 hours)."
        )
        action("show", "Show the user, its groups and realm roles.")
        action("delete", "Delete the user.")

    def handle(self, *args: Any, action: str, client: str, as_json: bool, **options: Any) -> None:
        self.stdin: IO[str] = options.get("stdin") or sys.stdin
        try:
            admin = KeycloakAdmin(client)
            report = getattr(self, action.replace("-", "_"))(admin, **options)
        except (KeycloakJWTAuthError, ValueError, TypeError) as exc:
            raise CommandError(one_line(exc)) from exc
        self.stdout.write(dumps({"action": action, **report}) if as_json else report["message"])

    # --- the actions: each returns what it did, with a message for people --------------------

    def create(self, admin: KeycloakAdmin, *, username: str, **options: Any) -> dict[str, Any]:
        password = self.read_password() if options["password"] else None  # before any write
        user_id = admin.create_user(new_user(username, **options))
        if password is not None:
            try:
                admin.set_password(user_id, password, temporary=options["temporary"])
            except KeycloakJWTAuthError as exc:
                admin.delete_user(user_id)  # no user is left behind without its password
                raise CommandError(f"The user was not kept: {one_line(exc)}") from exc
        with_password = " with a password" if password is not None else ""
        return {
            "id": user_id,
            "username": username,
            "message": f"Created user {username!r}{with_password} (id {user_id}).",
        }

    def set_password(
        self, admin: KeycloakAdmin, *, username: str, temporary: bool, **options: Any
    ) -> dict[str, Any]:
        user = existing_user(admin, username)
        admin.set_password(user["id"], self.read_password(), temporary=temporary)
        kind = "a temporary password" if temporary else "the password"
        message = f"Set {kind} of {username!r}."
        return {"id": user["id"], "username": username, "temporary": temporary, "message": message}

    def add_to_group(
        self, admin: KeycloakAdmin, *, username: str, group: str, **options: Any
    ) -> dict[str, Any]:
        user = existing_user(admin, username)
        found = admin.group_by_path(group)
        admin.add_user_to_group(user["id"], found["id"])
        message = f"Added {username!r} to group {found['path']!r}."
        return {"id": user["id"], "username": username, "group": found["path"], "message": message}

    def grant_role(
        self, admin: KeycloakAdmin, *, username: str, roles: list[str], **options: Any
    ) -> dict[str, Any]:
        user = existing_user(admin, username)
        admin.assign_realm_roles(user["id"], roles)
        message = f"Granted realm roles {', '.join(roles)} to {username!r}."
        return {"id": user["id"], "username": username, "roles": roles, "message": message}

    def grant_client_role(
        self, admin: KeycloakAdmin, *, username: str, client_id: str, roles: list[str], **_: Any
    ) -> dict[str, Any]:
        user = existing_user(admin, username)
        admin.assign_client_roles(user["id"], client_id, roles)
        message = f"Granted roles {', '.join(roles)} of client {client_id!r} to {username!r}."
        return {"id": user["id"], "username": username, "client_id": client_id, "roles": roles,
                "message": message}  # fmt: skip

    def add_to_org(
        self, admin: KeycloakAdmin, *, username: str, organization: str, **_: Any
    ) -> dict[str, Any]:
        user = existing_user(admin, username)
        found = [
            org
            for org in admin.organizations(search=organization)
            if organization in (org.get("alias"), org.get("name"))
        ]
        if not found:
            raise CommandError(f"No organization {organization!r} in realm {admin.config.realm!r}.")
        admin.add_organization_member(found[0]["id"], user["id"])
        alias = found[0].get("alias", organization)
        message = f"Added {username!r} to organization {alias!r}."
        return {"id": user["id"], "username": username, "organization": alias, "message": message}

    def logout(self, admin: KeycloakAdmin, *, username: str, **_: Any) -> dict[str, Any]:
        user = existing_user(admin, username)
        ended = len(admin.user_sessions(user["id"]))
        admin.logout_user(user["id"])
        message = f"Ended the sessions of {username!r} ({ended} active)."
        return {"id": user["id"], "username": username, "sessions": ended, "message": message}

    def send_actions(
        self, admin: KeycloakAdmin, *, username: str, actions: list[str], lifespan: int | None,
        **_: Any,
    ) -> dict[str, Any]:  # fmt: skip
        user = existing_user(admin, username)
        admin.execute_actions_email(user["id"], actions, lifespan=lifespan)
        message = f"E-mailed {username!r} a link to: {', '.join(actions)}."
        return {"id": user["id"], "username": username, "actions": actions, "message": message}

    def show(self, admin: KeycloakAdmin, *, username: str, **options: Any) -> dict[str, Any]:
        user = existing_user(admin, username)
        shown = {
            "id": user["id"],
            "username": user.get("username"),
            "email": user.get("email"),
            "enabled": user.get("enabled"),
            "groups": sorted(g.get("path", "") for g in admin.user_groups(user["id"])),
            "realm_roles": sorted(r.get("name", "") for r in admin.user_realm_roles(user["id"])),
        }
        lines = [f"{key}: {value}" for key, value in shown.items()]
        return {**shown, "message": "\n".join(lines)}

    def delete(self, admin: KeycloakAdmin, *, username: str, **options: Any) -> dict[str, Any]:
        user = existing_user(admin, username)
        admin.delete_user(user["id"])
        return {"id": user["id"], "username": username, "message": f"Deleted user {username!r}."}

    def read_password(self) -> Masked:
        """From a prompt, twice; or the first line of stdin when it is not a terminal."""
        if self.stdin.isatty():
            password = Masked(getpass.getpass("Password: "))
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        else:
            password = Masked(self.stdin.readline().rstrip("\r\n"))
        if not password:
            raise CommandError("No password given: type one, or pipe it on stdin.")
        return password


def new_user(
    username: str,
    *,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    disabled: bool,
    **options: Any,
) -> UserRepresentation:
    """An enabled user unless ``disabled`` (Keycloak creates users disabled when not told)."""
    user: UserRepresentation = {"username": username, "enabled": not disabled}
    for key, value in (("email", email), ("firstName", first_name), ("lastName", last_name)):
        if value:
            user[key] = value  # type: ignore[literal-required]
    return user


def existing_user(admin: KeycloakAdmin, username: str) -> UserRepresentation:
    user = admin.find_user(username=username)
    if user is None:
        raise CommandError(f"No user {username!r} in realm {admin.config.realm!r}.")
    return user
