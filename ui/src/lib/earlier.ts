// Earlier messages the agent asked to see, above the conversation's recent
// ones (the engine's window: the newest 200 it keeps, or fewer).

import type { MessageLine } from "../bindings/MessageLine";

/**
 * The earlier messages after the recent window moved on from `before` to
 * `now`: messages that dropped off its front (new ones pushed them out,
 * or a resync sent fewer) join the end of `earlier`, so the history stays
 * whole. `keeping`: earlier messages are shown or being read (a page
 * asked for before the window moved ends where the window began then);
 * otherwise there is nothing to keep.
 */
export function keepDropped(
  earlier: MessageLine[],
  before: MessageLine[],
  now: MessageLine[],
  keeping: boolean,
): MessageLine[] {
  if (!keeping || now.length === 0) return earlier;
  const first = now[0].id;
  const last = earlier.length > 0 ? earlier[earlier.length - 1].id : -Infinity;
  const dropped = before.filter((m) => m.id > last && m.id < first);
  return dropped.length === 0 ? earlier : [...earlier, ...dropped];
}
