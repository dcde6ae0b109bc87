"""The demo's Celery tasks: each call uses the service-account token of the process it runs in
(a forked prefork child shares the token with every other process through the cache)."""

from celery import shared_task

from keycloak_jwt_auth import KeycloakAdmin


@shared_task
def count_users() -> int:
    """The realm's number of users, read through the Admin API."""
    return KeycloakAdmin().users_count()
