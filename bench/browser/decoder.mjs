// Click -> mask timing for SAM decoders in onnxruntime-web (WASM). Configuration comes from
// /data/config.json (written by bench/decoder_browser.py); the result goes to window.__result.
//
// Per click, every variant does the work the UI needs before it can draw: build the feeds, run
// the decoder, threshold the logits into an RGBA mask and draw it at the image's size.
// Variants run interleaved click by click so that machine load hits them alike.
import * as ort from '/ort/ort.wasm.min.mjs';

const COLOR = 0x990000ff; // ABGR little-endian: semi-transparent red

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, p50: q(0.5), p90: q(0.9), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

function b64(f32) {
  const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function main() {
  const cfg = await (await fetch('/data/config.json')).json();
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = cfg.threads;
  const webgpu = 'gpu' in navigator ? Boolean(await navigator.gpu.requestAdapter()) : false;
  const [H, W] = cfg.orig_size;
  const [ih, iw] = cfg.input_size;
  const scale = cfg.img_size / Math.max(H, W);
  const [C, eh, ew] = cfg.embedding_shape;
  const lowSide = 4 * eh;
  const embData = new Float32Array(await (await fetch('/data/embedding.f32')).arrayBuffer());
  const embedding = new ort.Tensor('float32', embData, [1, C, eh, ew]);
  // Graphs stored optimised (ours) are not optimised again, as the workspace loads them.
  const load = async (name) => ort.InferenceSession.create(
    await (await fetch(`/data/${cfg.models[name]}`)).arrayBuffer(),
    { executionProviders: ['wasm'], graphOptimizationLevel: cfg.stored.includes(name) ? 'disabled' : 'all' });

  const display = document.getElementById('display');
  display.width = W;
  display.height = H;
  const ctx = display.getContext('2d', { willReadFrequently: false });
  const fullMask = new ImageData(W, H);
  const fullU32 = new Uint32Array(fullMask.data.buffer);
  const lowCanvas = new OffscreenCanvas(lowSide, lowSide);
  const lowCtx = lowCanvas.getContext('2d');
  const lowMask = new ImageData(lowSide, lowSide);
  const lowU32 = new Uint32Array(lowMask.data.buffer);
  const flush = () => ctx.getImageData(0, 0, 1, 1); // forces the draw to complete

  // Shared per-click inputs, allocated once.
  const coords = new Float32Array(4);
  const labels = new Float32Array([1, -1]);
  const coordsT = new ort.Tensor('float32', coords, [1, 2, 2]);
  const labelsT = new ort.Tensor('float32', labels, [1, 2]);
  const maskInput = new ort.Tensor('float32', new Float32Array(lowSide * lowSide),
    [1, 1, lowSide, lowSide]);
  const hasMask = new ort.Tensor('float32', new Float32Array([0]), [1]);
  const origSize = new ort.Tensor('float32', new Float32Array([H, W]), [2]);

  // A multi-mask output shows what the workspace shows for one click: the best-scored of
  // the three multimask outputs (planes 1-3; plane 0 is the single-mask output).
  const shown = (out) => {
    const masks = out.low_res_masks;
    const count = masks.dims[1];
    if (count === 1) return masks.data;
    const scores = out.iou_predictions.data;
    let best = 1;
    for (let i = 2; i < count; i++) if (scores[i] > scores[best]) best = i;
    const plane = lowSide * lowSide;
    return masks.data.subarray(best * plane, (best + 1) * plane);
  };
  const drawLow = (logits, cropW = iw / 4, cropH = ih / 4) => {
    for (let i = 0; i < lowU32.length; i++) lowU32[i] = logits[i] > 0 ? COLOR : 0;
    lowCtx.putImageData(lowMask, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.drawImage(lowCanvas, 0, 0, cropW, cropH, 0, 0, W, H);
    flush();
  };

  const variants = {};
  const timings = { load_ms: {} };
  // Baseline: SAM's official export, full-resolution logits, thresholded at full size.
  let t = performance.now();
  const official = await load('official');
  timings.load_ms.official = performance.now() - t;
  variants.official = async () => {
    const out = await official.run({
      image_embeddings: embedding, point_coords: coordsT, point_labels: labelsT,
      mask_input: maskInput, has_mask_input: hasMask, orig_im_size: origSize,
    });
    const m = out.masks.data;
    for (let i = 0; i < fullU32.length; i++) fullU32[i] = m[i] > 0 ? COLOR : 0;
    ctx.putImageData(fullMask, 0, 0);
    flush();
    return out;
  };
  for (const name of ['lowres_int8', 'lowres_multi'].filter((n) => cfg.models[n])) {
    const lowres = await load(name);
    variants[name] = async () => {
      const out = await lowres.run({
        image_embeddings: embedding, point_coords: coordsT, point_labels: labelsT,
        mask_input: maskInput, has_mask_input: hasMask,
      });
      drawLow(shown(out));
      return out;
    };
  }
  // Ours: per-image prepare once, then the lean click graph on the prepared tensors.
  t = performance.now();
  const prepare = await load('fast_prepare');
  timings.load_ms.fast_prepare = performance.now() - t;
  const prepareMs = [];
  let prepared;
  for (let i = 0; i < 3; i++) {
    t = performance.now();
    prepared = await prepare.run({ image_embeddings: embedding });
    prepareMs.push(performance.now() - t);
  }
  timings.prepare_ms = stats(prepareMs);
  const ours = Object.keys(cfg.models).filter((k) => k.startsWith('fast') && k !== 'fast_prepare');
  for (const name of ours) {
    const session = await load(name);
    const all = { ...prepared, point_coords: coordsT, point_labels: labelsT };
    const feeds = Object.fromEntries(session.inputNames.map((n) => [n, all[n]]));
    variants[name] = async () => {
      const out = await session.run(feeds);
      drawLow(shown(out));
      return out;
    };
  }

  // SAM 2.1 (bench/decoder_browser.py, unless --no-sam2): its graph takes the two
  // high-resolution maps too, pads the prompt itself, and its input is the whole image resized
  // to a square.
  let current = [0, 0];
  if (cfg.sam2) {
    const maps = {};
    for (const [name, shape] of Object.entries(cfg.sam2.shapes)) {
      const data = new Float32Array(await (await fetch(`/data/${cfg.sam2.files[name]}`)).arrayBuffer());
      maps[name] = new ort.Tensor('float32', data, [1, ...shape]);
    }
    // The fast pair's per-image graph runs once, on the three maps.
    const sam2Prepare = await load('sam2_fast_prepare');
    const sam2PrepareMs = [];
    let sam2Prepared;
    for (let i = 0; i < 3; i++) {
      t = performance.now();
      sam2Prepared = await sam2Prepare.run(maps);
      sam2PrepareMs.push(performance.now() - t);
    }
    timings.sam2_prepare_ms = stats(sam2PrepareMs);
    const side = cfg.sam2.img_size;
    const coords2 = new Float32Array(2);
    const given = {
      ...maps,
      ...sam2Prepared,
      point_coords: new ort.Tensor('float32', coords2, [1, 1, 2]),
      point_labels: new ort.Tensor('float32', new Float32Array([1]), [1, 1]),
      mask_input: maskInput,
      has_mask_input: hasMask,
    };
    const graphs = Object.keys(cfg.models).filter((k) => k.startsWith('sam2') && k !== 'sam2_fast_prepare');
    for (const name of graphs) {
      const session = await load(name);
      const feeds = Object.fromEntries(session.inputNames.map((n) => [n, given[n]]));
      variants[name] = async () => {
        coords2[0] = (current[0] * side) / W;
        coords2[1] = (current[1] * side) / H;
        const out = await session.run(feeds);
        drawLow(shown(out), lowSide, lowSide);
        return out;
      };
    }
  }

  const names = Object.keys(variants);
  const total = Object.fromEntries(names.map((n) => [n, []]));
  const masks = Object.fromEntries(names.map((n) => [n, []]));
  const ious = Object.fromEntries(names.map((n) => [n, []]));
  for (let c = 0; c < cfg.warmup + cfg.clicks.length; c++) {
    const [x, y] = cfg.clicks[Math.max(0, c - cfg.warmup)];
    current = [x, y];
    const order = c % 2 ? [...names].reverse() : names;
    for (const name of order) {
      t = performance.now();
      coords[0] = x * scale; coords[1] = y * scale; coords[2] = 0; coords[3] = 0;
      const out = await variants[name]();
      const dt = performance.now() - t;
      if (c < cfg.warmup) continue;
      total[name].push(dt);
      const k = c - cfg.warmup;
      ious[name].push(out.iou_predictions.data[0]);
      if (k < cfg.return_masks && name !== 'official') masks[name].push(b64(shown(out)));
    }
  }
  window.__result = {
    user_agent: navigator.userAgent,
    cross_origin_isolated: self.crossOriginIsolated,
    threads: cfg.threads,
    webgpu_available: webgpu,
    hardware_concurrency: navigator.hardwareConcurrency,
    timings,
    click_ms: Object.fromEntries(names.map((n) => [n, stats(total[n])])),
    raw_ms: total,
    iou_predictions: ious,
    masks,
  };
}

main().catch((e) => { window.__error = String(e && e.stack || e); });
