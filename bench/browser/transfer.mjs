// Decode time of serialized image embeddings in the browser: fp32 (official demo: raw float32),
// fp16 (default; native Float16Array when the browser has it, else a 64k lookup table) and
// int8 (C float32 per-channel scales, then C*h*w int8). Config: /data/transfer.json.
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: s[Math.floor(s.length / 2)], min: s[0] };
}

function halfTable() {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * 2 ** -14 * (frac / 1024);
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return table;
}

async function main() {
  const cfg = await (await fetch('/data/transfer.json')).json();
  const [C, h, w] = cfg.shape;
  const n = C * h * w;
  const buffers = {};
  const fetchMs = {};
  for (const [fmt, file] of Object.entries(cfg.files)) {
    const t = performance.now();
    buffers[fmt] = await (await fetch(`/data/${file}`)).arrayBuffer();
    fetchMs[fmt] = performance.now() - t;
  }
  const out = new Float32Array(n);
  const table = halfTable();
  const decoders = {
    fp32: (buf) => new Float32Array(buf), // a view, as the official demo's npy loader does
    fp16_native: typeof Float16Array === 'function'
      ? (buf) => { out.set(new Float16Array(buf)); return out; } : null,
    fp16_table: (buf) => {
      const u16 = new Uint16Array(buf);
      for (let i = 0; i < n; i++) out[i] = table[u16[i]];
      return out;
    },
    int8: (buf) => {
      const scales = new Float32Array(buf, 0, C);
      const q = new Int8Array(buf, 4 * C, n);
      const plane = h * w;
      for (let c = 0; c < C; c++) {
        const s = scales[c];
        const base = c * plane;
        for (let i = base; i < base + plane; i++) out[i] = q[i] * s;
      }
      return out;
    },
  };
  const reference = new Float32Array(buffers.fp32.slice(0));
  const result = { user_agent: navigator.userAgent, fetch_ms: fetchMs, decode_ms: {}, max_abs_diff: {} };
  for (const [name, fn] of Object.entries(decoders)) {
    if (!fn) continue;
    const buf = buffers[name.startsWith('fp16') ? 'fp16' : name];
    const times = [];
    for (let r = 0; r < cfg.repeats + 2; r++) {
      const t = performance.now();
      fn(buf);
      if (r >= 2) times.push(performance.now() - t);
    }
    const decoded = fn(buf);
    let diff = 0;
    for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(decoded[i] - reference[i]));
    result.decode_ms[name] = stats(times);
    result.max_abs_diff[name] = diff;
  }
  window.__result = result;
}

main().catch((e) => { window.__error = String(e && e.stack || e); });
