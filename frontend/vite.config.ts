import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(here, "../static/app");
const ortDist = resolve(here, "node_modules/onnxruntime-web/dist");

/** onnxruntime-web loads its WASM glue and binary at run time from `env.wasm.wasmPaths`
 * (static/app/ort/). The WebGPU build (asyncify) is large, so it is copied only when
 * SAM_WEBGPU=1; the Django shell tells the worker whether it is there. */
function copyOrtFiles(): Plugin {
  let target = resolve(outDir, "ort");
  return {
    name: "copy-ort-files",
    apply: "build",
    configResolved(config) {
      target = resolve(config.build.outDir, "ort");
    },
    closeBundle() {
      mkdirSync(target, { recursive: true });
      const files = ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];
      if (process.env["SAM_WEBGPU"] === "1") {
        files.push("ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm");
      }
      for (const file of files) {
        const source = resolve(ortDist, file);
        if (!existsSync(source)) throw new Error(`missing ${source}`);
        copyFileSync(source, resolve(target, file));
      }
    },
  };
}

export default defineConfig({
  base: "/static/app/",
  resolve: {
    alias: {
      // The builds that load the WASM glue from wasmPaths instead of inlining it: the
      // glue must be a real file so that its pthread workers can import it.
      "onnxruntime-web/wasm": resolve(ortDist, "ort.wasm.min.mjs"),
      "onnxruntime-web/webgpu": resolve(ortDist, "ort.webgpu.min.mjs"),
    },
  },
  build: {
    outDir,
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      input: resolve(here, "src/main.ts"),
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "chunks/[name]-[hash].js",
        assetFileNames: (info) =>
          (info.names?.[0] ?? "").endsWith(".css") ? "app.css" : "assets/[name]-[hash][extname]",
      },
    },
  },
  worker: {
    format: "es",
    rollupOptions: {
      output: { entryFileNames: "workers/[name]-[hash].js", chunkFileNames: "workers/[name]-[hash].js" },
    },
  },
  plugins: [copyOrtFiles()],
  test: {
    include: ["tests/**/*.test.ts", "src/**/*.test.ts"],
    environment: "node",
    coverage: {
      provider: "v8",
      // The workspace's DOM-free core and the decoder worker's message plumbing: `npm test`
      // fails when their line coverage drops below the threshold.
      include: ["src/annotate/core/**/*.ts", "src/sam/decoderClient.ts"],
      reporter: ["text-summary", "text"],
      thresholds: { lines: 80 },
    },
  },
});
