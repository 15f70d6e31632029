"""Training recipe: losses on known inputs, prompt simulation, learning, exact resume."""

import json
import math
from dataclasses import replace

import pytest
import torch

from samapp.ml.click_simulation import (
    Prompts,
    batch_loss,
    click_without_gradient,
    decode,
    first_prompts,
    inner_core,
    interactive_loss,
    noisy_boxes,
    sample_error_points,
    sample_points,
)
from samapp.ml.losses import dice_loss, mask_iou, sigmoid_focal_loss
from samapp.ml.tiny import SAM_TINY_CONFIG, build_sam_tiny
from samapp.ml.train_config import TrainConfig
from samapp.ml.training import (
    init_decoder_attention,
    make_optimizer,
    scene_batch,
    train,
    train_step,
)
from tests.ml.small_models import SMALL

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run fastest on one thread, and do not stall on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_sam(seed=0):
    torch.manual_seed(seed)
    return build_sam_tiny(config=SMALL)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_focal_loss_known_values():
    zeros = torch.zeros(2, 4, 4)
    positive = sigmoid_focal_loss(zeros, torch.ones(2, 4, 4))
    negative = sigmoid_focal_loss(zeros, torch.zeros(2, 4, 4))
    assert positive.shape == (2,)
    torch.testing.assert_close(positive, torch.full((2,), 0.25 * 0.25 * math.log(2)))
    torch.testing.assert_close(negative, torch.full((2,), 0.75 * 0.25 * math.log(2)))
    confident = sigmoid_focal_loss(torch.full((4, 4), 20.0), torch.ones(4, 4))
    assert confident.item() < 1e-8
    wrong = sigmoid_focal_loss(torch.full((4, 4), -5.0), torch.ones(4, 4))
    p = torch.sigmoid(torch.tensor(-5.0))
    torch.testing.assert_close(wrong, 0.25 * (1 - p) ** 2 * -torch.log(p))


def test_dice_loss_known_values():
    target = torch.zeros(8, 8)
    target[:4] = 1.0  # 32 pixels
    half = dice_loss(torch.zeros(8, 8), target)
    torch.testing.assert_close(half, torch.tensor(1 - (2 * 16 + 1) / (32 + 32 + 1)))
    exact = dice_loss((target * 2 - 1) * 50, target)
    assert exact.item() < 1e-6
    empty = dice_loss(torch.full((8, 8), -50.0), target)
    torch.testing.assert_close(empty, torch.tensor(1 - 1 / 33))


def test_mask_iou():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    b = torch.zeros(2, 4, 4, dtype=torch.bool)
    a[0, :2] = True
    b[0, 1:3] = True
    torch.testing.assert_close(mask_iou(a, b), torch.tensor([4 / 12, 1.0]))


def test_sample_points_uniform_in_region():
    regions = torch.zeros(3, 6, 7, dtype=torch.bool)
    regions[0, 2, 5] = True
    regions[1, 1:3, 1:4] = True
    points, valid = sample_points(regions, generator())
    assert valid.tolist() == [True, True, False]
    assert points[0].tolist() == [5.0, 2.0]
    counts = torch.zeros(6, 7)
    g = generator(1)
    for _ in range(600):
        x, y = sample_points(regions[1:2], g)[0][0].long().tolist()
        counts[y, x] += 1
    assert counts[~regions[1]].sum() == 0
    assert counts[regions[1]].min() > 60  # about 100 each of 6 pixels


def test_error_points_in_error_region_with_right_labels():
    g = generator(2)
    gt = torch.zeros(3, 32, 32, dtype=torch.bool)
    gt[:, 8:24, 8:24] = True
    pred = gt.clone()
    pred[0, 8:24, 8:16] = False  # only false negatives
    pred[1, 0:8, :] = True  # only false positives
    for _ in range(50):
        points, labels = sample_error_points(pred, gt, g)
        assert points.shape == (3, 1, 2)
        assert labels.shape == (3, 1)
        x, y = points[:, 0].long().unbind(1)
        assert 8 <= x[0] < 16
        assert 8 <= y[0] < 24
        assert labels[0, 0] == 1
        assert y[1] < 8
        assert labels[1, 0] == 0
        assert labels[2, 0] == -1  # exact prediction: padding point


def test_first_prompts_points_inside_and_boxes_around():
    gt = torch.zeros(2, 40, 50, dtype=torch.bool)
    gt[0, 5:15, 10:30] = True
    gt[1, 20:38, 2:9] = True
    g = generator(3)
    prompts = first_prompts(gt, g, box=False)
    x, y = prompts.points[:, 0].long().unbind(1)
    assert gt[torch.arange(2), y, x].all()
    assert prompts.labels.tolist() == [[1], [1]]
    exact = noisy_boxes(gt, g, noise=0.0)
    assert exact.tolist() == [[10, 5, 30, 15], [2, 20, 9, 38]]
    boxes = first_prompts(gt, g, box=True)
    assert boxes.points.shape == (2, 0, 2)
    assert boxes.boxes.shape == (2, 4)
    assert (boxes.boxes - exact).abs().max() <= 20


def test_first_click_from_the_inner_core():
    """A first click from the inner core keeps at least ``core`` of the mask's largest
    distance to its boundary: inside the inner half of a 20 x 40 rectangle (distance >= 5
    of 10) and of a disc; a mask too thin for a core still gets a click on it. With
    ``core_share`` 0.5 about half the clicks come from the core."""
    gt = torch.zeros(3, 64, 64, dtype=torch.bool)
    gt[0, 10:30, 5:45] = True
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    gt[1] = (yy - 40) ** 2 + (xx - 40) ** 2 <= 15**2
    gt[2, 60, 10:50] = True  # one pixel thick
    core = inner_core(gt, 0.5)
    assert (core <= gt).all()
    assert core.flatten(1).any(1).all()
    rows, cols = core[0].any(1).nonzero()[:, 0], core[0].any(0).nonzero()[:, 0]
    assert rows.min() >= 14
    assert rows.max() <= 25
    assert cols.min() >= 9
    assert cols.max() <= 40
    for seed in range(20):
        prompts = first_prompts(gt, generator(seed), box=False, core=0.5, core_share=1.0)
        x, y = prompts.points[:, 0].long().T
        assert core[torch.arange(3), y, x].all()
        assert (x[1] - 40) ** 2 + (y[1] - 40) ** 2 <= 9**2  # the disc's inner ~half radius
    rectangles = gt[:1].expand(400, -1, -1)
    x, y = first_prompts(rectangles, generator(), False, 0.5, 0.5).points[:, 0].long().T
    in_core = core[0, y, x].float().mean()
    # uniform clicks land in the core with probability 12 * 32 / 800 = 0.48
    assert 0.65 < in_core < 0.8  # 0.5 + 0.5 * 0.48 = 0.74 expected


def test_decode_gives_all_four_outputs_for_points_and_boxes():
    sam = small_sam()
    emb = torch.randn(1, 32, 8, 8)
    points = Prompts(torch.rand(3, 2, 2) * 64, torch.tensor([[1, 0], [1, -1], [1, 1]]))
    low, iou = decode(sam, emb, points)
    assert low.shape == (3, 4, 32, 32)
    assert iou.shape == (3, 4)
    sparse, dense = sam.prompt_encoder(
        points=(points.points, points.labels), boxes=None, masks=None
    )
    for multimask, outputs in ((True, slice(1, 4)), (False, slice(0, 1))):
        official = sam.mask_decoder(
            image_embeddings=emb,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        torch.testing.assert_close(official[0], low[:, outputs])
        torch.testing.assert_close(official[1], iou[:, outputs])
    boxed = Prompts(
        torch.zeros(3, 0, 2),
        torch.zeros(3, 0, dtype=torch.long),
        torch.tensor([[0.0, 0, 10, 10]] * 3),
        torch.zeros(3, 1, 32, 32),
    )
    low, iou = decode(sam, emb, boxed)
    assert low.shape == (3, 4, 32, 32)
    assert iou.shape == (3, 4)


@pytest.mark.parametrize("box", [False, True])
def test_interactive_loss_reaches_embedding_and_decoder(box):
    sam = small_sam()
    _, gts = scene_batch(0, 0, 1, 64, "default", CPU)
    emb = torch.randn(1, 32, 8, 8, requires_grad=True)
    loss, iou = interactive_loss(sam, emb, gts[0], generator(), TrainConfig(), box=box)
    loss.backward()
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    assert iou.shape == (gts[0].shape[0],)
    assert emb.grad is not None
    assert emb.grad.abs().sum() > 0
    assert sam.mask_decoder.iou_prediction_head.layers[0].weight.grad is not None
    assert sam.image_encoder.patch_embed.proj.weight.grad is None


def test_first_round_also_trains_the_output_the_iou_head_shows():
    """The first round's loss adds ``shown_weight`` times the loss of the multimask output
    with the highest predicted IoU (the one ``SamPredictor`` shows)."""
    sam = small_sam()
    _, gts = scene_batch(0, 0, 1, 64, "default", CPU)
    gt = gts[0]
    emb = torch.randn(1, 32, 8, 8, generator=generator())
    config = TrainConfig(iterations=1)
    with torch.no_grad():
        low_res, iou_pred = decode(sam, emb, first_prompts(gt, generator(), box=False))
        target = torch.nn.functional.interpolate(gt[:, None].float(), (32, 32), mode="area")
        target = target.expand_as(low_res)
        losses = config.focal_weight * sigmoid_focal_loss(low_res, target) + dice_loss(
            low_res, target
        )
        shown = iou_pred[:, 1:].argmax(dim=1) + 1
        shown_loss = losses[torch.arange(gt.shape[0]), shown].mean()
        without, _ = interactive_loss(sam, emb, gt, generator(), replace(config, shown_weight=0))
        weighted, _ = interactive_loss(sam, emb, gt, generator(), replace(config, shown_weight=2))
    assert shown_loss > 0
    torch.testing.assert_close(weighted - without, 2 * shown_loss, rtol=1e-4, atol=1e-6)


def test_clicks_without_gradient_add_corrective_points_and_the_last_mask_prompt():
    """Each silent round adds one click per object from its error region (positive on a
    missed pixel, negative on a false one, padding where exact) and feeds back the round's
    single-mask logits; the number of rounds is uniform in 0..extra_click_rounds."""
    sam = small_sam()
    _, gts = scene_batch(0, 0, 1, 64, "default", CPU)
    gt = gts[0]
    emb = torch.randn(1, 32, 8, 8, requires_grad=True)
    config = TrainConfig(extra_click_rounds=3)
    counts = set()
    for seed in range(24):
        first = first_prompts(gt, generator(seed), box=False)
        prompts = click_without_gradient(sam, emb, gt, first, generator(seed), config)
        added = prompts.points.shape[1] - 1
        counts.add(added)
        torch.testing.assert_close(prompts.points[:, :1], first.points)
        if not added:
            assert prompts.mask_input is None
            continue
        assert prompts.mask_input.shape == (gt.shape[0], 1, 32, 32)
        assert not prompts.mask_input.requires_grad
        x, y = prompts.points[:, 1:].long().unbind(dim=-1)
        on_object = gt[torch.arange(gt.shape[0])[:, None], y, x].long()
        labels = prompts.labels[:, 1:]
        assert ((labels == on_object) | (labels == -1)).all()
    assert counts == {0, 1, 2, 3}


def test_decode_with_one_embedding_per_object_equals_the_shared_embedding():
    sam = small_sam()
    _, gts = scene_batch(0, 0, 3, 64, "default", CPU)
    objects = torch.cat(gts)  # as if the objects of one image
    prompts = first_prompts(objects, generator(), box=False)
    embedding = torch.randn(1, 32, 8, 8, generator=generator())
    with torch.no_grad():
        shared = decode(sam, embedding, prompts)
        per_object = decode(sam, embedding.expand(objects.shape[0], -1, -1, -1), prompts)
    assert objects.shape[0] > 1
    for a, b in zip(shared, per_object, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_batch_loss_mixes_images_and_prompt_kinds():
    sam = small_sam()
    _, gts = scene_batch(0, 0, 3, 64, "default", CPU)
    embeddings = torch.randn(3, 32, 8, 8, requires_grad=True)
    loss, ious = batch_loss(sam, embeddings, gts, [False, True, False], generator(), TrainConfig())
    loss.backward()
    assert ious.shape == (sum(g.shape[0] for g in gts),)
    assert all(embeddings.grad[i].abs().sum() > 0 for i in range(3))


def position_attention(sam, attention, click):
    """Head-averaged (h, w) attention of the click's positional encoding on the image's,
    through ``attention``'s query and key projections."""
    encoder = sam.prompt_encoder
    side = encoder.image_embedding_size[0]
    with torch.no_grad():
        query = encoder.pe_layer.forward_with_coords(
            torch.tensor([[click]]) + 0.5, encoder.input_image_size
        )
        keys = encoder.get_dense_pe().flatten(2).transpose(1, 2)
        q = attention._separate_heads(attention.q_proj(query), attention.num_heads)
        k = attention._separate_heads(attention.k_proj(keys), attention.num_heads)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights[0, :, 0].mean(dim=0).reshape(side, side)


def test_attention_init_compares_the_click_with_each_image_position():
    torch.manual_seed(0)
    sam = build_sam_tiny()
    scale = sam.image_encoder.img_size / 256  # clicks given in a 256-px frame
    clicks = [(40.0, 200.0), (128.0, 128.0), (220.0, 30.0), (100.0, 60.0)]
    clicks = [(x * scale, y * scale) for x, y in clicks]
    patch = sam.image_encoder.img_size // sam.prompt_encoder.image_embedding_size[0]
    transformer = sam.mask_decoder.transformer
    attentions = [transformer.final_attn_token_to_image] + [
        a
        for layer in transformer.layers
        for a in (layer.cross_attn_token_to_image, layer.cross_attn_image_to_token)
    ]

    def at_click(attention, click):
        y, x = divmod(int(attention.argmax()), attention.shape[1])
        return abs(x - click[0] // patch) <= 1 and abs(y - click[1] // patch) <= 1

    assert not all(at_click(position_attention(sam, a, c), c) for a in attentions for c in clicks)
    init_decoder_attention(sam, gain=3.0)
    for attention in attentions:
        for click in clicks:
            weights = position_attention(sam, attention, click)
            assert at_click(weights, click), click
            assert weights.max() > 10 / weights.numel()  # peaked, not flat


def test_positional_frequencies_are_drawn_at_the_configured_scale(tmp_path):
    def frequencies(sam):
        return sam.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix

    torch.manual_seed(0)
    unscaled = build_sam_tiny(config=replace(SAM_TINY_CONFIG, positional_encoding_scale=1.0))
    torch.manual_seed(0)
    scaled = build_sam_tiny()
    assert SAM_TINY_CONFIG.positional_encoding_scale != 1.0
    assert torch.allclose(
        frequencies(scaled), SAM_TINY_CONFIG.positional_encoding_scale * frequencies(unscaled)
    )
    # a checkpoint brings its own frequencies (they are a buffer of the state dict)
    torch.save(unscaled.state_dict(), tmp_path / "unscaled.pt")
    assert torch.equal(frequencies(build_sam_tiny(tmp_path / "unscaled.pt")), frequencies(unscaled))


def test_loss_decreases_on_a_tiny_run():
    sam = small_sam().train()
    config = TrainConfig(lr=3e-3, warmup_steps=1, box_probability=0.0, iterations=2)
    optimizer, _ = make_optimizer(list(sam.parameters()), config)
    images, gts = scene_batch(3, 0, 2, 64, "default", CPU)
    g = generator()
    losses = [train_step(sam, optimizer, images, gts, g, config)[0] for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_shown_output_loss_joins_at_shown_start(tmp_path):
    """Steps before ``shown_start * steps`` train as with ``shown_weight=0``; from it on
    the shown output's loss changes the update."""
    base = TrainConfig(steps=4, images_per_step=1, iterations=1, checkpoint_every=100)

    def trained(config):
        sam = small_sam(seed=5)
        train(sam, config, tmp_path / "state.pt", progress=False)
        return sam.state_dict()

    never = trained(replace(base, shown_weight=0.0))
    after_all_steps = trained(replace(base, shown_start=1.0))
    from_the_start = trained(replace(base, shown_start=0.0))
    assert all(torch.equal(never[k], after_all_steps[k]) for k in never)
    assert not all(torch.equal(never[k], from_the_start[k]) for k in never)


def test_resume_gives_identical_state(tmp_path):
    config = TrainConfig(steps=4, images_per_step=1, iterations=2, checkpoint_every=100)
    straight = small_sam(seed=5)
    result = train(straight, config, tmp_path / "a.pt", progress=False)
    assert result.finished
    assert result.step == 4

    first = small_sam(seed=5)
    partial = train(first, config, tmp_path / "b.pt", progress=False, max_steps=2)
    assert not partial.finished
    assert partial.step == 2
    resumed = small_sam(seed=99)  # the state replaces the weights
    final = train(resumed, config, tmp_path / "b.pt", resume=True, progress=False)
    assert final.finished
    assert final.step == 4

    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    assert torch.equal(a["generator"], b["generator"])
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state_a[key], state_b[key])


def test_resume_refuses_another_config(tmp_path):
    config = TrainConfig(steps=2, images_per_step=1, iterations=1)
    train(small_sam(), config, tmp_path / "s.pt", progress=False, max_steps=1)
    with pytest.raises(ValueError, match="another config"):
        train(small_sam(), replace(config, lr=1.0), tmp_path / "s.pt", resume=True, progress=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"minutes": 0}, "--minutes must be positive"),
        ({"steps": 0}, "--steps must be positive"),
        ({"seed": -1}, "--seed must be >= 0"),
        ({"out": "weights.bin"}, "--out must name a .pt file"),
        ({"resume": True}, "no training state to resume"),
        ({"device": "nonsense"}, "--device"),
    ],
)
def test_command_rejects_bad_arguments(tmp_path, options, message):
    from django.core.management import CommandError, call_command

    options = {"out": tmp_path / "w.pt", **options}
    if isinstance(options["out"], str):
        options["out"] = tmp_path / options["out"]
    with pytest.raises(CommandError, match=message):
        call_command("sam_train_tiny", **options)


def test_command_trains_stops_and_resumes(tmp_path, monkeypatch):
    from django.core.management import CommandError, call_command

    from samapp.ml import training

    monkeypatch.setattr(
        training, "evaluate_sam_tiny", lambda sam: {"miou_1_click": 0.5, "miou_3_clicks": 0.6}
    )
    out = tmp_path / "w.pt"
    with pytest.raises(CommandError, match="--resume"):
        call_command("sam_train_tiny", out=out, steps=1, minutes=1e-6)
    assert (tmp_path / "w.state.pt").exists()
    assert not out.exists()
    call_command("sam_train_tiny", out=out, steps=1, resume=True)
    assert not (tmp_path / "w.state.pt").exists()
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["train_config"]["steps"] == 1
    assert metrics["miou_1_click"] == 0.5
    build_sam_tiny(out)  # strict keys
