"""Scale-out: embeddings stored and served through S3-compatible object storage (moto's server
on 127.0.0.1 stands in for MinIO/S3); nothing touches a shared filesystem."""

import socket
from unittest import mock

import pytest

from samapp.choices import EmbeddingStatus
from samapp.selectors.embeddings import int8_path
from samapp.services import embeddings as service

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3(settings, monkeypatch):
    pytest.importorskip("storages.backends.s3")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="sam-embeddings")
    settings.AWS_STORAGE_BUCKET_NAME = "sam-embeddings"
    settings.AWS_S3_ENDPOINT_URL = endpoint
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_ACCESS_KEY_ID = "testing"
    settings.AWS_SECRET_ACCESS_KEY = "testing"
    settings.AWS_S3_FILE_OVERWRITE = True
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
    }
    yield client
    server.stop()


def test_embedding_round_trip_through_s3(s3, make_image, project, client_for, media_root) -> None:
    image = make_image(project, width=24, height=16)  # the image itself goes to the bucket
    with mock.patch.object(service, "_enqueue"):
        (row,) = service.embeddings_schedule(images=[image], model_key="sam_tiny")
    service.embeddings_compute_batch(embedding_id=row.pk)
    row.refresh_from_db()
    assert row.status == EmbeddingStatus.READY, row.error
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="sam-embeddings")["Contents"]}
    assert row.storage_path in keys
    assert int8_path(row.storage_path) in keys
    assert image.file.name in keys
    assert not list(media_root.rglob("*"))  # nothing on the local disk
    response = client_for("viewer").get(f"/api/embeddings/sam_tiny/{image.sha256}/")
    assert response.status_code == 200
    body = s3.get_object(Bucket="sam-embeddings", Key=row.storage_path)["Body"].read()
    assert response.content == body
    assert len(body) == row.byte_size
