from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from samapp.web.views import spa

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path(
        "accounts/logout/",
        auth_views.LogoutView.as_view(next_page="/accounts/login/"),
        name="logout",
    ),
    path("", spa, name="spa"),
    # Client-side routes (projects, images, review) all get the same shell.
    re_path(r"^(?P<path>(?:projects)(?:/.*)?)$", spa, name="spa-route"),
]
