from django.db import migrations, models
from django.db.models import Max


def seq_from_log(apps, schema_editor):
    Project = apps.get_model("samapp", "Project")
    AnnotationEvent = apps.get_model("samapp", "AnnotationEvent")
    last = AnnotationEvent.objects.values("project_id").annotate(seq=Max("seq"))
    for row in last.iterator():
        Project.objects.filter(pk=row["project_id"]).update(annotation_seq=row["seq"])


class Migration(migrations.Migration):
    dependencies = [("samapp", "0010_project_archive")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="annotation_seq",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.RunPython(seq_from_log, migrations.RunPython.noop),
    ]
