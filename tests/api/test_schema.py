"""The OpenAPI 3 schema renders cleanly and the browsable docs load."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_and_validates(tmp_path: Path) -> None:
    target = tmp_path / "schema.yml"
    # --fail-on-warn turns every drf-spectacular warning or error into a SchemaGenerationError
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/projects/",
        "/api/projects/{project_id}/",
        "/api/projects/{project_id}/members/{member_id}/",
        "/api/projects/{project_id}/labels/{label_id}/",
        "/api/projects/{project_id}/images/",
        "/api/projects/{project_id}/images/{image_id}/file/",
        "/api/projects/{project_id}/images/{image_id}/annotations/",
        "/api/projects/{project_id}/annotations/{annotation_id}/",
        "/api/auth/token/",
        "/api/auth/logout/",
        "/api/auth/tokens/",
        "/api/auth/tokens/{token_id}/",
    ):
        assert path in paths, path
    # the upload documents multipart files; annotation writes document If-Match
    upload = paths["/api/projects/{project_id}/images/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    patch = paths["/api/projects/{project_id}/annotations/{annotation_id}/"]["patch"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    # request components have distinct names (no silent "InputRequest" collisions)
    components = schema["components"]["schemas"]
    assert {"ProjectCreateRequest", "LabelCreateRequest", "MemberInviteRequest"} <= set(components)


def test_schema_endpoint_serves_openapi(api_client) -> None:
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "SAM Studio API"


def test_swagger_docs_page_loads(api_client) -> None:
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"/api/schema/" in response.content
