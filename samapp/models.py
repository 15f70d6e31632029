"""SAM Studio's domain: projects, members, labels, images, embeddings, annotations, jobs."""

from typing import Any

from django.conf import settings as django_settings
from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS as KNOX

from samapp.choices import (
    AnnotationSource,
    EmbeddingStatus,
    ExportFormat,
    ImageStatus,
    JobState,
    ModelDownloadState,
    ModelVersionState,
    ReviewPolicy,
    ReviewState,
    Role,
)


def user_reference() -> "models.ForeignKey[Any, Any]":
    """Who did something (created, uploaded, reviewed...): kept when the account goes, with
    no reverse accessor on the user."""
    return models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def default_project_settings() -> dict[str, object]:
    return {
        "export_polygon_tolerance": 1.0,
        "auto_points_per_side": 32,
        # Segment-everything thresholds left unset follow the project's model
        # (samapp.ml.registry.automatic_defaults).
        "auto_min_mask_region_area": 0,
    }


class Project(TimeStamped):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_model_key = models.CharField(max_length=64, default="sam_tiny")
    review_policy = models.CharField(
        max_length=16, choices=ReviewPolicy.choices, default=ReviewPolicy.PROPOSED
    )
    settings = models.JSONField(default=default_project_settings, blank=True)
    created_by = user_reference()
    members = models.ManyToManyField(
        django_settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    # When a worker last claimed this project's embeddings: least recently served goes first.
    embeddings_served_at = models.DateTimeField(null=True, blank=True)
    # Archived projects stay readable and listed apart; their members unarchive them.
    archived_at = models.DateTimeField(null=True, blank=True)
    # The `seq` of the project's last AnnotationEvent: one UPDATE allocates the next, not a MAX.
    annotation_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Never writes `annotation_seq` back: a loaded copy may be stale, and writing it
        would hand out seqs again; only the event log's own UPDATE moves the counter."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "annotation_seq"
            ]
        super().save(*args, **kwargs)


class Membership(TimeStamped):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_membership"),
        ]
        ordering = ["project_id", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class Invitation(TimeStamped):
    """A pending offer of a role in a project; the invited user accepts (becoming a member)
    or declines. `identifier` is the username or e-mail the inviter typed; `invitee` is the
    active account it named when the invitation was made, or null when it named none (the
    invitation then stays pending until it expires or is revoked, like any other, so the
    inviter cannot tell the two apart)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    identifier = models.CharField(max_length=254)
    invitee = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="invitations",
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    invited_by = user_reference()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "identifier"], name="unique_invitation_identifier"
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.identifier} invited to {self.project} as {self.role}"


class Label(TimeStamped):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#ff0000")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_label_name"),
        ]
        ordering = ["project_id", "id"]

    def __str__(self) -> str:
        return self.name


def image_upload_path(instance: "Image", filename: str) -> str:
    # Content-addressed within the project: names chosen by uploaders never reach the disk.
    return f"projects/{instance.project_id}/images/{instance.sha256}.{instance.format.lower()}"


class Image(TimeStamped):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_upload_path, max_length=300)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ImageStatus.choices, default=ImageStatus.NEW, db_index=True
    )
    assignee = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_images",
    )
    uploaded_by = user_reference()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="unique_image_per_project"),
        ]
        ordering = ["project_id", "id"]

    def __str__(self) -> str:
        return self.original_name


class Embedding(TimeStamped):
    """One SAM image embedding per (image content, model): shared by every project holding
    that content (`project` null) when `SAM_SHARE_EMBEDDINGS_ACROSS_PROJECTS` is on, else one
    per (project, content, model)."""

    image_sha256 = models.CharField(max_length=64)
    # The project this embedding is private to; null when it is shared across projects.
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="embeddings"
    )
    # The project whose turn computes it (the first to ask for it): workers take turns
    # between projects, so one project's bulk upload cannot hold back another's images.
    queued_for = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_key = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16,
        choices=EmbeddingStatus.choices,
        default=EmbeddingStatus.PENDING,
        db_index=True,
    )
    storage_path = models.CharField(max_length=300, blank=True)
    dtype = models.CharField(max_length=16, blank=True)
    shape = models.JSONField(default=list, blank=True)
    input_size = models.JSONField(default=list, blank=True)  # [h, w] after resize, before pad
    original_size = models.JSONField(default=list, blank=True)  # [h, w]
    byte_size = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    compute_seconds = models.FloatField(null=True, blank=True)
    # Higher first: the image an annotator just opened jumps ahead of bulk uploads.
    priority = models.SmallIntegerField(default=0)
    # When a worker claimed it (RUNNING); a claim older than the timeout is re-claimable.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image_sha256", "model_key"],
                condition=models.Q(project__isnull=True),
                name="unique_shared_embedding_per_model",
            ),
            models.UniqueConstraint(
                fields=["project", "image_sha256", "model_key"],
                condition=models.Q(project__isnull=False),
                name="unique_project_embedding_per_model",
            ),
        ]
        indexes = [models.Index(fields=["status", "queued_for"], name="embedding_queue")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.image_sha256[:12]}@{self.model_key} ({self.status})"


class Annotation(TimeStamped):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="annotations")
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    # COCO compressed RLE ({"size": [h, w], "counts": str}): the master copy of the mask.
    rle = models.JSONField()
    bbox = models.JSONField(default=list)  # [x, y, w, h] in pixels, COCO order
    area = models.PositiveIntegerField(default=0)
    predicted_iou = models.FloatField(null=True, blank=True)
    source = models.CharField(
        max_length=16, choices=AnnotationSource.choices, default=AnnotationSource.MANUAL
    )
    prompts = models.JSONField(default=dict, blank=True)
    model_key = models.CharField(max_length=64, blank=True)
    author = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotations",
    )
    version = models.PositiveIntegerField(default=1)
    review_state = models.CharField(
        max_length=16, choices=ReviewState.choices, default=ReviewState.ACCEPTED, db_index=True
    )
    # The last review decision: who made it, when, and the reason the author is shown.
    review_reason = models.CharField(max_length=1000, blank=True)
    reviewed_by = user_reference()
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["image_id", "id"]

    def __str__(self) -> str:
        return f"annotation {self.pk} on image {self.image_id}"


class Job(TimeStamped):
    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    created_by = user_reference()

    class Meta:
        abstract = True


class ExportJob(Job):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(
        max_length=16, choices=ExportFormat.choices, default=ExportFormat.COCO
    )
    options = models.JSONField(default=dict, blank=True)
    result_file = models.FileField(upload_to="exports/", blank=True, max_length=300)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.format} export of {self.project} ({self.state})"


class SegmentJob(Job):
    """Segment everything on one image: proposals written as `automatic` annotations."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="segment_jobs")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="segment_jobs")
    model_key = models.CharField(max_length=64)
    options = models.JSONField(default=dict, blank=True)
    annotation_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"segment everything on image {self.image_id} ({self.state})"


class AnnotationEvent(models.Model):
    """Change log of a project's annotations, for clients catching up after a reconnect.

    `seq` increases per project in commit order: it is allocated under a lock on the project
    row inside the transaction that makes the change."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotation_events")
    seq = models.PositiveBigIntegerField()
    event = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "seq"], name="unique_annotation_event_seq"),
        ]
        ordering = ["project_id", "seq"]

    def __str__(self) -> str:
        return f"{self.event} #{self.seq} in project {self.project_id}"


class TrainingJob(Job):
    """Fine-tuning of a project's decoder on its accepted annotations; its result is
    a `ModelVersion`. `loss_curve` holds the per-step training loss."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_jobs")
    base_model_key = models.CharField(max_length=64)
    options = models.JSONField(default=dict, blank=True)
    loss_curve = models.JSONField(default=list, blank=True)
    train_images = models.PositiveIntegerField(default=0)
    train_objects = models.PositiveIntegerField(default=0)
    held_out_images = models.PositiveIntegerField(default=0)
    held_out_objects = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"training of {self.project} ({self.state})"


class ModelVersion(TimeStamped):
    """A project's fine-tuned model: the base model's image encoder (frozen, so the stored
    embeddings stay valid) with its own prompt encoder + mask decoder weights.

    `model_key` ("{base}-p{project}v{number}") is what the project's `default_model_key`
    becomes while the version is active: the browser loads that key's decoder. `metrics` and
    `baseline_metrics` are the interactive evaluation of this version and of the model it was
    trained from, on the same held-out split."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    model_key = models.CharField(max_length=64, unique=True)
    base_model_key = models.CharField(max_length=64)
    parent_model_key = models.CharField(max_length=64)  # the model it was fine-tuned from
    state = models.CharField(
        max_length=16,
        choices=ModelVersionState.choices,
        default=ModelVersionState.TRAINING,
        db_index=True,
    )
    training_job = models.OneToOneField(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    metrics = models.JSONField(default=dict, blank=True)
    baseline_metrics = models.JSONField(default=dict, blank=True)
    held_out_images = models.JSONField(default=list, blank=True)  # image sha256s
    checkpoint_path = models.CharField(max_length=300, blank=True)
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    checkpoint_bytes = models.PositiveIntegerField(default=0)
    decoder_manifest = models.JSONField(default=dict, blank=True)
    # The project's model key when this version was activated: where a rollback returns.
    previous_model_key = models.CharField(max_length=64, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_by = user_reference()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="unique_model_version"),
        ]
        ordering = ["project_id", "-number"]

    def __str__(self) -> str:
        return f"{self.model_key} ({self.state})"


class ApiToken(AbstractAuthToken):
    """An API token (django-rest-knox, KNOX_TOKEN_MODEL): only the SHA-512 digest of the secret
    is stored; ``token_key`` (its first characters) narrows the lookup. Each has its own id,
    so its owner can list and revoke it without the secret, and records when it was last
    used (to the minute: see samapp.api.authentication)."""

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=KNOX.DIGEST_LENGTH, unique=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"token {self.id} of {self.user}"


class UploadSession(TimeStamped):
    """A file sent in chunks (resumable): `received` bytes of `size` are stored so far, each
    chunk as its own storage object until the last one arrives and the file is checked."""

    id = models.UUIDField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    chunk_size = models.PositiveIntegerField()
    received = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["created_by", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.received}/{self.size})"


class ModelDownload(TimeStamped):
    """The latest download of a registry model's checkpoint (one row per model).

    Whether a checkpoint is present is read from the checkpoint directory; this row carries
    what the directory cannot say: progress, the failure's reason, and the projects waiting
    to switch to the model once it is present (`switch_projects`, project ids)."""

    model_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(
        max_length=16, choices=ModelDownloadState.choices, default=ModelDownloadState.DOWNLOADING
    )
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    switch_projects = models.JSONField(default=list, blank=True)
    started_by = user_reference()

    def __str__(self) -> str:
        return f"{self.model_key} ({self.state})"
