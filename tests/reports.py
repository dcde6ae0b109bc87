"""Django's own error reports of a failure: the technical 500 page (HTML) and the text an error
e-mail or tracker gets, with DEBUG on (no frame local hidden) and off."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from django.test import RequestFactory, override_settings
from django.views.debug import ExceptionReporter

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]


def failure(action: Callable[[], Any]) -> ExcInfo | None:
    """The exception ``action`` raises (None when it returns)."""
    try:
        action()
    except Exception:
        exc_type, exc, tb = sys.exc_info()
        assert exc_type is not None and exc is not None and tb is not None
        return exc_type, exc, tb
    return None


def rendered(exc_info: ExcInfo) -> Iterator[str]:
    """The HTML and text reports of ``exc_info``, with DEBUG on and off."""
    for debug in (True, False):
        with override_settings(DEBUG=debug):
            reporter = ExceptionReporter(RequestFactory().get("/"), *exc_info)
            yield reporter.get_traceback_html()
            yield reporter.get_traceback_text()


def leaked(exc_info: ExcInfo, planted: list[str]) -> list[str]:
    """The planted values that any report of ``exc_info`` shows."""
    return sorted({value for report in rendered(exc_info) for value in planted if value in report})
