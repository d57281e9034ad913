from django.urls import path

from . import views

urlpatterns = [
    path("start/", views.landing, name="landing"),
    path("settings/tokens/", views.api_tokens, name="api-tokens"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_api_token, name="api-token-revoke"),
]
