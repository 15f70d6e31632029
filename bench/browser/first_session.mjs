// What the workspace's first decoder session costs in onnxruntime-web (WASM), by part: the
// runtime (fetch, compile and start the WASM and its threads: timed on a one-node graph), the
// decoder's sessions, the first run. Configuration from the query string; result in __result.
import * as ort from '/ort/ort.wasm.min.mjs';

async function main() {
  const q = new URLSearchParams(location.search);
  const cfg = await (await fetch('/data/config.json')).json();
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = Number(q.get('threads') || 1);
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: q.get('opt') || 'all' };
  const bytes = async (name) => new Uint8Array(await (await fetch(`/data/${name}`)).arrayBuffer());
  const t0 = performance.now();
  const out = {};
  if (q.get('warm') === '1') {
    await ort.InferenceSession.create(await bytes(cfg.tiny), { executionProviders: ['wasm'] });
    out.runtimeMs = performance.now() - t0;
  }
  const t1 = performance.now();
  const click = await ort.InferenceSession.create(await bytes(cfg.click), options);
  out.clickSessionMs = performance.now() - t1;
  const t2 = performance.now();
  const prepare = cfg.prepare ? await ort.InferenceSession.create(await bytes(cfg.prepare), options) : null;
  out.prepareSessionMs = performance.now() - t2;
  out.totalMs = performance.now() - t0;
  out.crossOriginIsolated = globalThis.crossOriginIsolated;
  void click; void prepare;
  window.__result = out;
}
main().catch((e) => { window.__error = String(e && e.stack || e); });
