"""Settings: defaults, the rules that check them (with their check IDs), one client's config.

The rest of the package imports settings from here, never from the modules inside.
"""

from keycloak_jwt_auth.settings.config import (
    CLIENT_SETTINGS,
    DEFAULT_CLIENT,
    KEY_METHOD,
    SECRET_METHOD,
    SETTING_NAME,
    ClientConfig,
    Timeout,
    client_names,
    demo_views_allow_anonymous,
    demo_write_client,
    get_client_config,
    one_request_seconds,
)

__all__ = [
    "CLIENT_SETTINGS",
    "DEFAULT_CLIENT",
    "KEY_METHOD",
    "SECRET_METHOD",
    "SETTING_NAME",
    "ClientConfig",
    "Timeout",
    "client_names",
    "demo_views_allow_anonymous",
    "demo_write_client",
    "get_client_config",
    "one_request_seconds",
]
