import { describe, expect, it } from "vitest";
import { waitingChatsKey } from "./waiting";
import type { AppView } from "../bindings/AppView";

const offer = (id: number, kind: string) => ({ offer: { id, origin: { kind } } });
const view = (offers: unknown[], conversations: number[]) =>
  ({ offers, conversations: conversations.map((id) => ({ id })) }) as unknown as AppView;

describe("waitingChatsKey", () => {
  it("changes with team messages and own conversations, not with other offers or order", () => {
    const base = waitingChatsKey(view([offer(3, "team_message")], [7]));
    expect(waitingChatsKey(view([offer(3, "team_message")], [7]))).toBe(base);
    // Another kind of offer (a transfer to this agent) says nothing of the list.
    expect(waitingChatsKey(view([offer(3, "team_message"), offer(4, "transfer")], [7]))).toBe(base);
    // A customer wrote (a new team message), or a teammate took it (withdrawn).
    expect(waitingChatsKey(view([offer(3, "team_message"), offer(5, "team_message")], [7]))).not.toBe(base);
    expect(waitingChatsKey(view([], [7]))).not.toBe(base);
    // The agent took one (it is theirs now).
    expect(waitingChatsKey(view([offer(3, "team_message")], [7, 8]))).not.toBe(base);
    expect(waitingChatsKey(view([offer(5, "team_message"), offer(3, "team_message")], [8, 7]))).toBe(
      waitingChatsKey(view([offer(3, "team_message"), offer(5, "team_message")], [7, 8])),
    );
    expect(waitingChatsKey(null)).toBe("");
  });
});
