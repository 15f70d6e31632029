"""Reads scoped by membership: a user sees only the projects they belong to."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

from samapp.models import Annotation, Image, Label, Membership, Project

AnyUser = AbstractBaseUser | AnonymousUser


def membership_get(*, project_id: int, user: AnyUser) -> Membership | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("project")
        .filter(project_id=project_id, user_id=user.pk)
        .first()
    )


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


def annotation_list(*, project: Project, image_id: int | None = None) -> QuerySet[Annotation]:
    annotations = Annotation.objects.filter(image__project=project).select_related("label")
    if image_id is not None:
        annotations = annotations.filter(image_id=image_id)
    return annotations.order_by("id")


def project_progress(*, project: Project) -> dict[str, int]:
    counts = Image.objects.filter(project=project).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status__in=["done", "reviewed"])),
    )
    return {"total": counts["total"] or 0, "done": counts["done"] or 0}
