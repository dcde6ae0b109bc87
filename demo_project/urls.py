from django.contrib import admin
from django.urls import include, path

from keycloak_jwt_auth.views import jwks

urlpatterns = [
    path("admin/", admin.site.urls),
    # Keycloak's "JWKS URL" of each private_key_jwt client: .well-known/jwks/<client id>.json.
    path(".well-known/jwks/<str:client>.json", jwks, name="client-jwks"),  # one client's keys
    path(".well-known/jwks.json", jwks, name="jwks"),  # the default client's keys
    path("", include("keycloak_jwt_auth.urls")),
]
