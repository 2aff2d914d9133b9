// Reactive UI state: a mirror of the engine's view, refreshed on events.
// No decisions are made here; the engine decides, this only reflects it.
import { commands, onShellEvent, errorMessage, type ShellEvent } from "./api";
import type { AppView } from "../bindings/AppView";
import type { ConversationDetail } from "../bindings/ConversationDetail";
import type { AgentAction } from "../bindings/AgentAction";
import type { ConversationId } from "../bindings/ConversationId";
import type { KeptSession } from "../bindings/KeptSession";
import type { OfferCard } from "../bindings/OfferCard";
import type { OfferId } from "../bindings/OfferId";
import { DraftSaver } from "./drafts";

/** What a read must cover beyond the list (as `view_changed` says it). */
export type ViewScopeChange = { all: boolean; conversations: ConversationId[] };
const EVERYTHING: ViewScopeChange = { all: true, conversations: [] };
const LIST_ONLY: ViewScopeChange = { all: false, conversations: [] };

export const SESSION_REFUSED =
  "The hub ended your session (it expired, was revoked, or you signed out elsewhere). Sign in again.";

/** Why the session kept from the last run could not be resumed. */
export const resumeFailed = (why: string) => `Your session could not be resumed (${why}). Sign in to continue.`;

/** A screen-reader announcement; `seq` tells a repeat of the same words from the one before. */
export type Announcement = { text: string; seq: number };

export type Toast = { id: number; conversationId: number; title: string; body: string; until: number };

/**
 * Pending offers, the one that expires soonest first: it is the one that
 * lapses first (and a lapse sets the agent Inactive). Equal deadlines keep
 * the view's order.
 */
export function bySoonest(offers: OfferCard[]): OfferCard[] {
  return [...offers].sort((a, b) => a.deadline - b.deadline);
}

class UiState {
  signedIn = $state(false);
  // Raw, not deeply proxied: each read replaces the whole value and nothing
  // mutates it in place, so per-field signals would only be allocated and
  // dropped on every refresh (memory the webview carries all day).
  view = $state.raw<AppView | null>(null);
  detail = $state.raw<ConversationDetail | null>(null);
  error = $state<string | null>(null);
  /**
   * The newest command the hub (or the engine) refused, numbered: a panel
   * that sent one watches for its own (`what`), even when the text is the
   * same as the last refusal's, which `error` would not show as a change.
   */
  lastFailure = $state.raw<{ seq: number; what: string; message: string; conversationId: number | null } | null>(null);
  /**
   * The offer the shell brought the window forward for (tray,
   * notification), or the agent chose among those waiting, if any.
   */
  focusedOffer = $state<OfferId | null>(null);
  /** Pending offers, soonest deadline first. */
  readonly offers = $derived(bySoonest(this.view?.offers ?? []));
  /** The offer in the alert card: the focused one while pending, else the one that expires soonest. */
  readonly shownOffer = $derived(this.offers.find((o) => o.offer.id === this.focusedOffer) ?? this.offers[0] ?? null);
  /** The other pending offers, soonest deadline first (each can be brought into the card). */
  readonly otherOffers = $derived(this.offers.filter((o) => o !== this.shownOffer));
  /** A reply the engine gave back after a failed send (the composer takes it). */
  restoredDraft = $state<{ conversationId: ConversationId; draft: string } | null>(null);
  notice = $state<string | null>(null);
  /** Why the sign-in form is back (the hub ended the session), if it says. */
  signInNotice = $state<string | null>(null);
  /** The session kept from the last run, while it is being resumed. */
  resuming = $state<{ username: string; hubUrl: string } | null>(null);
  toasts = $state<Toast[]>([]);
  /**
   * Screen-reader announcements: assertive for offers and banners, polite
   * for messages arriving in the open conversation. Each has a number of
   * its own: the live region shows it in a new node, so the same words
   * said twice (a second offer from the same customer) are read twice.
   */
  announcement = $state.raw<Announcement>({ text: "", seq: 0 });
  politeAnnouncement = $state.raw<Announcement>({ text: "", seq: 0 });
  /** The OS preference from the shell (XDG portal on Linux), if known. */
  systemDark = $state<boolean | null>(null);
  now = $state(Date.now());
  private nextToast = 1;
  private announced = 0;
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

  /** Says `text` to a screen reader, again if it is what was said last. */
  announce(text: string, polite = false) {
    const said = { text, seq: ++this.announced };
    if (polite) this.politeAnnouncement = said;
    else this.announcement = said;
  }

  /**
   * Announces the customer's messages that arrived in the conversation on
   * screen (the history itself is no live region: opening a conversation
   * must not read its whole thread aloud).
   */
  private announceArrivals(before: ConversationDetail | null, after: ConversationDetail) {
    if (before == null || before.summary.id !== after.summary.id) return;
    // Ids increase within the hub: an older message coming into the
    // list is not news.
    const newest = before.messages.reduce((max, m) => Math.max(max, m.id), -Infinity);
    const arrived = after.messages.filter((m) => m.id > newest && m.author.kind === "customer");
    if (arrived.length === 0) return;
    this.announce(`${after.summary.customer.name}: ${arrived.map((m) => m.text).join("\n")}`, true);
  }

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
        this.announceArrivals(this.detail, update.detail.detail);
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

  /** Hands `action` to the engine; false (and the error shown) if it could not. */
  async act(action: AgentAction): Promise<boolean> {
    try {
      await commands.act(action);
      return true;
    } catch (e) {
      this.error = errorMessage(e);
      return false;
    }
  }

  /** Drafts are saved as the agent types (lib/drafts.ts: no debounce window to lose). */
  readonly drafts = new DraftSaver(async (id, text) => {
    await this.act({ action: "set_draft", conversation_id: id, text });
  });

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
        this.clearSession();
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
          this.announce(ev.headline);
        } else if (ev.type === "toast") {
          // One toast per conversation: a newer one (more new messages)
          // replaces the older.
          const id = this.nextToast++;
          this.toasts = [
            ...this.toasts.filter((t) => t.conversationId !== ev.conversation_id),
            { id, conversationId: ev.conversation_id, title: ev.title, body: ev.body, until: Date.now() + ev.duration_ms },
          ];
        } else if (ev.type === "command_failed") {
          this.error = `${ev.what}: ${ev.error.message}`;
          this.lastFailure = {
            seq: (this.lastFailure?.seq ?? 0) + 1,
            what: ev.what,
            message: ev.error.message,
            conversationId: ev.conversation_id,
          };
        } else if (ev.type === "draft_restored") {
          this.restoredDraft = { conversationId: ev.conversation_id, draft: ev.draft };
        } else if (ev.type === "banner") {
          this.announce(ev.banner.message);
        }
        break;
      }
      case "start_at_login_failed":
        // The shell turned the setting off again: the re-read shows it.
        this.error = e.message;
        break;
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

  /**
   * Forgets what the page kept of the session that ended: a toast, a
   * restored reply, an announcement, a chosen offer or an error banner
   * must not greet the next agent to sign in on this machine.
   */
  private clearSession() {
    this.drafts.forgetPending();
    this.toasts = [];
    this.restoredDraft = null;
    this.announce("");
    this.announce("", true);
    this.focusedOffer = null;
    this.error = null;
    this.notice = null;
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

  /**
   * "Sign in instead" while a kept session is being resumed: the form
   * shows, and the shell drops that resume so it cannot take the window
   * over later with the previous agent's session.
   */
  signInInstead() {
    this.resuming = null;
    void commands.cancelResume().catch(() => {});
  }

  /**
   * Brings a pending offer into the alert card, and keeps it there while
   * it is pending: the agent chose it, or is answering it (Reject, a
   * reason typed), and a sooner offer must not take its place.
   */
  showOffer(id: OfferId) {
    this.focusedOffer = id;
    // The engine too: the global shortcut accepts what the card shows.
    void this.act({ action: "show_offer", offer_id: id });
  }

  /** Whether the agent holds the conversation (it is in the list). */
  holds(conversationId: ConversationId): boolean {
    return this.view?.conversations.some((c) => c.id === conversationId) ?? false;
  }

  /**
   * A toast clicked: it goes, and opens its conversation if the agent
   * still holds it; one taken over or rerouted since is no longer the
   * agent's to open (the engine would refuse: "no such conversation").
   */
  openToast(t: Toast) {
    this.dismissToast(t.id);
    if (this.holds(t.conversationId)) void this.act({ action: "open", conversation_id: t.conversationId });
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
