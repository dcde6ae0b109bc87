from django.urls import path

from . import views

app_name = "keycloak_jwt_auth"

urlpatterns = [
    path("", views.index, name="index"),
    path("api/users/", views.api_users, name="api-users"),
    path("api/token/", views.api_token, name="api-token"),
    path("api/async/users/", views.async_api_users, name="async-api-users"),
    path("api/async/token/", views.async_api_token, name="async-api-token"),
    path("users/create/", views.create_user, name="create-user"),
]
