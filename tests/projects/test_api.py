"""Projects, members, labels and auth over REST: behaviour beyond the permission matrix."""

from typing import Any

import pytest

from samapp.models import Label, Membership, Project


def test_token_login_and_me(api_client, users) -> None:
    response = api_client.post(
        "/api/auth/token/", {"username": "viewer", "password": "pw-viewer"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api_client.get("/api/me/")
    assert me.json() == {"id": users["viewer"].id, "username": "viewer"}
    # a second login gets a token of its own; the first stays valid until it expires
    again = api_client.post(
        "/api/auth/token/", {"username": "viewer", "password": "pw-viewer"}, format="json"
    )
    assert again.json()["token"] != token
    assert api_client.get("/api/me/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"username": "viewer", "password": "wrong"}, {"username": "nobody", "password": "x"}, {}],
)
def test_token_login_refuses_bad_credentials(api_client, users, body) -> None:
    response = api_client.post("/api/auth/token/", body, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


def test_inactive_user_gets_no_token(api_client, users) -> None:
    users["viewer"].is_active = False
    users["viewer"].save()
    response = api_client.post(
        "/api/auth/token/", {"username": "viewer", "password": "pw-viewer"}, format="json"
    )
    assert response.status_code == 400


def test_session_login_works_too(client, users, project) -> None:
    client.force_login(users["viewer"])
    assert client.get(f"/api/projects/{project.id}/").status_code == 200


def test_create_project_makes_the_creator_owner(client_for, users) -> None:
    client = client_for("outsider")
    response = client.post(
        "/api/projects/",
        {
            "name": "  Cells  ",
            "description": "microscopy",
            "labels": [{"name": "nucleus", "color": "#00FF00"}, {"name": "membrane"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Cells"
    assert body["role"] == "owner"
    assert [(label["name"], label["color"]) for label in body["labels"]] == [
        ("nucleus", "#00ff00"),
        ("membrane", "#ff0000"),
    ]
    assert body["default_model_key"] == "sam_tiny"
    membership = Membership.objects.get(project_id=body["id"])
    assert (membership.user, membership.role) == (users["outsider"], "owner")


def test_create_project_in_one_request_with_labels_model_and_review_policy(client_for) -> None:
    client = client_for("outsider")
    response = client.post(
        "/api/projects/",
        {
            "name": "Cells",
            "labels": [{"name": "nucleus", "color": "#112233"}],
            "default_model_key": "sam_tiny",
            "review_policy": "accepted",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["review_policy"], body["default_model_key"]) == ("accepted", "sam_tiny")
    assert [label["name"] for label in body["labels"]] == ["nucleus"]
    # the default is to review annotators' work; a manager may switch it
    default = client.post("/api/projects/", {"name": "Default"}, format="json").json()
    assert default["review_policy"] == "proposed"
    switched = client.patch(
        f"/api/projects/{default['id']}/", {"review_policy": "accepted"}, format="json"
    )
    assert switched.json()["review_policy"] == "accepted"
    refused = client.post("/api/projects/", {"name": "x", "review_policy": "never"}, format="json")
    assert refused.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {},
        {"name": "x", "labels": [{"name": "a"}, {"name": "a"}]},
        {"name": "x", "labels": [{"name": "a", "color": "red"}]},
        {"name": "x" * 201},
    ],
    ids=["empty", "blank", "missing", "duplicate-labels", "bad-color", "too-long"],
)
def test_create_project_validation(client_for, body) -> None:
    response = client_for("viewer").post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Project.objects.filter(name="x").exists()


def test_project_list_shows_only_my_projects_with_my_role(
    client_for, project, other_project
) -> None:
    body = client_for("reviewer").get("/api/projects/").json()
    assert body["count"] == 1
    assert [(p["id"], p["role"]) for p in body["results"]] == [(project.id, "reviewer")]
    outsider = client_for("outsider").get("/api/projects/").json()
    assert [p["id"] for p in outsider["results"]] == [other_project.id]


def test_project_list_is_paginated_newest_first(client_for, users) -> None:
    from samapp.services.projects import project_create

    made = [project_create(name=f"p{i}", created_by=users["viewer"]) for i in range(3)]
    client = client_for("viewer")
    first = client.get("/api/projects/", {"page_size": 2}).json()
    assert first["count"] == 3
    assert [p["id"] for p in first["results"]] == [made[2].id, made[1].id]
    second = client.get("/api/projects/", {"page_size": 2, "page": 2}).json()
    assert [p["id"] for p in second["results"]] == [made[0].id]


def test_project_detail_has_status_counts(client_for, project, make_image) -> None:
    make_image(project)
    make_image(project, status="done")
    make_image(project, status="done")
    body = client_for("viewer").get(f"/api/projects/{project.id}/").json()
    assert body["status_counts"] == {"new": 1, "done": 2}
    assert body["role"] == "viewer"
    assert [label["name"] for label in body["labels"]] == ["cat", "dog"]


def test_project_update_merges_settings(client_for, project) -> None:
    url = f"/api/projects/{project.id}/"
    client = client_for("manager")
    response = client.patch(
        url, {"name": "Renamed", "settings": {"export_polygon_tolerance": 2.5}}, format="json"
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert project.name == "Renamed"
    assert project.settings["export_polygon_tolerance"] == 2.5
    assert project.settings["auto_points_per_side"] == 32  # untouched keys kept
    assert client.patch(url, {"name": ""}, format="json").status_code == 400
    assert client.patch(url, {"settings": [1, 2]}, format="json").status_code == 400


def test_nonexistent_and_foreign_projects_look_the_same(client_for, project, other_project) -> None:
    client = client_for("owner")
    missing = client.get("/api/projects/999999/")
    foreign = client.get(f"/api/projects/{other_project.id}/")
    assert missing.status_code == foreign.status_code == 404
    assert missing.json() == foreign.json()
    for suffix in ("members/", "labels/", "images/", "annotations/"):
        assert client.get(f"/api/projects/{other_project.id}/{suffix}").status_code == 404


def test_owner_deletes_project_and_everything_in_it(
    client_for,
    project,
    other_project,
    make_image,
    make_annotation,
    media_root,
    django_capture_on_commit_callbacks,
) -> None:
    from samapp.models import Annotation, Image
    from tests.conftest import media_files

    make_annotation(make_image(project))
    make_image(project)
    kept = make_image(other_project)
    assert len(media_files(media_root)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("owner").delete(f"/api/projects/{project.id}/")
    assert response.status_code == 204
    assert not Project.objects.filter(pk=project.id).exists()
    assert not Membership.objects.filter(project_id=project.id).exists()
    assert not Label.objects.filter(project_id=project.id).exists()
    assert list(Image.objects.all()) == [kept]
    assert not Annotation.objects.exists()
    # the deleted project's files are gone from storage; the other project's stay
    assert [p.name for p in media_files(media_root)] == [kept.file.name.rsplit("/", 1)[1]]


# ---------------------------------------------------------------- members


def members_url(project: Any) -> str:
    return f"/api/projects/{project.id}/members/"


def membership(project: Any, user: Any) -> Membership:
    return Membership.objects.get(project=project, user=user)


def test_member_list(client_for, project) -> None:
    body = client_for("viewer").get(members_url(project)).json()
    assert {(m["username"], m["role"]) for m in body["results"]} == {
        ("owner", "owner"),
        ("manager", "manager"),
        ("annotator", "annotator"),
        ("reviewer", "reviewer"),
        ("viewer", "viewer"),
        ("extra", "annotator"),
    }


def test_invite_errors(client_for, project, users) -> None:
    from samapp.models import Invitation

    client = client_for("manager")
    for body in (
        {"username": "outsider", "role": "god"},
        {"username": "   ", "role": "viewer"},
        {"username": "x" * 255, "role": "viewer"},
        {"role": "viewer"},
    ):
        response = client.post(members_url(project), body, format="json")
        assert response.status_code == 400, body
        assert response.json()["detail"]
    assert not Invitation.objects.exists()
    assert not Membership.objects.filter(user=users["outsider"], project=project).exists()


def test_invited_member_gains_access_on_accepting_and_loses_it_when_removed(
    client_for, project, users
) -> None:
    outsider = client_for("outsider")
    url = f"/api/projects/{project.id}/"
    assert outsider.get(url).status_code == 404
    invited = client_for("manager").post(
        members_url(project), {"username": "outsider", "role": "viewer"}, format="json"
    )
    assert invited.status_code == 202
    assert outsider.get(url).status_code == 404  # not a member before accepting
    (invitation,) = outsider.get("/api/invitations/").json()["results"]
    assert invitation["project"] == {"id": project.id, "name": project.name}
    assert (invitation["role"], invitation["invited_by"]) == ("viewer", "manager")
    joined = outsider.post(f"/api/invitations/{invitation['id']}/")
    assert joined.status_code == 200
    assert joined.json() == {"project": project.id, "role": "viewer"}
    assert outsider.get(url).json()["role"] == "viewer"
    assert outsider.get("/api/invitations/").json()["count"] == 0
    member_id = membership(project, users["outsider"]).id
    removed = client_for("manager").delete(f"{members_url(project)}{member_id}/")
    assert removed.status_code == 204
    assert outsider.get(url).status_code == 404


def test_only_owners_touch_owner_memberships(client_for, project, users) -> None:
    owner_membership = membership(project, users["owner"])
    manager = client_for("manager")
    url = f"{members_url(project)}{owner_membership.id}/"
    # a manager can neither demote nor remove an owner, nor promote themself
    assert manager.patch(url, {"role": "viewer"}, format="json").status_code == 403
    assert manager.delete(url).status_code == 403
    own = f"{members_url(project)}{membership(project, users['manager']).id}/"
    assert manager.patch(own, {"role": "owner"}, format="json").status_code == 403
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"
    assert membership(project, users["manager"]).role == "manager"


def test_a_project_keeps_at_least_one_owner(client_for, project, users) -> None:
    owner = client_for("owner")
    only_owner = f"{members_url(project)}{membership(project, users['owner']).id}/"
    demote = owner.patch(only_owner, {"role": "manager"}, format="json")
    assert demote.status_code == 400
    assert "owner" in demote.json()["detail"]
    assert owner.delete(only_owner).status_code == 400
    # with a second owner, the first may step down
    second = f"{members_url(project)}{membership(project, users['manager']).id}/"
    assert owner.patch(second, {"role": "owner"}, format="json").status_code == 200
    assert owner.patch(only_owner, {"role": "manager"}, format="json").status_code == 200
    assert membership(project, users["owner"]).role == "manager"


# ---------------------------------------------------------------- labels


def labels_url(project: Any) -> str:
    return f"/api/projects/{project.id}/labels/"


def test_label_crud_and_rules(client_for, project, other_project) -> None:
    client = client_for("manager")
    created = client.post(labels_url(project), {"name": "bird", "color": "#ABCDEF"}, format="json")
    assert created.status_code == 201
    assert created.json()["color"] == "#abcdef"
    label_url = f"{labels_url(project)}{created.json()['id']}/"
    assert client.post(labels_url(project), {"name": "bird"}, format="json").status_code == 400
    assert (
        client.post(labels_url(project), {"name": "x", "color": "blue"}, format="json").status_code
        == 400
    )
    assert client.post(labels_url(project), {"name": "  "}, format="json").status_code == 400
    # the same name in another project is fine: names are unique per project
    assert other_project.labels.filter(name="cat").exists()
    assert client.patch(label_url, {"name": "cat"}, format="json").status_code == 400
    renamed = client.patch(label_url, {"name": "sparrow", "color": "#000000"}, format="json")
    assert (renamed.json()["name"], renamed.json()["color"]) == ("sparrow", "#000000")
    assert client.get(labels_url(project)).json()["count"] == 3
    assert client.delete(label_url).status_code == 204
    assert client.get(label_url).status_code == 404


def test_deleting_a_label_can_keep_its_annotations_unlabelled(
    client_for, project, make_image, make_annotation
) -> None:
    cat = project.labels.get(name="cat")
    annotation = make_annotation(make_image(project), label=cat)
    url = f"{labels_url(project)}{cat.id}/?annotations=unlabel"
    assert client_for("manager").delete(url).status_code == 204
    annotation.refresh_from_db()
    assert (annotation.label, annotation.version) == (None, 2)


@pytest.mark.parametrize("key", ["no_such_model", "sam_tiny-p999v1"])
def test_project_model_must_be_a_registry_model(client_for, project, key):
    client = client_for("owner")
    response = client.patch(
        f"/api/projects/{project.id}/", {"default_model_key": key}, format="json"
    )
    assert response.status_code == 400
    assert "Unknown model" in response.json()["detail"]
    project.refresh_from_db()
    assert project.default_model_key == "sam_tiny"
    created = client.post("/api/projects/", {"name": "x", "default_model_key": key}, format="json")
    assert created.status_code == 400
