import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/client";
import { messageOf, problemsOf } from "../src/api/work";

describe("messages of failed requests", () => {
  it("reads an error's message, and anything else thrown as text", () => {
    expect(messageOf(new Error("network down"))).toBe("network down");
    expect(messageOf("plain text")).toBe("plain text");
    expect(messageOf(404)).toBe("404");
  });

  it("prefers the located problems of an API error, else its message", () => {
    const located = new ApiError(400, { problems: ["images[0]: not found", "assignee: unknown"] }, "Bad request");
    expect(problemsOf(located)).toEqual(["images[0]: not found", "assignee: unknown"]);
    expect(problemsOf(new ApiError(403, { detail: "Forbidden" }, "Forbidden"))).toEqual(["Forbidden"]);
  });
});
