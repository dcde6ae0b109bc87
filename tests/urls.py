from django.urls import include, path

from keycloak_jwt_auth.views import jwks

urlpatterns = [
    path(".well-known/jwks.json", jwks, name="jwks"),
    path("", include("keycloak_jwt_auth.urls")),
]
