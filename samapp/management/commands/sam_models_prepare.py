"""``manage.py sam_models_prepare``: make the models ready before the server says so.

With ``SAM_DEFAULT_MODEL=auto`` (the default) the first of ``SAM_AUTO_MODELS`` (MobileSAM)
is downloaded when absent, with a progress bar, resume and sha256 check; when the host
cannot be reached within ``SAM_DOWNLOAD_CONNECT_TIMEOUT`` seconds, new projects fall back to
the offline demo model sam_tiny and the Models page says so. Then the browser decoder of
every present model is exported (cached by checkpoint hash: a no-op once done), so that no
workspace waits for an export on first use.
"""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from samapp.ml.registry import MODELS, UnknownModelError, get_spec
from samapp.selectors.models import DEMO_NOTICE, model_is_present
from samapp.services import decoders
from samapp.services.model_downloads import (
    model_default_for_new_project,
    model_download_run,
    model_download_start,
)


class Command(BaseCommand):
    help = "Download the default model when the network allows, export every present decoder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-download", action="store_true", help="only export the present models"
        )
        parser.add_argument("--no-export", action="store_true", help="skip the decoder exports")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_download"]:
            self._download_default()
        model, _ = model_default_for_new_project()
        self.stdout.write(f"New projects use {model}.")
        if model == "sam_tiny":
            self.stdout.write(DEMO_NOTICE)
        if options["no_export"]:
            return
        for key in MODELS:
            if model_is_present(model_key=key):
                start = time.monotonic()
                decoders.decoder_export(model_key=key)
                self.stdout.write(f"Decoder of {key} ready ({time.monotonic() - start:.1f} s).")

    def _download_default(self) -> None:
        configured = settings.SAM_DEFAULT_MODEL
        wanted = list(settings.SAM_AUTO_MODELS) if configured == "auto" else [configured]
        for key in wanted:
            try:
                spec = get_spec(key)
            except UnknownModelError as exc:
                raise CommandError(f"SAM_DEFAULT_MODEL: {exc}") from exc
            if model_is_present(model_key=key) or spec.url is None:
                return
            start = time.monotonic()
            model_download_start(model_key=key, user=None, enqueue=False)
            # Here rather than on a worker: the progress bar is this console's, and the demo
            # project created next already gets the model.
            state = model_download_run(model_key=key, progress_file=self.stderr)
            took = time.monotonic() - start
            if state == "present":
                self.stdout.write(f"{key} downloaded ({took:.1f} s).")
                return
            self.stdout.write(
                f"{key} could not be downloaded ({took:.1f} s): falling back to the demo model."
            )
