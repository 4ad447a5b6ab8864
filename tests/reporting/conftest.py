"""Fixtures of the reporting tests (defined in reporting_helpers)."""

from reporting_helpers import allure_cli, chromium, fake_suite

__all__ = ["allure_cli", "chromium", "fake_suite"]
