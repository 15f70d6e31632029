"""The value sets of the models' choice fields (roles, states, formats, sources)."""

from django.db import models


class ReviewPolicy(models.TextChoices):
    """The review state an annotator's own (manual) work lands in."""

    PROPOSED = "proposed", "Pending review"
    ACCEPTED = "accepted", "Accepted"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


class ImageStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    REVIEWED = "reviewed", "Reviewed"


class EmbeddingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class AnnotationSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    CLICK = "click", "Click"
    BOX = "box", "Box"
    AUTOMATIC = "automatic", "Automatic"
    IMPORTED = "imported", "Imported"


class ReviewState(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportFormat(models.TextChoices):
    COCO = "coco", "COCO instances"
    YOLO = "yolo", "YOLO segmentation"
    PNG = "png", "PNG masks"
    VOC = "voc", "Pascal VOC"
    CVAT = "cvat", "CVAT for images 1.1"
    LABEL_STUDIO = "labelstudio", "Label Studio JSON"


class ModelVersionState(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"


class ModelDownloadState(models.TextChoices):
    DOWNLOADING = "downloading", "Downloading"
    VERIFYING = "verifying", "Verifying"
    PRESENT = "present", "Present"
    FAILED = "failed", "Failed"
