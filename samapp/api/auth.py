"""Token login and logout, the user's API tokens, and the current user."""

from typing import Any, cast

from django.contrib.auth import authenticate, logout
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from samapp.errors import ApplicationError
from samapp.models import ApiToken
from samapp.selectors.api_tokens import api_token_list
from samapp.services.api_tokens import api_token_create, api_token_revoke, api_tokens_revoke_all


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema_serializer(component_name="TokenCreate")
    class InputSerializer(serializers.Serializer[Any]):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        token = serializers.CharField()
        expiry = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request._request, **serializer.validated_data)
        if user is None or not user.is_active:
            raise ApplicationError("Wrong username or password.")
        # A token login is a login: last_login moves and the lockout's failure count resets.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token, secret = api_token_create(user=user)
        return Response(
            self.OutputSerializer({"id": token.pk, "token": secret, "expiry": token.expiry}).data
        )


class LogoutApi(APIView):
    """Log out what authenticated this request: its API token is revoked, or its session
    ended. Sockets opened with either close."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            api_token_revoke(token=request.auth)
            user_logged_out.send(
                sender=request.user.__class__, request=request._request, user=request.user
            )
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenOutput(serializers.ModelSerializer[ApiToken]):
    """A token's metadata; its secret is shown only once, by the login that created it."""

    current = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ("id", "created", "expiry", "last_used", "current")

    def get_current(self, token: ApiToken) -> bool:
        return bool(token.pk == self.context.get("current_id"))


def _user_id(request: Request) -> int:
    """The signed-in user's id (the views' IsAuthenticated permission has run)."""
    return cast(int, request.user.pk)


def _current_id(request: Request) -> int | None:
    return request.auth.pk if isinstance(request.auth, ApiToken) else None


class TokenListApi(APIView):
    @extend_schema(responses=ApiTokenOutput(many=True))
    def get(self, request: Request) -> Response:
        tokens = api_token_list(user_id=_user_id(request))
        context = {"current_id": _current_id(request)}
        return Response(ApiTokenOutput(tokens, many=True, context=context).data)

    @extend_schema(operation_id="auth_tokens_revoke_all", request=None, responses={200: dict})
    def delete(self, request: Request) -> Response:
        """Revoke every token of the user (this request's too)."""
        return Response({"revoked": api_tokens_revoke_all(user_id=_user_id(request))})


class TokenDetailApi(APIView):
    @extend_schema(responses=ApiTokenOutput)
    def get(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(api_token_list(user_id=_user_id(request)), pk=token_id)
        context = {"current_id": _current_id(request)}
        return Response(ApiTokenOutput(token, context=context).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(api_token_list(user_id=_user_id(request)), pk=token_id)
        api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"id": user.pk, "username": user.get_username()})
