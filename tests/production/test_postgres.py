"""The app's migrations and its service layer on a real PostgreSQL database."""

import uuid
from pathlib import Path

import pytest

from tests.production.conftest import manage, pg_query, production_env, run_scenario

pytestmark = pytest.mark.services


def test_migrations_apply_on_postgres_and_match_the_models(pg_migrated: str, tmp_path: Path):
    tables = {row[0] for row in pg_query(pg_migrated, "SELECT tablename FROM pg_tables")}
    for table in (
        "samapp_project",
        "samapp_membership",
        "samapp_label",
        "samapp_image",
        "samapp_embedding",
        "samapp_annotation",
        "samapp_apitoken",
    ):
        assert table in tables
    # Nothing in the models that a migration does not carry.
    manage(production_env(pg_migrated, tmp_path), "makemigrations", "--check", "--dry-run")
    # Migrating again is a no-op.
    done = manage(production_env(pg_migrated, tmp_path), "migrate", "--noinput")
    assert "No migrations to apply" in done.stdout


def test_upload_then_read_through_the_services_on_postgres(pg_migrated: str, tmp_path: Path):
    # No broker configured: tasks go to the spool directory. A user of this test's own.
    # Sharing embeddings across projects on (production leaves it off): the second project
    # below reuses the first one's.
    env = production_env(
        pg_migrated,
        tmp_path,
        SCENARIO_USER=f"owner-{uuid.uuid4().hex[:8]}",
        SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS="true",
    )
    first = run_scenario(env, "upload", "Postgres project", "3", "0")
    assert first["database_vendor"] == "postgresql"
    assert first["created"] == 3
    assert first["duplicates_second_time"] == 3  # reported, not stored twice
    assert len(first["embedding_ids"]) == 3

    rows = pg_query(
        pg_migrated,
        "SELECT sha256, width, height FROM samapp_image WHERE project_id = %s ORDER BY id",
        (first["project_id"],),
    )
    assert [row[0] for row in rows] == first["sha256"]
    assert all(row[1:] == (256, 256) for row in rows)
    statuses = pg_query(
        pg_migrated,
        "SELECT status FROM samapp_embedding WHERE id = ANY(%s)",
        (first["embedding_ids"],),
    )
    assert sorted(row[0] for row in statuses) == ["pending"] * 3
    # The embedding tasks went to the (spool) broker after the commit, one per image.
    assert len(list((tmp_path / "broker").glob("*.msg"))) == 3

    # The same images in a second project share the embeddings (one per content and model).
    second = run_scenario(env, "upload", "Second project", "3", "0")
    assert second["created"] == 3
    assert second["embedding_ids"] == first["embedding_ids"]
    assert len(list((tmp_path / "broker").glob("*.msg"))) == 3

    read = run_scenario(env, "read", str(first["project_id"]))
    assert read == {
        "visible_projects": 2,
        "image_count": 3,
        "images": 3,
        "labels": ["other", "shape"],
    }
