from django.contrib import admin
from django.urls import include, path

from keycloak_jwt_auth.views import jwks

urlpatterns = [
    path("admin/", admin.site.urls),
    # Keycloak's "JWKS URL" for the private_key_jwt clients.
    path(".well-known/jwks.json", jwks, name="jwks"),
    path("", include("keycloak_jwt_auth.urls")),
]
