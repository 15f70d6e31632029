import { describe, expect, it } from "vitest";
import { ApiError } from "./client";
import { problemsOf } from "./work";

describe("problemsOf", () => {
  it("lists the server's located problems", () => {
    const body = { detail: "COCO import rejected: a (and 1 more)", problems: ["annotations.json: a", "annotations.json: b"] };
    expect(problemsOf(new ApiError(400, body, body.detail))).toEqual(["annotations.json: a", "annotations.json: b"]);
  });

  it("falls back to the message", () => {
    expect(problemsOf(new ApiError(400, { detail: "no" }, "no"))).toEqual(["no"]);
    expect(problemsOf(new Error("network error"))).toEqual(["network error"]);
    expect(problemsOf("odd")).toEqual(["odd"]);
  });
});
