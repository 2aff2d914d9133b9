import { describe, it, expect, beforeEach, vi } from "vitest";
import { render, screen, fireEvent } from "@testing-library/svelte";
import { act } from "../test/mock-api";
import { HOSTILE, offer, detail, rows, appView } from "../test/fixtures";
import OfferAlert from "./OfferAlert.svelte";
import ConversationList from "./ConversationList.svelte";
import ChatPanel from "./ChatPanel.svelte";
import SignIn from "./SignIn.svelte";
import Toasts from "./Toasts.svelte";
import Banners from "./Banners.svelte";
import Settings from "./Settings.svelte";
import App from "../App.svelte";
import AlertApp from "../AlertApp.svelte";
import type { AgentSettings } from "../bindings/AgentSettings";
import { countdown, waited } from "../lib/format";
import { themeFor } from "../lib/theme.svelte";
import { ui, resumeFailed } from "../lib/state.svelte";
import { flushSync, tick } from "svelte";
import type { AppView } from "../bindings/AppView";
import type { OfferCard } from "../bindings/OfferCard";
import type { DetailUpdate } from "../bindings/DetailUpdate";
import { commands, type ShellEvent } from "../lib/api";

/** What the agent answered (accept, reject…): the card's act calls, less its telling the engine which offer it shows. */
function answers() {
  return act.mock.calls.map((c) => c[0] as { action: string }).filter((a) => a.action !== "show_offer");
}

declare global {
  interface Window {
    __xss?: number;
  }
}

function assertInert(container: HTMLElement) {
  expect(container.querySelector("img")).toBeNull();
  expect(container.querySelector("script")).toBeNull();
  expect(window.__xss).toBeUndefined();
}

beforeEach(() => {
  act.mockClear();
  delete window.__xss;
});

describe("OfferAlert", () => {
  it("shows the template's details as text, with countdown, and accepts", async () => {
    const { container } = render(OfferAlert, { offer: offer(), now: 1_000_000_000 });
    expect(screen.getByTestId("offer-customer").textContent).toBe(`Ada ${HOSTILE}`);
    expect(screen.getByTestId("offer-comment").textContent).toContain(HOSTILE);
    expect(screen.getByTestId("countdown").textContent).toBe("Respond within 1:00");
    assertInert(container);
    expect(document.activeElement).toBe(screen.getByTestId("accept"));
    await fireEvent.click(screen.getByTestId("accept"));
    expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 7 });
  });

  it("counts the wait time on this machine's clock when the hub's runs ahead", async () => {
    const card = offer();
    const ahead = 5 * 60_000;
    card.offer.expires_at = card.deadline + ahead;
    card.offer.created_at += ahead;
    card.offer.conversation.created_at += ahead;
    render(OfferAlert, { offer: card, now: 1_000_000_000 });
    expect(screen.getByTestId("offer-wait").textContent).toBe("30 s");
  });

  it("sends one accept for a double click", async () => {
    render(OfferAlert, { offer: offer(), now: 1_000_000_000 });
    const accept = screen.getByTestId("accept") as HTMLButtonElement;
    await fireEvent.click(accept);
    await fireEvent.click(accept);
    expect(act).toHaveBeenCalledTimes(1);
    expect(accept.disabled).toBe(true);
  });

  it("leaves the keyboard where the agent is typing", async () => {
    const composer = document.createElement("textarea");
    document.body.appendChild(composer);
    composer.focus();
    try {
      render(OfferAlert, { offer: offer(), now: 1_000_000_000 });
      expect(screen.getByTestId("accept")).toBeTruthy();
      expect(document.activeElement).toBe(composer);
      await fireEvent.keyDown(composer, { key: "Enter" });
      expect(act).not.toHaveBeenCalled();
    } finally {
      composer.remove();
    }
  });

  it("hides the countdown and Reject when the template says so", () => {
    render(OfferAlert, { offer: offer({ show_timeout: false, allow_reject: false }), now: 1_000_000_000 });
    expect(screen.queryByTestId("countdown")).toBeNull();
    expect(screen.queryByTestId("reject")).toBeNull();
  });

  it("asks for a reason when the template requires one", async () => {
    render(OfferAlert, { offer: offer({ reject_reason_required: true }), now: 1_000_000_000 });
    await fireEvent.click(screen.getByTestId("reject"));
    expect(answers()).toEqual([]);
    const input = screen.getByTestId("reject-reason") as HTMLInputElement;
    expect((screen.getByTestId("reject") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(input, { target: { value: "on a call" } });
    await fireEvent.click(screen.getByTestId("reject"));
    expect(act).toHaveBeenCalledWith({ action: "reject", offer_id: 7, reason: "on a call" });
  });

  it("gives the keyboard to the reason it asks for, and sends the reject with Enter once there is one", async () => {
    render(OfferAlert, { offer: offer({ reject_reason_required: true }), now: 1_000_000_000 });
    const reject = screen.getByTestId("reject") as HTMLButtonElement;
    reject.focus();
    await fireEvent.click(reject);
    // Reject is disabled until there is a reason: the keyboard is in the field, not dropped on the page.
    const input = screen.getByTestId("reject-reason") as HTMLInputElement;
    expect(document.activeElement).toBe(input);
    await fireEvent.keyDown(input, { key: "Enter" });
    expect(act).not.toHaveBeenCalled();
    await fireEvent.input(input, { target: { value: "on a call" } });
    await fireEvent.keyDown(input, { key: "Enter" });
    await fireEvent.keyDown(input, { key: "Enter" });
    expect(act).toHaveBeenCalledWith({ action: "reject", offer_id: 7, reason: "on a call" });
    expect(act).toHaveBeenCalledTimes(1);
  });

  it("gives the keyboard back to Reject when the reason is dropped with Escape", async () => {
    render(OfferAlert, { offer: offer({ reject_reason_required: true }), now: 1_000_000_000 });
    await fireEvent.click(screen.getByTestId("reject"));
    await fireEvent.keyDown(screen.getByTestId("reject-reason"), { key: "Escape" });
    await vi.waitFor(() => expect(screen.queryByTestId("reject-reason")).toBeNull());
    await vi.waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("reject")));
  });

  it("keeps Tab in the alert (a modal dialog), wrapping both ways", async () => {
    render(OfferAlert, { offer: offer(), now: 1_000_000_000 });
    const accept = screen.getByTestId("accept");
    const reject = screen.getByTestId("reject");
    expect(document.activeElement).toBe(accept);
    await fireEvent.keyDown(accept, { key: "Tab", shiftKey: true });
    expect(document.activeElement).toBe(reject);
    await fireEvent.keyDown(reject, { key: "Tab" });
    expect(document.activeElement).toBe(accept);
  });

  it("fills the fallback alert window without a modal backdrop", async () => {
    const { container } = render(OfferAlert, { offer: offer(), now: 1_000_000_000, standalone: true });
    expect(container.querySelector(".backdrop")).toBeNull();
    expect(screen.getByTestId("offer-alert").getAttribute("aria-modal")).toBe("false");
    expect(screen.getByTestId("countdown").textContent).toBe("Respond within 1:00");
    await fireEvent.click(screen.getByTestId("accept"));
    expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 7 });
  });

  it("rejects without a reason when none is required", async () => {
    render(OfferAlert, { offer: offer(), now: 1_000_000_000 });
    await fireEvent.click(screen.getByTestId("reject"));
    expect(act).toHaveBeenCalledWith({ action: "reject", offer_id: 7, reason: null });
  });
});

describe("ConversationList", () => {
  it("shows unread counts and opens a conversation", async () => {
    const { container } = render(ConversationList, { rows: rows(), active: 70 });
    expect(screen.getByTestId("unread-70").textContent).toBe("3");
    expect(screen.queryByTestId("unread-71")).toBeNull();
    expect(screen.getByTestId("conversation-70").getAttribute("aria-current")).toBe("true");
    assertInert(container);
    await fireEvent.click(screen.getByTestId("conversation-71"));
    expect(act).toHaveBeenCalledWith({ action: "open", conversation_id: 71 });
  });
});

describe("ChatPanel", () => {
  it("shows earlier messages from the hub above the recent ones, as text", async () => {
    const d = { ...detail(), may_have_earlier: true };
    const older = { ...d.messages[0], id: 0, text: `first ${HOSTILE}`, time: "14:40" };
    vi.mocked(commands.earlierMessages).mockResolvedValueOnce({ messages: [older], more: false });
    const { container } = render(ChatPanel, { detail: d });
    expect(screen.getAllByTestId("message")).toHaveLength(2);
    await fireEvent.click(screen.getByTestId("show-earlier"));
    await vi.waitFor(() => expect(screen.getAllByTestId("message")).toHaveLength(3));
    expect(commands.earlierMessages).toHaveBeenCalledWith(70, 1);
    expect(screen.getAllByTestId("message")[0].textContent).toContain("first");
    // None before those: no button to ask again; the keyboard is at the
    // start of the conversation, and the count is announced.
    expect(screen.queryByTestId("show-earlier")).toBeNull();
    await vi.waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("conversation-start")));
    expect(screen.getByRole("status").textContent).toBe("1 earlier message shown");
    assertInert(container);
  });

  it("says so when earlier messages cannot be read, and keeps the button", async () => {
    const d = { ...detail(), may_have_earlier: true };
    vi.mocked(commands.earlierMessages).mockRejectedValueOnce({ code: "offline", message: "not connected" });
    render(ChatPanel, { detail: d });
    await fireEvent.click(screen.getByTestId("show-earlier"));
    await vi.waitFor(() => expect(screen.getByRole("alert").textContent).toContain("not connected"));
    expect(screen.getByTestId("show-earlier")).toBeTruthy();
    expect(screen.getAllByTestId("message")).toHaveLength(2);
  });

  it("tells the agent's own messages from a teammate's (both write in a consult)", () => {
    const d = detail();
    d.messages.push({ id: 3, conversation_id: 70, author: { kind: "agent", agent_id: 9 }, text: "I own this one", sent_at: 1_000_002_000, time: "14:48" });
    render(ChatPanel, { detail: d, me: 1 });
    const [customer, own, theirs] = screen.getAllByTestId("message");
    expect(customer.classList.contains("mine")).toBe(false);
    expect(own.classList.contains("mine")).toBe(true);
    expect(own.textContent).not.toContain("Teammate");
    expect(theirs.classList.contains("mine")).toBe(false);
    expect(theirs.classList.contains("teammate")).toBe(true);
    expect(theirs.textContent).toContain("Teammate");
  });

  it("offers no earlier messages when the conversation has them all", () => {
    render(ChatPanel, { detail: detail() });
    expect(screen.queryByTestId("show-earlier")).toBeNull();
  });

  it("renders hostile messages as text and restores the draft", () => {
    const { container } = render(ChatPanel, { detail: detail() });
    const msgs = screen.getAllByTestId("message");
    expect(msgs).toHaveLength(2);
    expect(msgs[0].textContent).toContain(HOSTILE);
    assertInert(container);
    expect((screen.getByTestId("composer") as HTMLTextAreaElement).value).toBe("half a thought");
  });

  it("sends with Enter and saves drafts as you type, with no wait", async () => {
    const { container } = render(ChatPanel, { detail: detail() });
    // No <form> in a panel that comes and goes with conversations (lib/enter.ts).
    expect(container.querySelector("form")).toBeNull();
    const composer = screen.getByTestId("composer") as HTMLTextAreaElement;
    await fireEvent.input(composer, { target: { value: "draft 2" } });
    // Handed on at once: a quit or crash right after the keystroke keeps it.
    expect(act).toHaveBeenCalledWith({ action: "set_draft", conversation_id: 70, text: "draft 2" });
    await fireEvent.keyDown(composer, { key: "Enter" });
    expect(composer.value).toBe("");
    await vi.waitFor(() =>
      expect(act).toHaveBeenCalledWith({ action: "send_message", conversation_id: 70, text: "draft 2" }),
    );
    await fireEvent.input(composer, { target: { value: "by the button" } });
    await fireEvent.click(screen.getByTestId("send"));
    await vi.waitFor(() =>
      expect(act).toHaveBeenCalledWith({ action: "send_message", conversation_id: 70, text: "by the button" }),
    );
    // The send comes after the draft's save, and no save of the sent text after it.
    const kinds = act.mock.calls.map((c) => (c[0] as { action: string; text?: string }).action + ":" + (c[0] as { text?: string }).text);
    const saved = kinds.indexOf("set_draft:by the button");
    const sent = kinds.indexOf("send_message:by the button");
    expect(saved).toBeGreaterThanOrEqual(0);
    expect(sent).toBeGreaterThan(saved);
    expect(kinds.lastIndexOf("set_draft:by the button")).toBeLessThan(sent);
  });

  it("puts a reply that failed to send back in the composer", async () => {
    render(ChatPanel, { detail: detail() });
    const composer = screen.getByTestId("composer") as HTMLTextAreaElement;
    await fireEvent.input(composer, { target: { value: "my answer" } });
    await fireEvent.keyDown(composer, { key: "Enter" });
    expect(composer.value).toBe("");
    ui.handle({ type: "ui", event: { type: "draft_restored", conversation_id: 70, draft: "my answer" } } as ShellEvent);
    flushSync();
    expect(composer.value).toBe("my answer");
    // Another conversation's reply waits in its draft, not here.
    ui.handle({ type: "ui", event: { type: "draft_restored", conversation_id: 71, draft: "elsewhere" } } as ShellEvent);
    flushSync();
    expect(composer.value).toBe("my answer");
  });

  it("does not send on the Enter that commits an input method's composition", async () => {
    render(ChatPanel, { detail: detail() });
    const composer = screen.getByTestId("composer") as HTMLTextAreaElement;
    await fireEvent.keyDown(composer, { key: "Enter", isComposing: true });
    expect(act).not.toHaveBeenCalledWith(expect.objectContaining({ action: "send_message" }));
    expect(composer.value).toBe("half a thought");
  });

  it("closes a hand-on begun for one conversation when another comes to the front", async () => {
    const a = detail();
    const { rerender } = render(ChatPanel, { detail: a, me: 1 });
    await fireEvent.click(screen.getByTestId("session-actions"));
    await vi.waitFor(() => expect(screen.getByTestId("session-actions-form")).toBeTruthy());
    const b = detail();
    b.summary = { ...b.summary, id: 71 };
    await rerender({ detail: b, me: 1 });
    expect(screen.queryByTestId("session-actions-form")).toBeNull();
    expect(screen.getByTestId("session-actions").getAttribute("aria-expanded")).toBe("false");
    // Back to the first: still closed, nothing carried over.
    await rerender({ detail: a, me: 1 });
    expect(screen.queryByTestId("session-actions-form")).toBeNull();
  });
});

describe("ChatPanel's history scroll", () => {
  // jsdom does not lay out: each list item is 100 px tall, the panel shows 150.
  function laidOut(el: HTMLElement) {
    Object.defineProperty(el, "scrollHeight", { configurable: true, get: () => el.querySelectorAll("li").length * 100 });
    Object.defineProperty(el, "clientHeight", { configurable: true, get: () => 150 });
  }
  function withMessages(n: number, id = 70) {
    const d = detail();
    d.summary = { ...d.summary, id };
    d.messages = Array.from({ length: n }, (_, i) => ({ ...d.messages[0], id: i + 1, conversation_id: id, text: `m${i + 1}` }));
    return d;
  }
  const end = (el: HTMLElement) => el.scrollHeight - el.clientHeight;

  it("opens a conversation at its newest message, follows a new one at the end, and leaves an agent reading older ones", async () => {
    const { rerender } = render(ChatPanel, { detail: withMessages(2) });
    const history = screen.getByTestId("history");
    laidOut(history);
    await vi.waitFor(() => expect(history.scrollTop).toBeGreaterThanOrEqual(end(history)));
    // At the end (within 40 px): the new message is followed.
    history.scrollTop = end(history) - 30;
    await rerender({ detail: withMessages(3) });
    await tick();
    expect(history.scrollTop).toBeGreaterThanOrEqual(end(history));
    expect(end(history)).toBe(150);
    // Reading older messages: not moved.
    history.scrollTop = 20;
    await rerender({ detail: withMessages(4) });
    await tick();
    expect(history.scrollTop).toBe(20);
    // Another conversation comes to the front: at its newest message.
    await rerender({ detail: withMessages(5, 71) });
    await tick();
    expect(history.scrollTop).toBeGreaterThanOrEqual(end(history));
    expect(end(history)).toBe(350);
  });

  it("keeps the view where it is when earlier messages load at the top", async () => {
    const d = { ...withMessages(3), may_have_earlier: true };
    const older = { ...d.messages[0], id: 0, text: "first" };
    vi.mocked(commands.earlierMessages).mockResolvedValueOnce({ messages: [older], more: true });
    render(ChatPanel, { detail: d });
    const history = screen.getByTestId("history");
    laidOut(history);
    await tick();
    history.scrollTop = 0;
    await fireEvent.click(screen.getByTestId("show-earlier"));
    await vi.waitFor(() => expect(screen.getAllByTestId("message")).toHaveLength(4));
    await tick();
    expect(history.scrollTop).toBe(0);
  });
});

describe("ChatPanel's End", () => {
  it("sends one close for a double click, and another after the hub refused it", async () => {
    render(ChatPanel, { detail: detail(), me: 1 });
    const end = screen.getByTestId("end-session");
    await fireEvent.click(end);
    await fireEvent.click(end);
    const closes = () => act.mock.calls.filter((c) => (c[0] as { action: string }).action === "close");
    expect(closes()).toEqual([[{ action: "close", conversation_id: 70 }]]);
    expect(end.getAttribute("aria-disabled")).toBe("true");
    ui.handle({
      type: "ui",
      event: { type: "command_failed", what: "close", error: { code: "internal", message: "hub unavailable" }, conversation_id: 70 },
    });
    flushSync();
    await fireEvent.click(end);
    expect(closes()).toHaveLength(2);
    ui.error = null;
  });
});

describe("SignIn", () => {
  it("pre-fills the last login and shows the hub's refusal", async () => {
    render(SignIn);
    await vi.waitFor(() => expect((document.querySelector("input[name=hub]") as HTMLInputElement).value).toBe("http://hub.test:1"));
    await fireEvent.input(document.querySelector("input[name=password]") as HTMLInputElement, { target: { value: "x" } });
    await fireEvent.click(screen.getByTestId("sign-in"));
    await vi.waitFor(() => expect(screen.getByTestId("signin-error").textContent).toBe("wrong user name or password"));
  });

  it("says why at start when the hub refused the kept session before the page listened", async () => {
    ui.signInNotice = null;
    render(SignIn);
    vi.mocked(commands.lastLogin).mockResolvedValueOnce({ hub_url: "http://hub.test:1", username: "ada", kept_session: { state: "refused" } });
    await ui.start();
    await vi.waitFor(() => expect(screen.getByTestId("signin-notice").textContent).toContain("The hub ended your session"));
  });

  it("says a restart is resuming the kept session, lets the agent sign in instead, and says why a resume failed", async () => {
    ui.signInNotice = null;
    render(SignIn);
    vi.mocked(commands.lastLogin).mockResolvedValueOnce({
      hub_url: "http://hub.test:1",
      username: "ada",
      kept_session: { state: "resuming", username: "ada", hub_url: "http://hub.test:1" },
    });
    await ui.start();
    await vi.waitFor(() => expect(screen.getByTestId("resuming").textContent).toContain("ada"));
    expect(screen.getByTestId("resuming").textContent).toContain("http://hub.test:1");
    expect(document.querySelector("input[name=password]")).toBeNull();
    // The agent would rather type the password.
    await fireEvent.click(screen.getByTestId("resume-instead"));
    expect(commands.cancelResume).toHaveBeenCalledTimes(1);
    expect(screen.queryByTestId("resuming")).toBeNull();
    expect(document.querySelector("input[name=password]")).not.toBeNull();
    // A resume under way again; it ends quietly (signed in): nothing left to say.
    flushSync(() => ui.handle({ type: "kept_session", kept: { state: "resuming", username: "ada", hub_url: "http://hub.test:1" } }));
    expect(screen.getByTestId("resuming")).toBeTruthy();
    flushSync(() => ui.handle({ type: "kept_session", kept: { state: "quiet" } }));
    expect(screen.queryByTestId("resuming")).toBeNull();
    expect(screen.queryByTestId("signin-notice")).toBeNull();
    // It failed: the form says why.
    flushSync(() => ui.handle({ type: "kept_session", kept: { state: "resuming", username: "ada", hub_url: "http://hub.test:1" } }));
    flushSync(() => ui.handle({ type: "kept_session", kept: { state: "failed", message: "the keychain stayed locked" } }));
    expect(screen.queryByTestId("resuming")).toBeNull();
    expect(screen.getByTestId("signin-notice").textContent).toBe(resumeFailed("the keychain stayed locked"));
  });

  it("says why when the hub ended the session, not when the agent signed out", async () => {
    render(SignIn);
    flushSync(() => ui.handle({ type: "signed_out", refused: true }));
    expect(screen.getByTestId("signin-notice").textContent).toContain("The hub ended your session");
    flushSync(() => ui.handle({ type: "signed_out", refused: false }));
    expect(screen.queryByTestId("signin-notice")).toBeNull();
    // Trying again clears it.
    flushSync(() => ui.handle({ type: "signed_out", refused: true }));
    await fireEvent.input(document.querySelector("input[name=password]") as HTMLInputElement, { target: { value: "x" } });
    await fireEvent.click(screen.getByTestId("sign-in"));
    await vi.waitFor(() => expect(screen.queryByTestId("signin-notice")).toBeNull());
  });
});

describe("screen-reader announcements", () => {
  const shown = (headline: string) => ({ type: "ui", event: { type: "offer_shown", headline } }) as ShellEvent;

  for (const where of ["main", "alert"] as const) {
    it(`${where} window: reads a second offer out even when its words are those of the one before`, () => {
      if (where === "alert") render(AlertApp);
      else render(App);
      const announcer = screen.getByTestId("announcer");
      flushSync(() => ui.handle(shown("Incoming WhatsApp from Ada")));
      expect(announcer.textContent?.trim()).toBe("Incoming WhatsApp from Ada");
      // The live region must change, or nothing is read.
      const seen = new MutationObserver(() => {});
      seen.observe(announcer, { childList: true, characterData: true, subtree: true });
      flushSync(() => ui.handle(shown("Incoming WhatsApp from Ada")));
      const changes = seen.takeRecords();
      seen.disconnect();
      expect(changes.length).toBeGreaterThan(0);
      expect(announcer.textContent?.trim()).toBe("Incoming WhatsApp from Ada");
    });
  }

  it("does not read a conversation's history aloud when it is opened, only a customer's new message", async () => {
    render(ChatPanel, { detail: detail() });
    // Not a live region, nor inside one.
    expect(screen.getByTestId("history").closest("[aria-live], [role=log], [role=status], [role=alert]")).toBeNull();

    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const before = viewUpdate.getMockImplementation();
    let shownDetail = detail();
    viewUpdate.mockImplementation(async () => ({
      view: { offers: [], active: shownDetail.summary.id },
      detail: { kind: "shown", detail: shownDetail },
    }));
    try {
      await ui.refresh();
      const quiet = ui.politeAnnouncement.seq;
      // The same conversation, a message from the customer and one from the agent.
      const d = detail();
      d.messages = [
        ...d.messages,
        { ...d.messages[0], id: 3, text: `still there? ${HOSTILE}` },
        { ...d.messages[1], id: 4, text: "my own reply" },
      ];
      shownDetail = d;
      await ui.refresh();
      expect(ui.politeAnnouncement.text).toBe(`Ada ${HOSTILE}: still there? ${HOSTILE}`);
      const said = ui.politeAnnouncement.seq;
      expect(said).toBeGreaterThan(quiet);
      // Another conversation comes to the front: its thread is not news.
      const other = detail();
      other.summary = { ...other.summary, id: 71 };
      other.messages = other.messages.map((m) => ({ ...m, id: m.id + 100, conversation_id: 71 }));
      shownDetail = other;
      await ui.refresh();
      expect(ui.politeAnnouncement.seq).toBe(said);
    } finally {
      viewUpdate.mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });
});

describe("sign-out", () => {
  it("sends no draft save left waiting when the session ends", async () => {
    let finish: (v: null) => void = () => {};
    act.mockImplementationOnce(() => new Promise<null>((r) => (finish = r)));
    ui.drafts.set(70, "a");
    ui.drafts.set(70, "ab");
    ui.handle({ type: "signed_out", refused: false });
    finish(null);
    await new Promise((r) => setTimeout(r, 0));
    expect(act).toHaveBeenCalledWith({ action: "set_draft", conversation_id: 70, text: "a" });
    expect(act).not.toHaveBeenCalledWith({ action: "set_draft", conversation_id: 70, text: "ab" });
  });

  it("forgets the session's toasts, restored reply, announcement, chosen offer and error banners", () => {
    ui.toasts = [{ id: 1, conversationId: 70, title: "Assigned: Ada", body: "Queue: Support", until: Date.now() + 10_000 }];
    ui.restoredDraft = { conversationId: 70, draft: "my answer" };
    ui.handle({ type: "ui", event: { type: "offer_shown", headline: "Incoming WhatsApp from Ada" } } as ShellEvent);
    ui.focusedOffer = 7;
    ui.error = "Send: the hub is unreachable";
    ui.notice = "The local cache was unreadable and has been rebuilt from the hub.";
    ui.handle({ type: "signed_out", refused: false });
    expect(ui.toasts).toEqual([]);
    expect(ui.restoredDraft).toBeNull();
    expect(ui.announcement.text).toBe("");
    expect(ui.focusedOffer).toBeNull();
    expect(ui.error).toBeNull();
    expect(ui.notice).toBeNull();
  });
});

describe("Settings", () => {
  const settings: AgentSettings = {
    desktop_notifications: null,
    sound_when: "when_unfocused",
    volume: 80,
    tone: "classic",
    reminder_secs: 60,
    theme: "system",
    start_at_login: false,
    clock: "system",
  };

  it("takes the keyboard when it opens and closes unsaved with Escape", async () => {
    const onClose = vi.fn();
    render(Settings, { settings, onClose });
    flushSync();
    expect(document.activeElement).toBe(screen.getByTestId("setting-desktop"));
    await fireEvent.keyDown(document.activeElement as HTMLElement, { key: "Escape" });
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(act).not.toHaveBeenCalled();
  });

  it("keeps Tab in the dialog, wrapping both ways", async () => {
    render(Settings, { settings, onClose: vi.fn() });
    flushSync();
    const first = screen.getByTestId("setting-desktop");
    const last = screen.getByTestId("save-settings");
    expect(document.activeElement).toBe(first);
    await fireEvent.keyDown(first, { key: "Tab", shiftKey: true });
    expect(document.activeElement).toBe(last);
    await fireEvent.keyDown(last, { key: "Tab" });
    expect(document.activeElement).toBe(first);
  });

  it("saves with Enter in a field, not on a checkbox, and not with a value out of range", async () => {
    const onClose = vi.fn();
    const { container } = render(Settings, { settings, onClose });
    // Opened and closed all day: no <form> (lib/enter.ts).
    expect(container.querySelector("form")).toBeNull();
    const seconds = container.querySelector("input[type=number]") as HTMLInputElement;
    await fireEvent.input(seconds, { target: { value: "5" } });
    await fireEvent.keyDown(seconds, { key: "Enter" });
    await fireEvent.click(screen.getByTestId("save-settings"));
    // Below the field's minimum (10 s), as a <form> would refuse it.
    expect(act).not.toHaveBeenCalled();
    expect(onClose).not.toHaveBeenCalled();
    await fireEvent.keyDown(screen.getByTestId("setting-autostart"), { key: "Enter" });
    expect(act).not.toHaveBeenCalled();
    await fireEvent.input(seconds, { target: { value: "120" } });
    await fireEvent.keyDown(seconds, { key: "Enter" });
    expect(act).toHaveBeenCalledWith({ action: "update_settings", settings: { ...settings, reminder_secs: 120 } });
    expect(onClose).toHaveBeenCalledTimes(1);
  });
});

describe("format", () => {
  it("counts down and shows wait times", () => {
    expect(countdown(61_000, 0)).toBe("1:01");
    expect(countdown(4_200, 0)).toBe("5 s");
    expect(countdown(0, 5_000)).toBe("0 s");
    expect(waited(0, 45_000)).toBe("45 s");
    expect(waited(0, 125 * 60_000)).toBe("2 h 5 min");
  });
});

describe("message times", () => {
  it("are the engine's labels: the page formats no time", () => {
    // Any time formatting in the page (an Intl formatter, even shared, or
    // Date's local-time getters) makes WebKitGTK load ICU's time-zone and
    // calendar data for the rest of the day: 3.5 MiB (issue 7).
    const spies = [
      vi.spyOn(Intl, "DateTimeFormat"),
      vi.spyOn(Date.prototype, "toLocaleTimeString"),
      vi.spyOn(Date.prototype, "toLocaleString"),
      vi.spyOn(Date.prototype, "getHours"),
      vi.spyOn(Date.prototype, "getTimezoneOffset"),
    ];
    try {
      const d = detail();
      d.messages = Array.from({ length: 50 }, (_, i) => ({ ...d.messages[0], id: i + 1, time: `${i}:05\u00a0PM` }));
      render(ChatPanel, { detail: d });
      const times = screen.getAllByRole("listitem").map((li) => li.querySelector("time")?.textContent);
      expect(times).toEqual(d.messages.map((m) => m.time));
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});

describe("Toasts", () => {
  it("shows the toast as text and opens its conversation when clicked", async () => {
    ui.view = { conversations: rows(), offers: [] } as unknown as AppView;
    try {
      const { container } = render(Toasts, {
        toasts: [{ id: 1, conversationId: 70, title: `Assigned: ${HOSTILE}`, body: "Queue: Support", until: Date.now() + 10_000 }],
      });
      expect(screen.getByTestId("toast").textContent).toContain(HOSTILE);
      assertInert(container);
      await fireEvent.click(screen.getByTestId("toast"));
      expect(act).toHaveBeenCalledWith({ action: "open", conversation_id: 70 });
    } finally {
      ui.view = null;
    }
  });

  it("only goes away when clicked for a conversation no longer held (taken over, rerouted)", async () => {
    // The agent holds 70 and 71; 99 went to someone else after its toast.
    ui.view = { conversations: rows(), offers: [] } as unknown as AppView;
    ui.error = null;
    ui.toasts = [{ id: 1, conversationId: 99, title: "Assigned: Zoe", body: "Queue: Support", until: Date.now() + 10_000 }];
    try {
      render(Toasts, { toasts: ui.toasts });
      await fireEvent.click(screen.getByTestId("toast"));
      expect(act).not.toHaveBeenCalled();
      expect(ui.toasts).toHaveLength(0);
      expect(ui.error).toBeNull();
    } finally {
      ui.view = null;
      ui.toasts = [];
    }
  });
});

describe("themeFor", () => {
  it("follows the system unless the agent chose", () => {
    expect(themeFor("system", true)).toBe("dark");
    expect(themeFor("system", false)).toBe("light");
    expect(themeFor("light", true)).toBe("light");
    expect(themeFor("dark", false)).toBe("dark");
  });
});

describe("the UI clock", () => {
  it("runs only while an offer or a toast is on screen (no idle wakeups)", () => {
    vi.useFakeTimers();
    try {
      ui.view = { offers: [] } as unknown as AppView;
      flushSync();
      expect(vi.getTimerCount()).toBe(0);
      ui.view = { offers: [offer()] } as unknown as AppView;
      flushSync();
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(1000);
      ui.view = { offers: [] } as unknown as AppView;
      flushSync();
      expect(vi.getTimerCount()).toBe(0);
      ui.toasts = [{ id: 1, conversationId: 1, title: "t", body: "b", until: Date.now() + 600 }];
      flushSync();
      expect(vi.getTimerCount()).toBe(1);
      // The toast expires on a tick; the clock then stops by itself.
      vi.advanceTimersByTime(1000);
      flushSync();
      expect(ui.toasts).toHaveLength(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      ui.view = null;
      vi.useRealTimers();
    }
  });
});

describe("view refresh", () => {
  it("drops a view read answered after the session ended", async () => {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const before = viewUpdate.getMockImplementation();
    let answer: (v: unknown) => void = () => {};
    viewUpdate.mockImplementation(() => new Promise((resolve) => (answer = resolve)));
    try {
      const read = ui.refresh();
      await vi.waitFor(() => expect(viewUpdate).toHaveBeenCalled());
      ui.handle({ type: "signed_out", refused: false });
      answer({ view: { offers: [], active: null }, detail: { kind: "nothing" } });
      await read;
      expect(ui.signedIn).toBe(false);
      expect(ui.view).toBeNull();
    } finally {
      viewUpdate.mockImplementation(before!);
    }
  });

  it("folds a burst of events into at most two view reads", async () => {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    viewUpdate.mockClear();
    for (let i = 0; i < 20; i++) {
      ui.handle({ type: "focus", target: null } as ShellEvent);
    }
    await ui.refresh();
    expect(viewUpdate).toHaveBeenCalledTimes(2);
  });

  it("keeps one toast per conversation: a newer one replaces the older", () => {
    try {
      ui.toasts = [];
      const toast = (conversation_id: number, body: string): ShellEvent => ({
        type: "ui",
        event: { type: "toast", conversation_id, title: "Maria (WhatsApp)", body, duration_ms: 6000 },
      });
      ui.handle(toast(70, "1 new message"));
      ui.handle(toast(71, "1 new message"));
      ui.handle(toast(70, "2 new messages"));
      expect(ui.toasts.map((t) => [t.conversationId, t.body])).toEqual([
        [71, "1 new message"],
        [70, "2 new messages"],
      ]);
    } finally {
      ui.toasts = [];
    }
  });

  it("tells the engine what it shows and what changed, and applies what comes back", async () => {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const open = detail();
    const before = viewUpdate.getMockImplementation();
    let answer: DetailUpdate = { kind: "shown", detail: open };
    viewUpdate.mockImplementation(async () => ({ view: { offers: [], active: open.summary.id }, detail: answer }));
    try {
      await ui.refresh();
      expect(ui.detail?.summary.id).toBe(70);
      const asked = async (e: ShellEvent) => {
        viewUpdate.mockClear();
        ui.handle(e);
        await ui.refresh({ all: false, conversations: [] });
        return viewUpdate.mock.calls.map((c) => c[0]);
      };
      answer = { kind: "unchanged" };
      expect(await asked({ type: "view_changed", all: false, conversations: [71, 72] })).toContainEqual({
        shown: 70,
        all: false,
        changed: [71, 72],
      });
      expect(ui.detail).toBe(open);
      // A toast (engine events that come one by one change the list only).
      const toast = await asked({
        type: "ui",
        event: { type: "toast", conversation_id: 70, title: "t", body: "b", duration_ms: 1 },
      });
      expect(toast.length).toBeGreaterThan(0);
      for (const read of toast) expect(read).toEqual({ shown: 70, all: false, changed: [] });
      expect(await asked({ type: "view_changed", all: true, conversations: [] })).toContainEqual({
        shown: 70,
        all: true,
        changed: [],
      });
      const again = { ...open, draft: "new" };
      answer = { kind: "shown", detail: again };
      await asked({ type: "view_changed", all: false, conversations: [70] });
      expect(ui.detail).toBe(again);
      answer = { kind: "nothing" };
      await asked({ type: "view_changed", all: false, conversations: [70] });
      expect(ui.detail).toBeNull();
    } finally {
      viewUpdate.mockImplementation(before!);
      ui.view = null;
      ui.detail = null;
      ui.toasts = [];
    }
  });
});

describe("App", () => {
  it("says how many more offers wait behind the one shown, above the settings dialog", async () => {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const before = viewUpdate.getMockImplementation();
    const second = offer();
    second.offer = { ...second.offer, id: 8 };
    const view: AppView = appView({ offers: [offer(), second] });
    viewUpdate.mockImplementation(async () => ({ view, detail: { kind: "nothing" } }));
    try {
      render(App);
      await ui.refresh();
      await vi.waitFor(() => expect(screen.getByTestId("more-alerts").textContent).toBe("1 more waiting"));
      expect(screen.getAllByTestId("offer-alert")).toHaveLength(1);
      await fireEvent.click(screen.getByTestId("open-settings"));
      const dialog = await vi.waitFor(() => screen.getByRole("dialog", { name: "Settings" }));
      const alert = screen.getByTestId("offer-alert");
      // Later in the page, so painted over the dialog (both are fixed, no z-index).
      expect(dialog.compareDocumentPosition(alert) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
      // The tray's "Reject (give a reason)…" for the older offer brings the
      // window forward at it: the alert shows that one.
      await fireEvent.keyDown(alert, { key: "Escape" });
      flushSync(() => ui.handle({ type: "focus", target: { kind: "offer", id: 8 } }));
      await fireEvent.click(screen.getByTestId("reject"));
      expect(act).toHaveBeenCalledWith({ action: "reject", offer_id: 8, reason: null });
    } finally {
      viewUpdate.mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });

  // Two offers as the engine lists them (newest first): Ned's, newer and
  // with the later deadline, and Olga's, older, which lapses first.
  function twoOffers(): AppView {
    const older = offer({}, 1_000_030_000);
    older.offer = { ...older.offer, conversation: { ...older.offer.conversation, customer: { name: "Olga" } } };
    const newer = offer({}, 1_000_090_000);
    newer.offer = {
      ...newer.offer,
      id: 8,
      created_at: older.offer.created_at + 20_000,
      conversation: { ...newer.offer.conversation, id: 80, channel: "sms", customer: { name: `Ned ${HOSTILE}` } },
    };
    return { ...view(), offers: [newer, older] };
  }

  const view = (): AppView => appView();

  async function showing(v: AppView, where: "main" | "alert" = "main") {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    viewUpdate.mockImplementation(async () => ({ view: v, detail: { kind: "nothing" } }));
    ui.focusedOffer = null;
    const r = where === "alert" ? render(AlertApp) : render(App);
    await ui.refresh();
    await vi.waitFor(() => expect(screen.getByTestId("offer-alert")).toBeTruthy());
    return r;
  }

  for (const where of ["main", "alert"] as const) {
    it(`${where} window: shows the offer that lapses first, and any other can be brought into the card and accepted`, async () => {
      const before = (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).getMockImplementation();
      try {
        const { container } = await showing(twoOffers(), where);
        expect(screen.getAllByTestId("offer-alert")).toHaveLength(1);
        expect(screen.getByTestId("offer-customer").textContent).toBe("Olga");
        expect(screen.getByTestId("more-alerts").textContent).toBe("1 more waiting");
        // The newer one is a button (keyboard reachable), named by channel and customer.
        const other = screen.getByTestId("other-offer");
        expect(other.tagName).toBe("BUTTON");
        expect(other.textContent).toContain(`SMS: Ned ${HOSTILE}`);
        assertInert(container);
        await fireEvent.click(other);
        expect(screen.getByTestId("offer-customer").textContent).toBe(`Ned ${HOSTILE}`);
        // The engine hears which offer the card shows: the global shortcut accepts that one.
        expect(act).toHaveBeenCalledWith({ action: "show_offer", offer_id: 8 });
        expect(document.activeElement).toBe(screen.getByTestId("accept"));
        // Olga's is listed now, to go back to.
        expect(screen.getByTestId("other-offer").textContent).toContain("WhatsApp: Olga");
        await fireEvent.click(screen.getByTestId("accept"));
        expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 8 });
        expect(answers()).toHaveLength(1);
      } finally {
        (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).mockImplementation(before!);
        ui.handle({ type: "signed_out", refused: false });
      }
    });
  }

  it("gives the keyboard back to the Settings button when the dialog closes with Escape", async () => {
    const before = (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).getMockImplementation();
    try {
      (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).mockImplementation(async () => ({
        view: view(),
        detail: { kind: "nothing" },
      }));
      render(App);
      await ui.refresh();
      const open = await vi.waitFor(() => screen.getByTestId("open-settings"));
      open.focus();
      await fireEvent.click(open);
      await vi.waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("setting-desktop")));
      await fireEvent.keyDown(document.activeElement as HTMLElement, { key: "Escape" });
      await vi.waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
      expect(document.activeElement).toBe(screen.getByTestId("open-settings"));
    } finally {
      (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });

  // A space on the focused element, as a browser takes it: a button is pressed.
  async function pressSpace() {
    const at = document.activeElement as HTMLElement;
    await fireEvent.keyDown(at, { key: " " });
    await fireEvent.keyUp(at, { key: " " });
    if (at instanceof HTMLButtonElement && !at.disabled) await fireEvent.click(at);
  }

  for (const where of ["main", "alert"] as const) {
    it(`${where} window: a reason typed for one offer cannot accept another`, async () => {
      const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
      const before = viewUpdate.getMockImplementation();
      // Olga's lapses first (in the card), Ned's waits; both want a reason to reject.
      const card = (id: number, name: string, deadline: number): OfferCard => {
        const c = offer({ reject_reason_required: true }, deadline);
        c.offer = { ...c.offer, id, conversation: { ...c.offer.conversation, id: id * 10, customer: { name } } };
        return c;
      };
      const olga = card(7, "Olga", 1_000_030_000);
      const ned = card(8, "Ned", 1_000_090_000);
      const pia = card(9, "Pia", 1_000_010_000);
      try {
        await showing({ ...view(), offers: [ned, olga] }, where);
        expect(screen.getByTestId("offer-customer").textContent).toBe("Olga");
        const reject = screen.getByTestId("reject");
        reject.focus();
        await fireEvent.click(reject);
        const reason = screen.getByTestId("reject-reason") as HTMLInputElement;
        reason.focus();
        await fireEvent.input(reason, { target: { value: "on a c" } });
        // Pia's arrives, sooner: the card stays on Olga's, the reason with it.
        viewUpdate.mockImplementation(async () => ({ view: { ...view(), offers: [pia, ned, olga] }, detail: { kind: "nothing" } }));
        await ui.refresh();
        flushSync();
        expect(screen.getByTestId("offer-customer").textContent).toBe("Olga");
        expect((screen.getByTestId("reject-reason") as HTMLInputElement).value).toBe("on a c");
        expect(document.activeElement).toBe(screen.getByTestId("reject-reason"));
        // Olga's lapses while the agent types: Pia's comes in, and the
        // next space does not accept it.
        viewUpdate.mockImplementation(async () => ({ view: { ...view(), offers: [pia, ned] }, detail: { kind: "nothing" } }));
        await ui.refresh();
        flushSync();
        await vi.waitFor(() => expect(screen.getByTestId("offer-customer").textContent).toBe("Pia"));
        expect(document.activeElement).not.toBe(screen.getByTestId("accept"));
        expect(document.activeElement).toBe(screen.getByTestId("offer-alert"));
        await pressSpace();
        expect(act).not.toHaveBeenCalledWith(expect.objectContaining({ action: "accept" }));
        // A card that comes when none was being worked in takes the keyboard on Accept, as before.
        viewUpdate.mockImplementation(async () => ({ view: { ...view(), offers: [] }, detail: { kind: "nothing" } }));
        await ui.refresh();
        await vi.waitFor(() => expect(screen.queryByTestId("offer-alert")).toBeNull());
        await new Promise((r) => setTimeout(r));
        viewUpdate.mockImplementation(async () => ({ view: { ...view(), offers: [ned] }, detail: { kind: "nothing" } }));
        await ui.refresh();
        await vi.waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("accept")));
      } finally {
        viewUpdate.mockImplementation(before!);
        ui.handle({ type: "signed_out", refused: false });
      }
    });
  }

  it("accepts with Alt+A the offer the card shows, once", async () => {
    const before = (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).getMockImplementation();
    try {
      await showing(twoOffers());
      // A notification body click, or the tray's "Reject (give a reason)…",
      // brings the window forward at the newer offer.
      flushSync(() => ui.handle({ type: "focus", target: { kind: "offer", id: 8 } }));
      expect(screen.getByTestId("offer-customer").textContent).toBe(`Ned ${HOSTILE}`);
      await fireEvent.keyDown(window, { key: "a", altKey: true });
      expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 8 });
      await fireEvent.keyDown(window, { key: "A", altKey: true });
      expect(act).toHaveBeenCalledTimes(1);
      // With none focused, the one the card shows is the one that lapses first.
      act.mockClear();
      flushSync(() => ui.handle({ type: "focus", target: null }));
      expect(screen.getByTestId("offer-customer").textContent).toBe("Olga");
      await fireEvent.keyDown(window, { key: "a", altKey: true });
      expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 7 });
      expect(act).not.toHaveBeenCalledWith({ action: "accept_newest" });
    } finally {
      (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });

  it("ignores Alt+A's key repeats: a held key does not accept the next offer unseen", async () => {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const before = viewUpdate.getMockImplementation();
    try {
      const both = twoOffers();
      await showing(both);
      expect(screen.getByTestId("offer-customer").textContent).toBe("Olga");
      await fireEvent.keyDown(window, { key: "a", altKey: true });
      expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 7 });
      expect(act).toHaveBeenCalledTimes(1);
      // Olga's is gone: the card turns to Ned's, which the key, still held, must not accept.
      viewUpdate.mockImplementation(async () => ({
        view: { ...both, offers: both.offers.filter((o) => o.offer.id !== 7) },
        detail: { kind: "nothing" },
      }));
      await ui.refresh();
      await vi.waitFor(() => expect(screen.getByTestId("offer-customer").textContent).toBe(`Ned ${HOSTILE}`));
      await fireEvent.keyDown(window, { key: "a", altKey: true, repeat: true });
      expect(act).toHaveBeenCalledTimes(1);
      expect(act).not.toHaveBeenCalledWith({ action: "accept", offer_id: 8 });
    } finally {
      viewUpdate.mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });

  async function withConversations() {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const list = rows();
    viewUpdate.mockImplementation(async () => ({ view: appView({ conversations: list, active: 70 }), detail: { kind: "nothing" } }));
    render(App);
    await ui.refresh();
    await vi.waitFor(() => expect(screen.getByTestId("presence")).toBeTruthy());
    act.mockClear();
  }
  const opens = () => act.mock.calls.filter((c) => (c[0] as { action: string }).action === "open");

  it("moves to the next conversation with Alt+Down, once for a held key", async () => {
    const before = (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).getMockImplementation();
    try {
      await withConversations();
      await fireEvent.keyDown(window, { key: "ArrowDown", altKey: true });
      expect(opens()).toEqual([[{ action: "open", conversation_id: 71 }]]);
      // The key held: its repeats open (and mark read) nothing more.
      await fireEvent.keyDown(window, { key: "ArrowDown", altKey: true, repeat: true });
      await fireEvent.keyDown(window, { key: "ArrowUp", altKey: true, repeat: true });
      expect(opens()).toHaveLength(1);
    } finally {
      (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });

  it("leaves Alt+Down to a select (it opens the list) and to a modal dialog", async () => {
    const before = (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).getMockImplementation();
    try {
      await withConversations();
      const presence = screen.getByTestId("presence");
      presence.focus();
      await fireEvent.keyDown(presence, { key: "ArrowDown", altKey: true });
      expect(opens()).toHaveLength(0);
      await fireEvent.click(screen.getByTestId("open-settings"));
      const dialog = await vi.waitFor(() => screen.getByRole("dialog", { name: "Settings" }));
      const button = dialog.querySelector("button")!;
      await fireEvent.keyDown(button, { key: "ArrowDown", altKey: true });
      expect(opens()).toHaveLength(0);
    } finally {
      (commands.viewUpdate as unknown as ReturnType<typeof vi.fn>).mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });

  it("makes the card answerable again when the hub refuses the accept and the offer stays pending", async () => {
    const viewUpdate = commands.viewUpdate as unknown as ReturnType<typeof vi.fn>;
    const before = viewUpdate.getMockImplementation();
    try {
      // The view keeps holding Olga's offer throughout: the re-reads around
      // the accept and its refusal folded, the card is the same instance.
      await showing(twoOffers());
      const accept = screen.getByTestId("accept") as HTMLButtonElement;
      await fireEvent.click(accept);
      expect(act).toHaveBeenCalledWith({ action: "accept", offer_id: 7 });
      expect(accept.disabled).toBe(true);
      ui.handle({
        type: "ui",
        event: {
          type: "command_failed",
          what: "accept",
          error: { code: "session_limit", message: "too many conversations" },
          conversation_id: null,
        },
      });
      await ui.refresh();
      flushSync();
      expect(screen.getByTestId("accept")).toBe(accept);
      expect(accept.disabled).toBe(false);
      expect((screen.getByTestId("reject") as HTMLButtonElement).disabled).toBe(false);
      // Alt+A works on it again.
      await fireEvent.keyDown(window, { key: "a", altKey: true });
      expect(act).toHaveBeenCalledTimes(2);
      expect(act).toHaveBeenLastCalledWith({ action: "accept", offer_id: 7 });
    } finally {
      viewUpdate.mockImplementation(before!);
      ui.handle({ type: "signed_out", refused: false });
    }
  });
});

describe("Banners", () => {
  const missed = { notice: "missed_offer", message: `You missed a request ${HOSTILE}` } as never;

  it("asks the hub to reset presence (it knows what to go back to), and shows the text as text", async () => {
    act.mockClear();
    const onReset = vi.fn();
    render(Banners, { banners: [missed], presence: "inactive", onReset });
    expect(screen.getByTestId("banner-missed_offer").textContent).toContain(`You missed a request ${HOSTILE}`);
    await fireEvent.click(screen.getByTestId("reset-presence"));
    expect(act).toHaveBeenCalledWith({ action: "reset_presence" });
    // The keyboard is given somewhere before the banner goes.
    expect(onReset).toHaveBeenCalled();
    expect(act).not.toHaveBeenCalledWith({ action: "set_presence", presence: "available" });
    expect(window.__xss).toBeUndefined();
  });

  it("offers one reset for several banners (it answers them all)", () => {
    const limit = { notice: "max_sessions", message: "limit" } as never;
    render(Banners, { banners: [missed, limit], presence: "inactive" });
    expect(screen.getAllByTestId("reset-presence")).toHaveLength(1);
  });

  it("offers no reset to an agent who is Available", () => {
    render(Banners, { banners: [missed], presence: "available" });
    expect(screen.queryByTestId("reset-presence")).toBeNull();
  });
});
