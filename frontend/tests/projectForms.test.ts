import { describe, expect, it } from "vitest";
import { LABEL_PALETTE, boundAttributes, boundProblem, formErrors, nextLabelColor } from "../src/ui/forms";
import { projectSectionHref } from "../src/ui/projectNav";
import { parseRoute } from "../src/ui/router";

describe("server errors as form errors", () => {
  it("puts DRF's nested validation errors next to their fields", () => {
    const body = {
      detail: "Invalid input.",
      errors: { name: ["This field is required."], labels: [{}, { color: ["Ensure this field has no more than 7 characters."] }] },
    };
    const errors = formErrors(400, body, "fallback");
    expect(errors.general).toBe("Please correct the marked fields.");
    expect(errors.fields.get("name")).toBe("This field is required.");
    expect(errors.fields.get("labels.1.color")).toBe("Ensure this field has no more than 7 characters.");
    expect(errors.fields.size).toBe(2);
  });

  it("keeps a rule's message (no field) as the general one", () => {
    const errors = formErrors(400, { detail: "A label named 'cat' exists already." }, "x");
    expect(errors.general).toBe("A label named 'cat' exists already.");
    expect(errors.fields.size).toBe(0);
  });

  it("keys the settings check's problems by setting", () => {
    const body = {
      detail: "Invalid project settings.",
      problems: ["auto_points_per_side: expected an integer from 1 to 64, got 65", "something else"],
    };
    const errors = formErrors(400, body, "x");
    expect(errors.fields.get("settings.auto_points_per_side")).toBe("expected an integer from 1 to 64, got 65");
    expect(errors.general).toBe("Invalid project settings. something else");
  });

  it("joins non-field errors into the general message and survives odd bodies", () => {
    const errors = formErrors(400, { detail: "Invalid input.", errors: { non_field_errors: ["Nope."] } }, "x");
    expect(errors.general).toBe("Invalid input. Nope.");
    expect(formErrors(0, null, "network error: down").general).toBe("network error: down");
    expect(formErrors(502, "<html>", "").general).toBe("HTTP 502");
  });
});

describe("label colours", () => {
  it("takes the first palette colour not in use, then cycles", () => {
    expect(nextLabelColor([])).toBe(LABEL_PALETTE[0]);
    expect(nextLabelColor([LABEL_PALETTE[0].toUpperCase()])).toBe(LABEL_PALETTE[1]);
    const all = [...LABEL_PALETTE, "#000000"];
    expect(nextLabelColor(all)).toBe(LABEL_PALETTE[all.length % LABEL_PALETTE.length]);
  });
});

describe("bounded settings", () => {
  const points = { type: "integer" as const, minimum: 1, maximum: 64 };
  const iou = { type: "number" as const, minimum: 0, maximum: 1 };
  it("gives input attributes from the server's bounds", () => {
    expect(boundAttributes(points)).toEqual({ min: "1", max: "64", step: "1" });
    expect(boundAttributes(iou).step).toBe("0.01");
  });
  it("reports what is out of bounds, and accepts an empty field as unset", () => {
    expect(boundProblem(points, "")).toBeNull();
    expect(boundProblem(points, "64")).toBeNull();
    expect(boundProblem(points, "65")).toBe("From 1 to 64.");
    expect(boundProblem(points, "2.5")).toBe("Enter a whole number.");
    expect(boundProblem(iou, "0.5")).toBeNull();
    expect(boundProblem(iou, "-0.1")).toBe("From 0 to 1.");
    expect(boundProblem(iou, "abc")).toBe("Enter a number.");
  });
});

describe("project navigation", () => {
  it("links every section, and the router knows the new pages", () => {
    expect(projectSectionHref(7, "images")).toBe("/projects/7");
    expect(projectSectionHref(7, "settings")).toBe("/projects/7/settings");
    expect(projectSectionHref(7, "queue")).toBe("/projects/7/queue");
    expect(parseRoute("/projects/7/settings")).toEqual({ page: "settings", projectId: 7 });
    expect(parseRoute("/projects/7/members")).toEqual({ page: "members", projectId: 7 });
  });
});
