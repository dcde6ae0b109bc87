"""Each deprecation of the installed Django fails the tests, whichever Django the matrix runs."""

from __future__ import annotations

import warnings

import django.utils.deprecation
import pytest

REMOVED_IN = [
    getattr(django.utils.deprecation, name)
    for name in sorted(vars(django.utils.deprecation))
    if name.startswith("RemovedInDjango") and name.endswith("Warning")
]


def test_this_django_has_deprecations_to_catch() -> None:
    assert REMOVED_IN


@pytest.mark.parametrize("category", REMOVED_IN, ids=lambda category: category.__name__)
def test_a_django_deprecation_is_an_error(category: type[Warning]) -> None:
    with pytest.raises(category):
        warnings.warn("removed in the next Django", category, stacklevel=1)


def test_each_is_named_in_the_filters(pytestconfig: pytest.Config) -> None:
    """By name, so that a later filter ignoring some library's DeprecationWarning cannot hide
    Django's own."""
    filters = pytestconfig.getini("filterwarnings")
    for category in REMOVED_IN:
        assert f"error::django.utils.deprecation.{category.__name__}" in filters
