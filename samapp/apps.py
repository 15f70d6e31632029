from django.apps import AppConfig


class SamappConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "samapp"
    verbose_name = "SAM Studio"

    def ready(self) -> None:
        # Registers the Celery tasks, which services look up by name (samapp.services.enqueue).
        from samapp import signals, tasks  # noqa: F401

        signals.connect()
