"""The server-rendered sign-up page beside the login page (see `samapp.services.accounts`).

Attempts (every POST, whatever its outcome) are limited per client IP address by
`SAM_SIGNUP_RATE`; the address is the one django-axes uses for login lockouts, so the two
agree behind a proxy. The form reveals what any sign-up form does: that a username, or an
e-mail address, is taken; in `invite` mode, also whether an address has a pending invitation
(not from which project)."""

from typing import Any

from axes.helpers import get_client_ip_address
from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.password_validation import password_validators_help_texts
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from samapp.errors import ApplicationError
from samapp.services.accounts import SignupMode, account_signup, signup_mode

# Long enough for any passphrase; hashing a longer one would only cost CPU.
MAX_PASSWORD_CHARS = 1024


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(max_length=254, label="E-mail")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("password1", "password2"):
            field = self.fields[name]
            field.validators.append(MaxLengthValidator(MAX_PASSWORD_CHARS))
            field.widget.attrs["maxlength"] = str(MAX_PASSWORD_CHARS)
        # Django's help text for the password is HTML; the template lists the rules as
        # escaped text instead, so no template needs `|safe`.
        self.fields["password1"].help_text = ""


class SignupThrottle(SimpleRateThrottle):
    """`SAM_SIGNUP_RATE` attempts per client IP address (read at each request)."""

    scope = "signup"

    def get_rate(self) -> str:
        return str(settings.SAM_SIGNUP_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str:
        ident = get_client_ip_address(request) or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow(self, request: HttpRequest) -> bool:
        """Counts this attempt; False once the rate is spent."""
        return self.allow_request(Request(request), APIView())


@sensitive_post_parameters("password1", "password2")
@csrf_protect
def signup(request: HttpRequest) -> HttpResponse:
    mode = signup_mode()
    if mode == SignupMode.CLOSED:
        return render(request, "registration/signup.html", {"closed": True}, status=403)
    if request.user.is_authenticated:
        return redirect("spa")
    status = 200
    if request.method == "POST":
        throttle = SignupThrottle()
        if not throttle.allow(request):
            wait = int(throttle.wait() or 0) + 1
            context = {
                **_context(SignupForm(), mode),
                "refusal": f"Too many sign-up attempts from here: try again in {wait} s.",
            }
            return render(request, "registration/signup.html", context, status=429)
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = account_signup(
                    username=data["username"], email=data["email"], password=data["password1"]
                )
            except ApplicationError as error:
                form.add_error(error.extra.get("field"), error.message)
                status = error.status_code
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect("spa")
        else:
            status = 400
    else:
        form = SignupForm()
    return render(request, "registration/signup.html", _context(form, mode), status=status)


def _context(form: SignupForm, mode: SignupMode) -> dict[str, Any]:
    return {
        "form": form,
        "invite_only": mode == SignupMode.INVITE,
        "password_rules": password_validators_help_texts(),
    }
