from django.urls import include, path

urlpatterns = [path("", include("keycloak_jwt_auth.urls"))]
