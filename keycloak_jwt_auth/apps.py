from __future__ import annotations

from django.apps import AppConfig


class KeycloakJWTAuthConfig(AppConfig):
    name = "keycloak_jwt_auth"
    verbose_name = "Keycloak client_secret_jwt service accounts"

    def ready(self) -> None:
        from . import jwks  # noqa: F401  (its checks register themselves on import)
        from .metrics import use_meter_provider
        from .settings import checks  # noqa: F401  (its checks register themselves on import)

        use_meter_provider()
