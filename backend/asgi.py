"""ASGI entry point: HTTP through Django; websockets through Channels, auth and origin checked."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.local")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from samapp.realtime.auth import TokenAuthMiddleware  # noqa: E402
from samapp.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Startup leaves ~110k long-lived objects (Django, DRF, cv2, numpy); a full collection over
# them pauses the event loop, and every socket's broadcasts with it. Frozen, later
# collections scan only the objects that serving creates.
gc.collect()
gc.freeze()
