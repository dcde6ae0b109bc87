from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import pytest
from django.conf import settings
from django.core.checks import ERROR, run_checks
from django.test import override_settings

from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.exceptions import ConfigurationError, KeycloakJWTAuthError
from keycloak_jwt_auth.settings import SETTINGS_REFERENCE, build_client_config, keyfiles
from keycloak_jwt_auth.settings.defaults import DEFAULTS, DESCRIPTIONS

from .keyring import key_settings, pem

BASE = settings.KEYCLOAK_JWT_AUTH


def test_defaults_and_derived_urls() -> None:
    config = get_client_config()
    assert config.name == "default"
    assert config.algorithm == "HS256"
    assert config.audience == "https://keycloak.test/realms/demo"
    assert config.issuer == "https://keycloak.test/realms/demo"
    assert (
        config.token_endpoint == "https://keycloak.test/realms/demo/protocol/openid-connect/token"
    )
    assert config.admin_url == "https://keycloak.test/admin/realms/demo"
    assert config.assertion_lifetime == 60
    assert config.cache_alias == "default"
    assert config.verify is True
    assert config.timeout == (5.0, 10.0)
    assert config.scope is None


def test_trailing_slash_on_server_url_is_ignored() -> None:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "SERVER_URL": "https://kc.test/auth/"}):
        assert get_client_config().issuer == "https://kc.test/auth/realms/demo"


def test_named_client_overrides_top_level_keys() -> None:
    clients = {"reports": {"CLIENT_ID": "reports", "ALGORITHM": "HS512", "REALM": "other"}}
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "CLIENTS": clients}):
        reports = get_client_config("reports")
        assert (reports.client_id, reports.algorithm, reports.realm) == (
            "reports",
            "HS512",
            "other",
        )
        assert reports.server_url == "https://keycloak.test"  # inherited
        assert reports.token_endpoint.startswith("https://keycloak.test/realms/other/")
        assert get_client_config().client_id == "django-service"  # default untouched


def test_overrides_for_endpoint_audience_scope_and_timeout() -> None:
    custom = {
        **BASE,
        "TOKEN_ENDPOINT": "https://proxy.test/token",
        "AUDIENCE": "https://keycloak.test/realms/demo/protocol/openid-connect/token",
        "SCOPE": "email",
        "TIMEOUT": 0.5,
    }
    with override_settings(KEYCLOAK_JWT_AUTH=custom):
        config = get_client_config()
    assert config.token_endpoint == "https://proxy.test/token"
    assert config.audience.endswith("/token")
    assert config.scope == "email"
    assert config.timeout == 0.5


def test_timeout_none_means_default_but_zero_is_an_error() -> None:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "TIMEOUT": None}):
        assert get_client_config().timeout == (5.0, 10.0)
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "TIMEOUT": [2, 7]}):
        assert get_client_config().timeout == (2.0, 7.0)  # a tuple, as requests expects
    with (
        override_settings(KEYCLOAK_JWT_AUTH={**BASE, "TIMEOUT": 0}),
        pytest.raises(ConfigurationError, match="TIMEOUT"),
    ):
        get_client_config()


def test_settings_change_is_picked_up() -> None:
    assert get_client_config().client_id == "django-service"
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "CLIENT_ID": "changed"}):
        assert get_client_config().client_id == "changed"
    assert get_client_config().client_id == "django-service"


def test_user_dict_is_not_mutated() -> None:
    user = {**BASE, "CLIENTS": {"x": {"CLIENT_ID": "x"}}}
    snapshot = repr(user)
    with override_settings(KEYCLOAK_JWT_AUTH=user):
        get_client_config("x")
        get_client_config()
    assert repr(user) == snapshot


def test_unknown_client_names_the_configured_ones() -> None:
    with pytest.raises(ConfigurationError, match="'nope'.*configured: default"):
        get_client_config("nope")


def test_missing_settings_raise_configuration_error() -> None:
    with (
        override_settings(KEYCLOAK_JWT_AUTH={"SERVER_URL": "https://kc.test"}),
        pytest.raises(ConfigurationError) as info,
    ):
        get_client_config()
    assert "REALM, CLIENT_ID, CLIENT_SECRET" in str(info.value)
    assert isinstance(info.value, KeycloakJWTAuthError)


def test_unknown_algorithm_raises() -> None:
    with (
        override_settings(KEYCLOAK_JWT_AUTH={**BASE, "ALGORITHM": "RS256"}),
        pytest.raises(ConfigurationError, match="HS256, HS384, HS512"),
    ):
        get_client_config()


def test_repr_masks_the_secret() -> None:
    config = get_client_config()
    assert settings.TEST_SECRET not in repr(config)
    assert settings.TEST_SECRET not in str(config)
    assert "********" in repr(config)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"SERVER_URL": "keycloak.test"},
        {"SERVER_URL": "https://kc.test/realms/demo"},
        {"TOKEN_ENDPOINT": "ftp://kc.test/token"},
        {"CACHE_ALIAS": "nope"},
        {"ALGORITHM": "none"},
        {"RETRIES": -1},
        {"LOCK_TIMEOUT": True},
        {"TIMEOUT": (1, 2, 3)},
        {"CLIENT_SECRET": "short"},  # a warning: still usable
        {"SERVER_URLS": "typo"},  # a warning: still usable
        {"VERIFY": False},  # a deploy warning: still usable
        {"VERIFY": 0},
        {"VERIFY": "false"},
        {"SCOPE": ["email"]},
        {"AUDIENCE": ["a", "b"]},
        {"LOCK_TIMEOUT": float("inf")},
        {"LOCK_TIMEOUT": 10},  # a warning: still usable
        {"ASSERTION_LIFETIME": 0.5},
        {"ASSERTION_LIFETIME": 600},  # a warning: still usable
        {"CLIENT_SECRET": settings.TEST_SECRET + "\n"},
        {"SERVER_URL": "https://kc.test/a b"},
        {"SERVER_URL": "kc.test:8443"},
        {"REALM": "."},
    ],
)
def test_runtime_accepts_exactly_what_the_checks_accept(change: dict[str, Any]) -> None:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, **change}):
        messages = run_checks(include_deployment_checks=True, tags=["keycloak_jwt_auth"])
        errors = [m for m in messages if m.level >= ERROR]
        try:
            get_client_config()
        except ConfigurationError as exc:
            refused: str | None = str(exc)
        else:
            refused = None
    assert (refused is None) == (not errors), (refused, errors)
    for error in errors:  # the run-time message names each key the checks name
        key = str(error.msg).split("['")[-1].split("']")[0]
        assert refused is not None and key in refused


def test_wrong_shape_is_refused_at_run_time_too() -> None:
    with (
        override_settings(KEYCLOAK_JWT_AUTH=["not", "a", "dict"]),
        pytest.raises(ConfigurationError, match="must be a dict, not list"),
    ):
        get_client_config()


def test_a_realm_name_stays_one_path_segment() -> None:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "REALM": "my realm/x"}):
        config = get_client_config()
    assert config.token_endpoint == (
        "https://keycloak.test/realms/my%20realm%2Fx/protocol/openid-connect/token"
    )
    assert config.admin_url == "https://keycloak.test/admin/realms/my%20realm%2Fx"
    assert config.audience == "https://keycloak.test/realms/my%20realm%2Fx"


def test_the_secret_is_held_masked() -> None:
    config = get_client_config()
    assert config.client_secret == settings.TEST_SECRET
    assert repr(config.client_secret) == "'********'"


def test_build_client_config_builds_anew_and_get_client_config_keeps_one() -> None:
    assert build_client_config("default") == build_client_config("default")
    assert build_client_config("default") is not build_client_config("default")
    assert get_client_config() is get_client_config()
    with (
        override_settings(KEYCLOAK_JWT_AUTH={**BASE, "CLIENT_ID": ""}),
        pytest.raises(ConfigurationError, match="CLIENT_ID is missing or empty"),
    ):
        build_client_config("default")


def test_each_key_file_is_read_once_per_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current, upcoming = tmp_path / "key.pem", tmp_path / "next.pem"
    current.write_text(pem("ES256"))
    upcoming.write_text(pem("ES256", 1))
    opened: list[str] = []

    def counting_open(path: Path, mode: str) -> IO[bytes]:
        opened.append(Path(path).name)
        return open(path, mode)  # noqa: SIM115  (closed by the caller's with)

    monkeypatch.setattr(keyfiles, "open", counting_open, raising=False)
    files = {"PRIVATE_KEY": None, "PRIVATE_KEY_FILE": current, "NEXT_PRIVATE_KEY_FILE": upcoming}
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, **key_settings("ES256"), **files}):
        config = build_client_config("default")
    assert sorted(opened) == ["key.pem", "next.pem"]
    assert (config.private_key, config.next_private_key) == (pem("ES256"), pem("ES256", 1))


def test_every_setting_has_a_description_in_the_reference() -> None:
    assert list(DESCRIPTIONS) == list(DEFAULTS)
    assert all(text and "\n" not in text for text in DESCRIPTIONS.values())
    assert SETTINGS_REFERENCE[0] == ("SERVER_URL", "None", DESCRIPTIONS["SERVER_URL"])
    assert ("TIMEOUT", "(5.0, 10.0)", DESCRIPTIONS["TIMEOUT"]) in SETTINGS_REFERENCE
    assert [key for key, _, _ in SETTINGS_REFERENCE] == list(DEFAULTS)
