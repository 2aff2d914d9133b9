// The message history's scroll position: a conversation opens at its
// newest message, and a new one is followed only by an agent who was
// already reading the end (one reading older messages is not moved).

/** How far from the bottom still counts as at it (a message's last line half shown, rounding). */
export const NEAR_BOTTOM_PX = 40;

/** Whether `el` is scrolled to (or within [`NEAR_BOTTOM_PX`] of) its end. */
export function nearBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= NEAR_BOTTOM_PX;
}

/** Scrolls `el` to its end (the browser stops at the furthest it can go). */
export function toBottom(el: HTMLElement) {
  el.scrollTop = el.scrollHeight;
}
