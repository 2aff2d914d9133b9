// The teammate a supervisor chose for each team conversation's Assign
// (TeamPanel), across the panel's re-reads.
import type { ConversationSummary } from "../bindings/ConversationSummary";

/**
 * The choices still good after a re-read moved the list from `before` to
 * `after`: one for a conversation whose owner changed (another agent took
 * it) or whose chosen teammate is no longer `offered` goes back to none
 * (""), so Assign cannot take the chat from whoever just got it; one for a
 * conversation no longer listed goes.
 */
export function keptChoices(
  chosen: Record<number, string>,
  before: ConversationSummary[] | null,
  after: ConversationSummary[],
  offered: (c: ConversationSummary) => { id: number }[],
): Record<number, string> {
  const kept: Record<number, string> = {};
  for (const c of after) {
    const choice = chosen[c.id];
    if (choice === undefined) continue;
    const was = before?.find((b) => b.id === c.id);
    const same = was !== undefined && was.owner === c.owner;
    kept[c.id] = same && offered(c).some((a) => String(a.id) === choice) ? choice : "";
  }
  return kept;
}
