from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from samapp.web.accounts import signup
from samapp.web.views import LoginPage, spa

urlpatterns = [
    path(
        "accounts/login/",
        LoginPage.as_view(),
        name="login",
    ),
    path("accounts/signup/", signup, name="signup"),
    path(
        "accounts/logout/",
        auth_views.LogoutView.as_view(next_page="/accounts/login/"),
        name="logout",
    ),
    path("", spa, name="spa"),
    # Client-side routes (projects, images, review) all get the same shell.
    re_path(r"^(?P<path>(?:projects)(?:/.*)?)$", spa, name="spa-route"),
]
