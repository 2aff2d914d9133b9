import { describe, expect, it } from "vitest";
import type { MessageLine } from "../bindings/MessageLine";
import { keepDropped } from "./earlier";

const line = (id: number): MessageLine =>
  ({ id, conversation_id: 1, author: { kind: "customer" }, text: `m${id}`, sent_at: id, command_id: null, time: "" }) as unknown as MessageLine;
const ids = (ms: MessageLine[]) => ms.map((m) => m.id);

describe("keepDropped", () => {
  it("keeps nothing while no earlier messages are shown or read", () => {
    expect(keepDropped([], [line(3), line(4)], [line(4), line(5)], false)).toEqual([]);
  });

  it("keeps what drops off while the first page is being read", () => {
    expect(ids(keepDropped([], [line(3), line(4)], [line(4), line(5)], true))).toEqual([3]);
  });

  it("moves messages that left the recent window to the end of the earlier ones", () => {
    const earlier = [line(1), line(2)];
    const kept = keepDropped(earlier, [line(3), line(4), line(5)], [line(5), line(6)], true);
    expect(ids(kept)).toEqual([1, 2, 3, 4]);
  });

  it("leaves the earlier messages as they are when the window only grew", () => {
    const earlier = [line(1), line(2)];
    expect(keepDropped(earlier, [line(3)], [line(3), line(4)], true)).toBe(earlier);
  });
});
