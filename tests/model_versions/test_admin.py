"""Admin: the evaluation table and plot and the loss plot of a model version."""

import pytest

from samapp.models import ModelVersion, TrainingJob

pytestmark = pytest.mark.django_db


def test_model_version_page_shows_the_evaluation_table_and_loss_plot(project, client) -> None:
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    job = TrainingJob.objects.create(
        project=project, base_model_key="sam_tiny", loss_curve=[1.0, 0.5, 0.25], state="done"
    )
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        model_key=f"sam_tiny-p{project.pk}v1",
        base_model_key="sam_tiny",
        parent_model_key="sam_tiny",
        state="active",
        training_job=job,
        metrics={"miou_1": 0.81, "miou_3": 0.9, "noc_85": 2.5},
        baseline_metrics={"miou_1": 0.62, "miou_3": 0.8, "noc_85": 4.0},
    )
    page = client.get(f"/admin/samapp/modelversion/{version.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "mIoU after 1 click" in html
    assert "0.62" in html
    assert "0.81" in html
    assert "<svg" in html
    assert "<polyline" in html
    assert "(step 3)" in html
    # the mIoU plot: before (0.62 at 1 click, 0.8 at 3) and after (0.81, 0.9); 5 clicks
    # is missing from both, so each polyline has two points
    assert 'points="24.0,81.8 180.0,54.4"' in html
    assert 'points="24.0,52.9 180.0,39.2"' in html
    assert "Held-out mIoU after 1, 3, 5 clicks" in html
    listing = client.get("/admin/samapp/modelversion/").content.decode()
    assert version.model_key in listing
    assert "0.81" in listing
    job_page = client.get(f"/admin/samapp/trainingjob/{job.pk}/change/")
    assert job_page.status_code == 200
    assert "<polyline" in job_page.content.decode()
