// What in the engine's view says the team's waiting chats may have changed,
// so the Waiting panel reads them again at once instead of at its next
// timed read: a team message offered or withdrawn (a customer wrote, a
// teammate took the chat), or a conversation that became or stopped being
// the agent's own.
import type { AppView } from "../bindings/AppView";

/** A key that changes whenever the view's team messages or own conversations do. */
export function waitingChatsKey(view: AppView | null): string {
  if (view == null) return "";
  const teamMessages = view.offers
    .filter((o) => o.offer.origin.kind === "team_message")
    .map((o) => o.offer.id)
    .sort((a, b) => a - b);
  const own = view.conversations.map((c) => c.id).sort((a, b) => a - b);
  return `${teamMessages.join(",")}|${own.join(",")}`;
}
