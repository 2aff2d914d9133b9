import { describe, it, expect } from "vitest";
import { DraftSaver } from "./drafts";

// A save the test finishes by hand, to hold one in flight.
function manualSaves() {
  const calls: { id: number; text: string; done: () => void }[] = [];
  const save = (id: number, text: string) =>
    new Promise<void>((resolve) => calls.push({ id, text, done: resolve }));
  return { calls, save };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("DraftSaver", () => {
  it("saves the first change at once, with no debounce window", () => {
    const { calls, save } = manualSaves();
    new DraftSaver(save).set(7, "h");
    expect(calls.map((c) => [c.id, c.text])).toEqual([[7, "h"]]);
  });

  it("keeps one save in flight and sends only the newest text after it", async () => {
    const { calls, save } = manualSaves();
    const saver = new DraftSaver(save);
    saver.set(7, "h");
    saver.set(7, "he");
    saver.set(7, "hel");
    saver.set(8, "other");
    expect(calls).toHaveLength(1);
    calls[0].done();
    await tick();
    expect(calls.map((c) => c.text)).toEqual(["h", "hel"]);
    calls[1].done();
    await tick();
    // The other conversation's change is not lost behind the first one's.
    expect(calls.map((c) => [c.id, c.text])).toEqual([
      [7, "h"],
      [7, "hel"],
      [8, "other"],
    ]);
  });

  it("settle drops the unsaved text and waits for the save in flight", async () => {
    const { calls, save } = manualSaves();
    const saver = new DraftSaver(save);
    saver.set(7, "draft");
    saver.set(7, "draft that was sent");
    let settled = false;
    const settling = saver.settle(7).then(() => (settled = true));
    await tick();
    expect(settled).toBe(false);
    calls[0].done();
    await settling;
    // The sent text is not saved as a draft after the send.
    expect(calls.map((c) => c.text)).toEqual(["draft"]);
  });

  it("goes on after a failed save", async () => {
    let n = 0;
    const texts: string[] = [];
    const saver = new DraftSaver(async (_id, text) => {
      texts.push(text);
      if (n++ === 0) throw new Error("store busy");
    });
    saver.set(1, "a");
    saver.set(1, "ab");
    await saver.settle(2);
    expect(texts).toEqual(["a", "ab"]);
  });

  it("sends nothing waiting behind the save in flight once the session's drafts are forgotten", async () => {
    const { calls, save } = manualSaves();
    const saver = new DraftSaver(save);
    saver.set(7, "h");
    saver.set(7, "he");
    saver.forgetPending();
    calls[0].done();
    await tick();
    expect(calls.map((c) => [c.id, c.text])).toEqual([[7, "h"]]);
  });
});
