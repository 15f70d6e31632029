import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "../../src/annotate");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

describe("annotate/ package", () => {
  it("keeps every module under 400 lines", () => {
    const long = sources(ROOT)
      .map((file) => [file, readFileSync(file, "utf8").split("\n").length] as const)
      .filter(([, lines]) => lines > 400);
    expect(long).toEqual([]);
  });

  it("keeps the core free of the view: it imports nothing from view/ or Lit", () => {
    for (const file of sources(join(ROOT, "core"))) {
      const imports = [...readFileSync(file, "utf8").matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
      expect(imports.filter((path) => path === "lit" || path?.includes("/view/") || path?.includes("/ui/")), file).toEqual([]);
    }
  });
});
