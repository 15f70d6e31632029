"""Reads scoped by membership: a user sees only the projects they belong to."""

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case, Count, F, Q, QuerySet, When
from django.utils import timezone

from samapp.choices import ImageStatus, ReviewState
from samapp.models import Annotation, Image, Invitation, Label, Membership, Project
from samapp.selectors.compiled import CompiledQuery, M

AnyUser = AbstractBaseUser | AnonymousUser

INVITATION_TTL = timedelta(days=7)


def invitation_expiry_cutoff() -> datetime:
    """Invitations made before this moment have expired."""
    return timezone.now() - INVITATION_TTL


# Every project-scoped request reads its membership, and every annotation write its image or
# annotation: compiled once (see `CompiledQuery`).
_MEMBERSHIP = CompiledQuery(
    Membership,
    lambda project_id, user_id: Membership.objects.select_related("project").filter(
        project_id=project_id, user_id=user_id
    )[:1],
    "project_id",
    "user_id",
)


def _project_row(model: type[M], project_lookup: str, *related: str) -> CompiledQuery[M]:
    """The row of ``model`` with a given id if it belongs to the given project
    (``project_lookup`` is the path from the row to its project's id)."""

    def build(project_id: int, row_id: int) -> QuerySet[M]:
        rows = model._default_manager.filter(**{project_lookup: project_id, "pk": row_id})
        return (rows.select_related(*related) if related else rows)[:1]

    return CompiledQuery(model, build, "project_id", "row_id")


_IMAGE = _project_row(Image, "project_id")
_ANNOTATION = _project_row(Annotation, "image__project_id", "image")


def membership_get(*, project_id: int, user: AnyUser) -> Membership | None:
    if not user.is_authenticated:
        return None
    return _MEMBERSHIP.get(project_id=project_id, user_id=user.pk)


def image_get(*, project: Project, image_id: int) -> Image | None:
    """One of the project's images."""
    return _IMAGE.get(project_id=project.pk, row_id=image_id)


def project_list(*, user: AnyUser) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    # Meta.ordering is dropped from GROUP BY queries: order explicitly for stable pages.
    return (
        Project.objects.filter(memberships__user_id=user.pk)
        .annotate(image_count=Count("images", distinct=True))
        .order_by("-created_at", "-id")
    )


def membership_roles(*, user: AnyUser) -> dict[int, str]:
    """The user's role in each of their projects, by project id."""
    if not user.is_authenticated:
        return {}
    return dict(Membership.objects.filter(user_id=user.pk).values_list("project_id", "role"))


def member_exists(*, project: Project, user_id: int) -> bool:
    return Membership.objects.filter(project=project, user_id=user_id).exists()


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user")


def label_list(*, project: Project) -> QuerySet[Label]:
    return Label.objects.filter(project=project)


def label_list_with_counts(*, project: Project) -> QuerySet[Label]:
    """The project's labels, each with `annotation_count` (the annotations that carry it)."""
    return (
        label_list(project=project).annotate(annotation_count=Count("annotations")).order_by("id")
    )


def image_list(
    *,
    project: Project,
    status: str | None = None,
    assignee_id: int | None = None,
    label_id: int | None = None,
) -> QuerySet[Image]:
    images = Image.objects.filter(project=project)
    if status:
        images = images.filter(status=status)
    if assignee_id is not None:
        images = images.filter(assignee_id=assignee_id)
    if label_id is not None:
        images = images.filter(annotations__label_id=label_id).distinct()
    return images.order_by("id")


def image_status_counts(*, project: Project) -> dict[str, int]:
    rows = Image.objects.filter(project=project).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def annotation_list(
    *,
    project: Project,
    image_id: int | None = None,
    review_state: str | None = None,
    author_id: int | None = None,
    label_id: int | None = None,
    source: str | None = None,
) -> QuerySet[Annotation]:
    """The project's annotations, narrowed by whichever filters are given."""
    annotations = Annotation.objects.filter(image__project=project).select_related("label")
    filters = {
        "image_id": image_id,
        "review_state": review_state,
        "author_id": author_id,
        "label_id": label_id,
        "source": source,
    }
    return annotations.filter(
        **{field: value for field, value in filters.items() if value is not None}
    ).order_by("id")


def annotation_get(*, project: Project, annotation_id: int) -> Annotation | None:
    """One of the project's annotations, with its image (what a write checks and answers:
    the payload names the label by id, so the label is not joined)."""
    return _ANNOTATION.get(project_id=project.pk, row_id=annotation_id)


def invitation_list_for_user(*, user: AnyUser) -> QuerySet[Invitation]:
    """The user's own pending invitations (not expired)."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    return (
        Invitation.objects.filter(invitee_id=user.pk, created_at__gte=invitation_expiry_cutoff())
        .select_related("project", "invited_by")
        .order_by("-created_at", "-id")
    )


def invitation_list_for_project(*, project: Project) -> QuerySet[Invitation]:
    """The project's pending invitations (not expired), as the inviters typed them."""
    return (
        Invitation.objects.filter(project=project, created_at__gte=invitation_expiry_cutoff())
        .select_related("invited_by")
        .order_by("-created_at", "-id")
    )


def queue_list(*, project: Project, user: AnyUser) -> QuerySet[Image]:
    """The images assigned to `user` that are not done yet, each with `rejected_count` (the
    user's annotations a reviewer rejected): images with rejected work first, then those in
    progress, then new ones, by id."""
    rejected = Count(
        "annotations",
        filter=Q(annotations__author_id=user.pk, annotations__review_state=ReviewState.REJECTED),
    )
    return (
        Image.objects.filter(
            project=project,
            assignee_id=user.pk,
            status__in=(ImageStatus.NEW, ImageStatus.IN_PROGRESS),
        )
        .annotate(
            rejected_count=rejected,
            started=Case(When(status=ImageStatus.IN_PROGRESS, then=1), default=0),
        )
        .order_by(F("rejected_count").desc(), "-started", "id")
    )


def rejected_annotations(*, image: Image, author: AnyUser) -> QuerySet[Annotation]:
    """The author's annotations on `image` that a reviewer rejected (with the reasons)."""
    return Annotation.objects.filter(
        image=image, author_id=author.pk, review_state=ReviewState.REJECTED
    ).order_by("id")


def project_progress(*, project: Project) -> dict[str, int]:
    counts = Image.objects.filter(project=project).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status__in=["done", "reviewed"])),
    )
    return {"total": counts["total"] or 0, "done": counts["done"] or 0}
