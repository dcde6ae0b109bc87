"""The Keycloak Admin REST API client, sync and async."""
