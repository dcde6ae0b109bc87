"""Settings: defaults, the rules that check them (with their check IDs), one client's config.

The rest of the package imports settings from here, never from the modules inside:
``defaults`` (names, defaults, what each key means), ``problems`` (every check ID in one table),
``rules`` and ``credential_rules`` (the one validation), ``keyfiles`` (reading private keys),
``reading`` (the Django setting merged over the defaults), ``config`` (``ClientConfig``) and
``checks`` (the Django system checks).
"""

from keycloak_jwt_auth.settings.config import ClientConfig, build_client_config
from keycloak_jwt_auth.settings.defaults import (
    CLIENT_SETTINGS,
    DEFAULT_CLIENT,
    FEDERATED_METHOD,
    KEY_METHOD,
    SECRET_METHOD,
    SETTING_NAME,
    SETTINGS_REFERENCE,
    Timeout,
    one_request_seconds,
)
from keycloak_jwt_auth.settings.problems import CHECKS_REFERENCE
from keycloak_jwt_auth.settings.reading import (
    client_names,
    demo_views_allow_anonymous,
    demo_write_client,
)

__all__ = [
    "CHECKS_REFERENCE",
    "CLIENT_SETTINGS",
    "DEFAULT_CLIENT",
    "FEDERATED_METHOD",
    "KEY_METHOD",
    "SECRET_METHOD",
    "SETTINGS_REFERENCE",
    "SETTING_NAME",
    "ClientConfig",
    "Timeout",
    "build_client_config",
    "client_names",
    "demo_views_allow_anonymous",
    "demo_write_client",
    "one_request_seconds",
]
