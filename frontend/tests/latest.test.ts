import { describe, expect, it } from "vitest";
import { LoadTickets } from "../src/ui/latest";

describe("load tickets", () => {
  it("let only the newest of overlapping loads show its result", async () => {
    const tickets = new LoadTickets();
    const shown: string[] = [];
    const load = async (name: string, ms: number): Promise<void> => {
      const isLatest = tickets.take();
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (isLatest()) shown.push(name);
    };
    // The page's first load answers after the filtered one started and finished.
    await Promise.all([load("unfiltered", 30), load("filtered", 5)]);
    expect(shown).toEqual(["filtered"]);
    await load("next", 0);
    expect(shown).toEqual(["filtered", "next"]);
  });
});
