import { describe, expect, it } from "vitest";
import type { RegistryModel } from "../src/api/types";
import { baseModelKey, megabytes, modelStateText } from "../src/ui/modelState";

const model = (over: Partial<RegistryModel>): RegistryModel => ({
  key: "mobile_sam",
  title: "MobileSAM",
  state: "absent",
  bytes_done: 0,
  bytes_total: 40_728_226,
  percent: null,
  error: "",
  downloadable: true,
  size_bytes: 40_728_226,
  runs_on: "CPU",
  family: "sam",
  licence: "Apache-2.0",
  source: "",
  automatic_defaults: {},
  notice: "",
  ...over,
});

describe("model availability text", () => {
  it("words every state, with bytes and percent while downloading and the reason on failure", () => {
    expect(modelStateText(model({}))).toBe("not downloaded");
    expect(modelStateText(model({ state: "downloading", bytes_done: 20_364_113, percent: 50 }))).toBe(
      "downloading 20 MB of 41 MB (50 %)",
    );
    expect(modelStateText(model({ state: "verifying" }))).toBe("verifying the checksum");
    expect(modelStateText(model({ state: "present" }))).toBe("on this server");
    expect(modelStateText(model({ state: "failed", error: "The download host cannot be reached." }))).toBe(
      "download failed: The download host cannot be reached.",
    );
  });

  it("never shows a server command for a missing bundled model", () => {
    const text = modelStateText(model({ downloadable: false, error: "This model ships with the server but its checkpoint is missing." }));
    expect(text).not.toContain("manage.py");
  });

  it("finds the registry model behind a fine-tuned version key", () => {
    expect(baseModelKey("sam_tiny-p3v12")).toBe("sam_tiny");
    expect(baseModelKey("sam_tiny-p3v12e")).toBe("sam_tiny"); // a version with its own encoder
    expect(baseModelKey("sam2.1_hiera_t-p4v1e")).toBe("sam2.1_hiera_t");
    expect(baseModelKey("mobile_sam")).toBe("mobile_sam");
    expect(megabytes(null)).toBe("—");
    expect(megabytes(1_500_000)).toBe("1.5 MB");
  });
});
