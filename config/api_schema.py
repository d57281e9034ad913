"""OpenAPI schema helpers: the shared problem-details component and the errors every
operation documents. Used by ``extend_schema`` in the apps' ``api.py`` modules."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from .problems import PROBLEM_CONTENT_TYPE


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField(help_text="A URI naming the kind of problem.")
    title = serializers.CharField(help_text="A short summary of the kind of problem.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong this time, for a person.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors: field (dotted path) → messages.",
    )

    class Meta:
        ref_name = "Problem"


def problems(*statuses):
    """``extend_schema(responses=...)`` entries for the given error statuses."""
    descriptions = {
        400: "The request is not valid (see `errors`).",
        401: "No valid credentials (missing, unknown or revoked token).",
        404: "No such object visible to you (objects of other workspaces are 404, never 403).",
        409: "The object's current state does not allow the action.",
        422: "The request conflicts with an earlier one (e.g. a reused idempotency key).",
        429: "Too many requests; retry after `Retry-After` seconds.",
    }
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ProblemSerializer, description=descriptions.get(status, "")
        )
        for status in statuses
    }


class ProblemAutoSchema(AutoSchema):
    """Adds the errors every authenticated endpoint can answer (401, 429 and a problem
    ``default`` for the rest: 403, 405, 406, 415, 500) so no operation documents only success."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        extra = [400] if self.method in ("POST", "PUT", "PATCH") else []
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            extra += [401, 429]
        for (status, _), response in problems(*extra).items():
            responses.setdefault(
                str(status),
                self._get_response_for_code(
                    response, str(status), [PROBLEM_CONTENT_TYPE], direction
                ),
            )
        responses.setdefault(
            "default",
            self._get_response_for_code(
                OpenApiResponse(ProblemSerializer, description="Any other error."),
                "default",
                [PROBLEM_CONTENT_TYPE],
                direction,
            ),
        )
        return responses


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``accounts.authentication.BearerTokenAuthentication`` as HTTP bearer auth."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from /settings/tokens/ (starts with `stw_`).",
        }


# Text Steward can store (config.text): no NUL. Published on every free-text string of the schema,
# so clients and fuzzers know what the API refuses with 400. (Lone surrogates are refused too, but
# a pattern cannot say so in a way OpenAPI tools read; no UTF-8 client can send one unescaped.)
STORABLE_TEXT_PATTERN = "^[^\\u0000]*$"


def publish_storable_text(result, generator, request, public):
    """drf-spectacular post-processing hook: adds ``STORABLE_TEXT_PATTERN`` to each string schema
    that has no enum, format or pattern of its own."""
    stack = [result]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "string" and not {"enum", "format", "pattern"} & set(node):
                node["pattern"] = STORABLE_TEXT_PATTERN
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return result


def close_request_bodies(result, generator, request, public):
    """drf-spectacular post-processing hook: request bodies accept only the fields they name
    (``config.bodies.BodySerializer`` refuses others), so their schemas say
    ``additionalProperties: false``."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            content = (operation.get("requestBody") or {}).get("content", {})
            for media in content.values():
                schema = media.get("schema", {})
                ref = schema.get("$ref", "")
                if ref:
                    schema = components[ref.rsplit("/", 1)[-1]]
                for variant in schema.get("oneOf", [schema]):
                    if variant.get("type") == "object":
                        variant["additionalProperties"] = False
    return result
