from django.apps import AppConfig


class SamappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "samapp"
    verbose_name = "SAM Studio"

    def ready(self) -> None:
        from samapp import signals

        signals.connect()
