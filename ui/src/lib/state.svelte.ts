// Reactive UI state: a mirror of the engine's view, refreshed on events.
// No decisions are made here; the engine decides, this only reflects it.
import { commands, onShellEvent, errorMessage, type ShellEvent } from "./api";
import type { AppView } from "../bindings/AppView";
import type { ConversationDetail } from "../bindings/ConversationDetail";
import type { AgentAction } from "../bindings/AgentAction";
import type { ConversationId } from "../bindings/ConversationId";
import type { KeptSession } from "../bindings/KeptSession";
import { DraftSaver } from "./drafts";

/** What a read must cover beyond the list (as `view_changed` says it). */
export type ViewScopeChange = { all: boolean; conversations: ConversationId[] };
const EVERYTHING: ViewScopeChange = { all: true, conversations: [] };
const LIST_ONLY: ViewScopeChange = { all: false, conversations: [] };

export const SESSION_REFUSED =
  "The hub ended your session (it expired, was revoked, or you signed out elsewhere). Sign in again.";

/** Why the session kept from the last run could not be resumed. */
export const resumeFailed = (why: string) => `Your session could not be resumed (${why}). Sign in to continue.`;

export type Toast = { id: number; conversationId: number; title: string; body: string; until: number };

class UiState {
  signedIn = $state(false);
  // Raw, not deeply proxied: each read replaces the whole value and nothing
  // mutates it in place, so per-field signals would only be allocated and
  // dropped on every refresh (memory the webview carries all day).
  view = $state.raw<AppView | null>(null);
  detail = $state.raw<ConversationDetail | null>(null);
  error = $state<string | null>(null);
  /** The offer the shell brought the window forward for (tray, notification), if any. */
  focusedOffer = $state<number | null>(null);
  /** A reply the engine gave back after a failed send (the composer takes it). */
  restoredDraft = $state<{ conversationId: ConversationId; draft: string } | null>(null);
  notice = $state<string | null>(null);
  /** Why the sign-in form is back (the hub ended the session), if it says. */
  signInNotice = $state<string | null>(null);
  /** The session kept from the last run, while it is being resumed. */
  resuming = $state<{ username: string; hubUrl: string } | null>(null);
  toasts = $state<Toast[]>([]);
  /** Screen-reader announcements (assertive for offers). */
  announcement = $state("");
  /** The OS preference from the shell (XDG portal on Linux), if known. */
  systemDark = $state<boolean | null>(null);
  now = $state(Date.now());
  private nextToast = 1;
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor() {
    // Start or stop the clock whenever offers or toasts come and go.
    $effect.root(() => {
      $effect(() => {
        void this.clockNeeded;
        this.syncClock();
      });
    });
  }

  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  // What the next read must take beyond the list: every conversation, or
  // these (the open one is read only if it is among them).
  private rereadAll = false;
  private rereadIds = new Set<ConversationId>();

  /**
   * Re-reads the view: the list, and the open conversation if `scope`
   * (all by default) may have changed it. Events arriving while a read is
   * in flight are folded into one more read after it: a flood of events
   * costs two reads, not one per event.
   */
  refresh(scope: ViewScopeChange = EVERYTHING): Promise<void> {
    if (scope.all) this.rereadAll = true;
    for (const id of scope.conversations) this.rereadIds.add(id);
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        const wanted = { all: this.rereadAll, conversations: this.rereadIds };
        this.rereadAll = false;
        this.rereadIds = new Set();
        await this.load(wanted);
      } while (this.refreshAgain);
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  // Counts sign-outs: a view read answered before the session ended must
  // not bring the main screen back over the sign-in form.
  private signOuts = 0;

  private async load(wanted: { all: boolean; conversations: Set<ConversationId> }) {
    const epoch = this.signOuts;
    try {
      // One round trip: the engine decides whether the open conversation
      // needs reading again (view::view_update).
      const update = await commands.viewUpdate({
        shown: this.detail?.summary.id ?? null,
        all: wanted.all,
        changed: [...wanted.conversations],
      });
      if (epoch !== this.signOuts) return;
      this.view = update.view;
      this.signedIn = true;
      if (update.detail.kind === "shown") {
        this.detail = update.detail.detail;
      } else if (update.detail.kind === "nothing") {
        this.detail = null;
      }
    } catch (e) {
      const err = e as { code?: string };
      if (err?.code === "not_signed_in") {
        this.signedIn = false;
        this.view = null;
        this.detail = null;
      } else {
        this.error = errorMessage(e);
      }
    }
  }

  async act(action: AgentAction) {
    try {
      await commands.act(action);
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  /** Drafts are saved as the agent types (lib/drafts.ts: no debounce window to lose). */
  readonly drafts = new DraftSaver((id, text) => this.act({ action: "set_draft", conversation_id: id, text }));

  /** Sends a reply once no draft save is in flight (a late save would bring the draft back). */
  async send(conversationId: ConversationId, text: string) {
    await this.drafts.settle(conversationId);
    await this.act({ action: "send_message", conversation_id: conversationId, text });
  }

  handle(e: ShellEvent) {
    switch (e.type) {
      case "signed_in":
        this.signedIn = true;
        break;
      case "signed_out":
        this.signOuts++;
        this.signedIn = false;
        this.view = null;
        this.detail = null;
        this.signInNotice = e.refused ? SESSION_REFUSED : null;
        return;
      case "kept_session":
        this.keptSession(e.kept);
        return;
      case "cache_recovered":
        this.notice = "The local cache was unreadable and has been rebuilt from the hub.";
        break;
      case "ui": {
        const ev = e.event;
        if (ev.type === "offer_shown") {
          this.announcement = ev.headline;
        } else if (ev.type === "toast") {
          const id = this.nextToast++;
          this.toasts = [
            ...this.toasts,
            { id, conversationId: ev.conversation_id, title: ev.title, body: ev.body, until: Date.now() + ev.duration_ms },
          ];
        } else if (ev.type === "command_failed") {
          this.error = `${ev.what}: ${ev.error.message}`;
        } else if (ev.type === "draft_restored") {
          this.restoredDraft = { conversationId: ev.conversation_id, draft: ev.draft };
        } else if (ev.type === "banner") {
          this.announcement = ev.banner.message;
        }
        break;
      }
      case "system_theme":
        this.systemDark = e.dark;
        return;
      case "view_changed":
        void this.refresh({ all: e.all, conversations: e.conversations });
        return;
      case "focus":
        // The alert shows that offer, not only the newest (a tray "Reject
        // (give a reason)…" for an older one must reach it).
        this.focusedOffer = e.target?.kind === "offer" ? e.target.id : null;
        break;
    }
    // The engine's events that come one by one (above) change the list
    // only; the shell folds anything more into a view_changed.
    void this.refresh(e.type === "ui" ? LIST_ONLY : EVERYTHING);
  }

  tick() {
    this.now = Date.now();
    if (this.toasts.some((t) => t.until <= this.now)) {
      this.toasts = this.toasts.filter((t) => t.until > this.now);
    }
  }

  dismissToast(id: number) {
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }

  /** Whether a countdown or a toast is on screen (the clock must run). */
  get clockNeeded(): boolean {
    return (this.view?.offers.length ?? 0) > 0 || this.toasts.length > 0;
  }

  /**
   * Runs the half-second clock only while something on screen counts down
   * or expires: an idle agent's app must not wake the CPU (issue 7).
   */
  syncClock() {
    if (this.clockNeeded && this.clock === undefined) {
      this.now = Date.now();
      this.clock = setInterval(() => this.tick(), 500);
    } else if (!this.clockNeeded && this.clock !== undefined) {
      clearInterval(this.clock);
      this.clock = undefined;
    }
  }

  private keptSession(kept: KeptSession) {
    this.resuming = kept.state === "resuming" ? { username: kept.username, hubUrl: kept.hub_url } : null;
    if (kept.state === "refused") this.signInNotice = SESSION_REFUSED;
    else if (kept.state === "failed") this.signInNotice = resumeFailed(kept.message);
  }

  async start() {
    await onShellEvent((e) => this.handle(e));
    try {
      this.systemDark = await commands.systemTheme();
    } catch {
      // Unknown: the webview's prefers-color-scheme decides.
    }
    // Read after listening: the resume of the kept session may have
    // started, or ended in a refusal, before the page listened.
    try {
      this.keptSession((await commands.lastLogin()).kept_session);
    } catch {
      // No answer: the form shows no reason.
    }
    await this.refresh();
  }
}

export const ui = new UiState();
