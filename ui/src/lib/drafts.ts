// Saving drafts as the agent types, without a debounce window.
//
// A debounce (the composer used to wait 300 ms after the last keystroke)
// loses what was typed in that window if the app quits or crashes. Here
// every change is handed on at once; while one save is in flight, later
// changes wait and only the newest text per conversation is sent after it.
// So at most one save is in flight, and what can be lost is one IPC round
// trip's worth (about a millisecond), not the debounce window.

export type SaveDraft = (conversationId: number, text: string) => Promise<void>;

export class DraftSaver {
  private inFlight: Promise<void> | null = null;
  // Newest unsaved text per conversation, in the order first changed.
  private readonly pending = new Map<number, string>();

  constructor(private readonly save: SaveDraft) {}

  /** Saves `text` as the draft of `conversationId`, now or right after the save in flight. */
  set(conversationId: number, text: string): void {
    this.pending.set(conversationId, text);
    this.pump();
  }

  /**
   * Forgets the unsaved draft of `conversationId` (its message was sent)
   * and resolves once no save is in flight, so that a save started
   * before cannot land after what the caller does next.
   */
  async settle(conversationId: number): Promise<void> {
    this.pending.delete(conversationId);
    while (this.inFlight) await this.inFlight;
  }

  /**
   * Drops every unsaved draft: the session ended, and a save sent after it
   * would reach no session (or the next one, whose conversation numbers
   * name other customers). A save already in flight cannot be called back.
   */
  forgetPending(): void {
    this.pending.clear();
  }

  private pump(): void {
    if (this.inFlight) return;
    const next = this.pending.entries().next();
    if (next.done) return;
    const [id, text] = next.value;
    this.pending.delete(id);
    this.inFlight = this.save(id, text)
      .catch(() => undefined) // the caller reports its own errors
      .finally(() => {
        this.inFlight = null;
        this.pump();
      });
  }
}
