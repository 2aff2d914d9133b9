// Reads that can be repeated before the last one finished (a panel opened
// again, a list read again) and so finish out of order: only the newest
// read's answer, or its failure, is delivered.

/** Wraps `read` so that each call delivers only if no later call began. */
export function newestOnly<T>(read: () => Promise<T>) {
  let started = 0;
  return async (answered: (value: T) => void, failed: (error: unknown) => void) => {
    const mine = ++started;
    try {
      const value = await read();
      if (mine === started) answered(value);
    } catch (e) {
      if (mine === started) failed(e);
    }
  };
}

/**
 * How often a panel that lists what changes all day (the team's presences
 * and conversations, the chats waiting for the team) reads it again while
 * it is open. Only while open: the app at rest polls nothing.
 */
export const OPEN_PANEL_REFRESH_MS = 5000;

/** Calls `read` every [`OPEN_PANEL_REFRESH_MS`]; returns the stop (for an `$effect`). */
export function readWhileOpen(read: () => void): () => void {
  const timer = setInterval(read, OPEN_PANEL_REFRESH_MS);
  return () => clearInterval(timer);
}
