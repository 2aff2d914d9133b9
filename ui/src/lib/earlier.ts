// Earlier messages the agent asked to see, above the conversation's recent
// ones (the engine's window: the newest 200 it keeps, or fewer).

import type { MessageLine } from "../bindings/MessageLine";

/**
 * The earlier messages after the recent window moved on from `before` to
 * `now`: messages that dropped off its front (new ones pushed them out,
 * or a resync sent fewer) join the end of `earlier`, so the history stays
 * whole. With no earlier messages shown there is nothing to keep.
 */
export function keepDropped(earlier: MessageLine[], before: MessageLine[], now: MessageLine[]): MessageLine[] {
  if (earlier.length === 0 || now.length === 0) return earlier;
  const first = now[0].id;
  const last = earlier[earlier.length - 1].id;
  const dropped = before.filter((m) => m.id > last && m.id < first);
  return dropped.length === 0 ? earlier : [...earlier, ...dropped];
}
