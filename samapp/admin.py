"""Django admin for project management: thin over selectors and services."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from samapp.models import (
    Annotation,
    Embedding,
    ExportFormat,
    ExportJob,
    Image,
    ImageStatus,
    Label,
    Membership,
    Project,
)
from samapp.services.datasets.exports import export_job_create
from samapp.services.embeddings import embeddings_recompute


class LabelInline(admin.TabularInline[Label, Project]):
    model = Label
    extra = 1


class MembershipInline(admin.TabularInline[Membership, Project]):
    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


@admin.action(description="Recompute embeddings of the selected projects' images")
def recompute_project_embeddings(
    modeladmin: admin.ModelAdmin[Project], request: HttpRequest, queryset: QuerySet[Project]
) -> None:
    count = 0
    for project in queryset:
        count += embeddings_recompute(images=list(project.images.all()))
    modeladmin.message_user(request, f"Queued {count} embeddings.", messages.SUCCESS)


def _export_action(export_format: str, label: str) -> Any:
    @admin.action(description=f"Start a {label} export of the selected projects")
    def start_export(
        modeladmin: admin.ModelAdmin[Project], request: HttpRequest, queryset: QuerySet[Project]
    ) -> None:
        jobs = [
            export_job_create(project=project, created_by=request.user, format=export_format)  # type: ignore[arg-type]
            for project in queryset
        ]
        modeladmin.message_user(
            request,
            f"Started {len(jobs)} {label} export(s): see Export jobs for progress and files.",
            messages.SUCCESS,
        )

    start_export.__name__ = f"start_{export_format}_export"
    return start_export


EXPORT_ACTIONS = tuple(_export_action(value, label) for value, label in ExportFormat.choices)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = (
        "name",
        "default_model_key",
        "image_count",
        "new_count",
        "in_progress_count",
        "done_count",
        "reviewed_count",
        "created_at",
    )
    search_fields = ("name", "description")
    list_filter = ("default_model_key", "created_at")
    inlines = (LabelInline, MembershipInline)
    actions = (recompute_project_embeddings, *EXPORT_ACTIONS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        counts = {
            f"n_{status}": Count("images", filter=Q(images__status=status))
            for status in ImageStatus.values
        }
        return super().get_queryset(request).annotate(n_images=Count("images"), **counts)

    @admin.display(description="images", ordering="n_images")
    def image_count(self, project: Project) -> int:
        return project.n_images  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="new", ordering="n_new")
    def new_count(self, project: Project) -> int:
        return project.n_new  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="in progress", ordering="n_in_progress")
    def in_progress_count(self, project: Project) -> int:
        return project.n_in_progress  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="done", ordering="n_done")
    def done_count(self, project: Project) -> int:
        return project.n_done  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="reviewed", ordering="n_reviewed")
    def reviewed_count(self, project: Project) -> int:
        return project.n_reviewed  # type: ignore[attr-defined,no-any-return]


@admin.action(description="Recompute embeddings")
def recompute_image_embeddings(
    modeladmin: admin.ModelAdmin[Image], request: HttpRequest, queryset: QuerySet[Image]
) -> None:
    count = embeddings_recompute(images=list(queryset.select_related("project")))
    modeladmin.message_user(request, f"Queued {count} embeddings.", messages.SUCCESS)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin[Image]):
    list_display = ("original_name", "project", "status", "assignee", "width", "height")
    list_filter = ("status", "project")
    search_fields = ("original_name", "sha256")
    raw_id_fields = ("assignee", "uploaded_by")
    actions = (recompute_image_embeddings,)


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin[Embedding]):
    list_display = ("image_sha256", "model_key", "status", "dtype", "byte_size", "attempts")
    list_filter = ("status", "model_key")
    search_fields = ("image_sha256",)
    readonly_fields = ("error",)


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin[Annotation]):
    list_display = ("id", "image", "label", "source", "review_state", "area", "version", "author")
    list_filter = ("source", "review_state", "image__project")
    raw_id_fields = ("image", "author", "label")


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin[ExportJob]):
    list_display = ("id", "project", "format", "state", "progress", "created_at")
    list_filter = ("state", "format")
