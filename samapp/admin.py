"""Django admin for project management: thin over selectors and services."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from knox.models import AuthToken as KnoxAuthToken

from samapp.choices import ExportFormat, ImageStatus
from samapp.models import (
    Annotation,
    ApiToken,
    Embedding,
    ExportJob,
    Image,
    Invitation,
    Label,
    Membership,
    ModelVersion,
    Project,
    TrainingJob,
)
from samapp.selectors.embeddings import embedding_status_map
from samapp.services.api_tokens import api_token_revoke
from samapp.services.datasets.exports import export_job_create
from samapp.services.embeddings import embeddings_recompute
from samapp.services.model_versions import model_version_activate, model_version_rollback


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
    list_display = (
        "original_name",
        "project",
        "status",
        "assignee",
        "width",
        "height",
        "embedding_state",
    )
    list_filter = ("status", "project")
    search_fields = ("original_name", "sha256")
    raw_id_fields = ("assignee", "uploaded_by")
    actions = (recompute_image_embeddings,)

    @admin.display(description="embedding")
    def embedding_state(self, image: Image) -> str:
        state = embedding_status_map(images=[image])[image.pk]
        return f"{state['status']}: {state['error']}" if state["error"] else str(state["status"])


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
    raw_id_fields = ("image", "author", "label", "reviewed_by")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ("identifier", "project", "role", "invitee", "invited_by", "created_at")
    list_filter = ("role", "project")
    search_fields = ("identifier",)
    raw_id_fields = ("invitee", "invited_by")


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin[ExportJob]):
    list_display = ("id", "project", "format", "state", "progress", "created_at")
    list_filter = ("state", "format")


# ---------------------------------------------------------------- data engine

EVALUATION_ROWS = (
    ("miou_1", "mIoU after 1 click"),
    ("miou_3", "mIoU after 3 clicks"),
    ("miou_5", "mIoU after 5 clicks"),
    ("noc_85", "NoC@85 (clicks, lower is better)"),
    ("noc_90", "NoC@90 (clicks, lower is better)"),
    ("objects", "held-out objects"),
)


def loss_curve_svg(values: list[float], width: int = 480, height: int = 160) -> SafeString:
    """An inline SVG polyline of a loss curve (numbers only, so nothing to escape)."""
    points = [float(v) for v in values if isinstance(v, int | float)]
    if len(points) < 2:
        return mark_safe("<em>no loss curve yet</em>")
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = (width - 10) / (len(points) - 1)
    coords = " ".join(
        f"{5 + i * step:.1f},{5 + (height - 10) * (high - v) / span:.1f}"
        for i, v in enumerate(points)
    )
    return mark_safe(  # noqa: S308 (numbers formatted above)
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'style="background:#fff;border:1px solid #ccc">'
        f'<polyline fill="none" stroke="#d33" stroke-width="1.5" points="{coords}"/>'
        f'<text x="8" y="14" font-size="11">{high:.3f}</text>'
        f'<text x="8" y="{height - 6}" font-size="11">{low:.3f} '
        f"(step {len(points)})</text></svg>"
    )


def miou_plot_svg(
    series: list[tuple[str, str, dict[str, Any]]], width: int = 360, height: int = 200
) -> SafeString:
    """An inline SVG of held-out mIoU after 1, 3 and 5 clicks, one polyline per
    (name, colour, metrics) series; mIoU 0 at the bottom, 1 at the top."""
    pad = 24

    def x(clicks: int) -> float:
        return pad + (clicks - 1) / 4 * (width - 2 * pad)

    def coords(metrics: dict[str, Any]) -> str:
        values = [(k, metrics.get(f"miou_{k}")) for k in (1, 3, 5)]
        return " ".join(
            f"{x(k):.1f},{pad + (1 - min(1.0, max(0.0, float(v)))) * (height - 2 * pad):.1f}"
            for k, v in values
            if isinstance(v, int | float)
        )

    lines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'
        '<text x="{}" y="14" font-size="11" fill="{}">{}</text>',
        (
            (colour, coords(metrics), 30 + 150 * i, colour, name)
            for i, (name, colour, metrics) in enumerate(series)
        ),
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10">{}</text>',
        [(x(k) - 3, height - 6, k) for k in (1, 3, 5)] + [(2, height - pad, 0), (2, pad + 4, 1)],
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
        'style="background:#fff;border:1px solid #ccc">{}{}</svg>',
        width,
        height,
        lines,
        ticks,
    )


@admin.action(description="Activate (only if it beats the current model on the held-out split)")
def activate_model_versions(
    modeladmin: admin.ModelAdmin[ModelVersion],
    request: HttpRequest,
    queryset: QuerySet[ModelVersion],
) -> None:
    from samapp.errors import ApplicationError

    for version in queryset.select_related("project", "training_job"):
        try:
            model_version_activate(version=version)
        except ApplicationError as exc:
            modeladmin.message_user(request, exc.message, messages.WARNING)
        else:
            modeladmin.message_user(request, f"{version.model_key} is active.", messages.SUCCESS)


@admin.action(description="Roll back the selected versions' projects to their previous model")
def rollback_model_versions(
    modeladmin: admin.ModelAdmin[ModelVersion],
    request: HttpRequest,
    queryset: QuerySet[ModelVersion],
) -> None:
    from samapp.errors import ApplicationError

    for project in Project.objects.filter(pk__in=queryset.values("project_id")):
        try:
            project = model_version_rollback(project=project)
        except ApplicationError as exc:
            modeladmin.message_user(request, exc.message, messages.WARNING)
        else:
            modeladmin.message_user(
                request, f"{project} runs {project.default_model_key}.", messages.SUCCESS
            )


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin[ModelVersion]):
    list_display = (
        "model_key",
        "project",
        "state",
        "miou_1",
        "baseline_miou_1",
        "checkpoint_bytes",
        "created_at",
    )
    list_filter = ("state", "project")
    search_fields = ("model_key",)
    readonly_fields = ("evaluation", "evaluation_plot", "loss_curve")
    exclude = ("held_out_images",)
    raw_id_fields = ("training_job", "created_by")
    actions = (activate_model_versions, rollback_model_versions)

    @admin.display(description="mIoU@1")
    def miou_1(self, version: ModelVersion) -> object:
        return version.metrics.get("miou_1")

    @admin.display(description="mIoU@1 before")
    def baseline_miou_1(self, version: ModelVersion) -> object:
        return version.baseline_metrics.get("miou_1")

    @admin.display(description="held-out evaluation")
    def evaluation(self, version: ModelVersion) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (title, version.baseline_metrics.get(key, "—"), version.metrics.get(key, "—"))
                for key, title in EVALUATION_ROWS
            ),
        )
        return format_html(
            "<table><tr><th></th><th>{} (before)</th><th>{}</th></tr>{}</table>",
            version.parent_model_key,
            version.model_key,
            rows,
        )

    @admin.display(description="held-out mIoU after 1, 3, 5 clicks")
    def evaluation_plot(self, version: ModelVersion) -> SafeString:
        return miou_plot_svg(
            [
                (f"{version.parent_model_key} (before)", "#888888", version.baseline_metrics),
                (version.model_key, "#d33333", version.metrics),
            ]
        )

    @admin.display(description="training loss")
    def loss_curve(self, version: ModelVersion) -> SafeString:
        job = version.training_job
        return loss_curve_svg(job.loss_curve if job else [])


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin[TrainingJob]):
    list_display = ("id", "project", "state", "progress", "seconds", "created_at")
    list_filter = ("state", "project")
    readonly_fields = ("loss_plot",)
    exclude = ("loss_curve",)

    @admin.display(description="training loss")
    def loss_plot(self, job: TrainingJob) -> SafeString:
        return loss_curve_svg(job.loss_curve)


# knox registers its own token model, which KNOX_TOKEN_MODEL swaps out for ApiToken.
if admin.site.is_registered(KnoxAuthToken):
    admin.site.unregister(KnoxAuthToken)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Tokens are listed and revoked here (their secrets are never stored); they are created
    only by a login."""

    list_display = ("id", "user", "created", "expiry", "last_used")
    fields = list_display
    readonly_fields = list_display
    search_fields = ("user__username",)
    raw_id_fields = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        api_token_revoke(token=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            api_token_revoke(token=token)
