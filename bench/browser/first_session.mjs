// What a page's first decoder session costs in onnxruntime-web (WASM), after the runtime was
// started on a one-node graph as the workspace starts it when the page opens: creating the
// click and prepare sessions, their first runs (what the workspace's warm-up pays) and the
// steady per-click run. `?files=raw|stored` picks the graphs (see first_session.py) and `opt`
// the session's graphOptimizationLevel; the result goes to window.__result.
import * as ort from '/ort/ort.wasm.min.mjs';

const STEADY_RUNS = 15;

/** Zero-filled feeds for `spec` (the manifest's inputs; dynamic dims 2), `given` by name. */
function feeds(spec, given) {
  const out = {};
  for (const input of spec) {
    const dims = input.shape.map((d) => (typeof d === 'string' ? 2 : d));
    out[input.name] = given[input.name] ?? new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  return out;
}

async function main() {
  const q = new URLSearchParams(location.search);
  const cfg = await (await fetch('/data/config.json')).json();
  const files = cfg[q.get('files')];
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = Number(q.get('threads') || 1);
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: q.get('opt') };
  const bytes = async (name) => new Uint8Array(await (await fetch(`/data/${name}`)).arrayBuffer());
  const out = {};
  let t = performance.now();
  const timed = async (key, work) => {
    t = performance.now();
    const value = await work();
    out[key] = performance.now() - t;
    return value;
  };
  await timed('runtimeMs', async () => ort.InferenceSession.create(await bytes(cfg.start), { executionProviders: ['wasm'] }));
  const click = await timed('clickSessionMs', async () => ort.InferenceSession.create(await bytes(files.click), options));
  const prepare = await timed('prepareSessionMs', async () => ort.InferenceSession.create(await bytes(files.prepare), options));
  const prepared = await timed('firstPrepareMs', () => prepare.run(feeds(cfg.prepareInputs, {})));
  await timed('firstClickMs', () => click.run(feeds(cfg.clickInputs, prepared)));
  const times = [];
  for (let i = 0; i < STEADY_RUNS; i++) {
    t = performance.now();
    await click.run(feeds(cfg.clickInputs, prepared));
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  out.clickP50Ms = times[Math.floor(times.length / 2)];
  window.__result = out;
}
main().catch((e) => { window.__error = String((e && e.stack) || e); });
