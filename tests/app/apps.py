from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.app"
    label = "omniman_tests"
