from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from samapp.api.permissions import ApiDocsAccess

docs_access = {"permission_classes": [ApiDocsAccess]}

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("samapp.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(**docs_access), name="schema"),
    path(
        "api/docs/",
        # Its init script is a separate request: the page has no inline script.
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="api/swagger_ui.html", **docs_access
        ),
        name="api-docs",
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("samapp.web.urls")),
]
