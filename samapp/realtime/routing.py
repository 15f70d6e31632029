from typing import Any

from django.urls import path

from samapp.realtime.consumers import ProjectConsumer

# Channels routes websockets with Django's path(), whose typing expects a view: the ASGI
# consumer goes in as Any.
consumer: Any = ProjectConsumer.as_asgi()
websocket_urlpatterns: list[Any] = [path("ws/projects/<int:project_id>/", consumer)]
