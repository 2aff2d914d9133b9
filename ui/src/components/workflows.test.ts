import { describe, it, expect, beforeEach, vi } from "vitest";
import { render, screen, fireEvent, waitFor } from "@testing-library/svelte";
import { act } from "../test/mock-api";
import { commands } from "../lib/api";
import { HOSTILE, offer, detail, appView, rows } from "../test/fixtures";
import OfferAlert from "./OfferAlert.svelte";
import Customer360 from "./Customer360.svelte";
import SessionActions from "./SessionActions.svelte";
import ChatPanel from "./ChatPanel.svelte";
import TeamPanel from "./TeamPanel.svelte";
import Header from "./Header.svelte";
import WaitingChats from "./WaitingChats.svelte";
import type { AppView } from "../bindings/AppView";
import type { Customer360View as View } from "../bindings/Customer360View";
import type { ConversationSummary } from "../bindings/ConversationSummary";

declare global {
  interface Window {
    __xss?: number;
  }
}

const mocked = commands as unknown as Record<string, ReturnType<typeof vi.fn>>;

function summary(over: Partial<ConversationSummary> = {}): ConversationSummary {
  return { ...detail().summary, ...over };
}

function view360(id = 3, name = "Lovelace"): View {
  return {
    contact: { id, first_name: "Ada", last_name: `${name} ${HOSTILE}`, phone: "+1 555", account_id: 9, account_name: "Contoso" },
    account: { id: 9, name: `Contoso ${HOSTILE}` },
    open_cases: [
      { id: 11, title: "Broken engine", open: true, contact_id: id, created_at: 1 },
      { id: 12, title: "Invoice", open: true, contact_id: id, created_at: 2 },
    ],
    earlier_conversations: [{ ...summary(), id: 55, status: "closed", started: "2026-11-20 14:05" }],
  };
}

beforeEach(() => {
  act.mockClear();
  for (const f of Object.values(mocked)) if (typeof f?.mockReset === "function") f.mockReset();
  mocked.teamDirectory.mockResolvedValue({ agents: [], queues: [] });
  delete window.__xss;
});

describe("OfferAlert origins", () => {
  // The headline and notes are worded by the engine (see engine_tests.rs);
  // the alert renders them as text.
  it("shows the engine's headline and note for a transfer as text", () => {
    const headline = `Transfer from Ana ${HOSTILE}: Ada ${HOSTILE}`;
    const { container } = render(OfferAlert, {
      offer: offer(
        {},
        1_000_060_000,
        { kind: "transfer", from: { id: 2, name: `Ana ${HOSTILE}` }, note: `VIP ${HOSTILE}` },
        headline,
        [`Note: VIP ${HOSTILE}`],
      ),
      now: 1_000_000_000,
    });
    expect(screen.getByTestId("offer-title").textContent).toBe(headline);
    expect(screen.getByTestId("offer-note").textContent).toBe(`Note: VIP ${HOSTILE}`);
    expect(container.querySelector("img")).toBeNull();
    expect(window.__xss).toBeUndefined();
  });

  it("shows a bot's transcript line by line", () => {
    render(OfferAlert, {
      offer: offer({}, 1_000_060_000, { kind: "bot_escalation", transcript: ["Bot: hi", `Customer: ${HOSTILE}`] }),
      now: 1_000_000_000,
    });
    const lines = [...screen.getByTestId("bot-transcript").querySelectorAll("li")].map((l) => l.textContent);
    expect(lines).toEqual(["Bot: hi", `Customer: ${HOSTILE}`]);
  });

  it("shows the engine's button words (Yes / No to 'Assign to me?')", async () => {
    render(OfferAlert, {
      offer: offer(
        {},
        1_000_060_000,
        { kind: "assign_to_me", owner: { id: 2, name: "Ana" }, idle_secs: 90 },
        `Assign to me? Ada ${HOSTILE}`,
        ["Ana has not answered the customer for 90 s"],
        ["Yes", "No"],
      ),
      now: 1_000_000_000,
    });
    expect(screen.getByTestId("accept").textContent).toBe("Yes");
    expect(screen.getByTestId("reject").textContent).toBe("No");
    await fireEvent.click(screen.getByTestId("reject"));
    expect(act).toHaveBeenCalledWith({ action: "reject", offer_id: 7, reason: null });
  });

  it("an assign request's reject waits for a reason", async () => {
    render(OfferAlert, {
      offer: offer(
        { reject_reason_required: true },
        1_000_060_000,
        {
          kind: "assign_request",
          from: { id: 2, name: "Ana" },
          reason: "shift ends",
        },
        "Ana asks you to take over: Ada",
        ["Reason: shift ends"],
      ),
      now: 1_000_000_000,
    });
    expect(screen.getByTestId("offer-note").textContent).toBe("Reason: shift ends");
    await fireEvent.click(screen.getByTestId("reject"));
    expect(act).not.toHaveBeenCalled();
    await fireEvent.input(screen.getByTestId("reject-reason"), { target: { value: "too busy" } });
    await fireEvent.click(screen.getByTestId("reject"));
    expect(act).toHaveBeenCalledWith({ action: "reject", offer_id: 7, reason: "too busy" });
  });
});

describe("Customer360", () => {
  it("one match: shows contact, account, open cases and earlier conversations as text", async () => {
    mocked.customer360.mockResolvedValue(view360());
    const { container } = render(Customer360, {
      summary: summary({ identification: { result: "one", contact_id: 3 }, link: { contact_id: 3 } }),
    });
    await waitFor(() => expect(screen.getByTestId("c360-name").textContent).toBe(`Ada Lovelace ${HOSTILE}`));
    expect(mocked.customer360).toHaveBeenCalledWith(3);
    expect(screen.getByTestId("c360-account").textContent).toBe(`Contoso ${HOSTILE}`);
    expect(screen.getByTestId("c360-cases").querySelectorAll("li")).toHaveLength(2);
    expect(screen.getByTestId("c360-history").textContent).toContain("2026-11-20 14:05 · closed");
    expect(container.querySelector("img")).toBeNull();
    expect(window.__xss).toBeUndefined();
  });

  it("a re-read of the same conversation keeps the panel: no second look-up, no flash", async () => {
    // Every message in the open conversation brings a new summary object
    // with the same identification and link.
    mocked.customer360.mockResolvedValue(view360());
    const one = () => summary({ identification: { result: "one", contact_id: 3 }, link: { contact_id: 3 } });
    const { rerender } = render(Customer360, { summary: one() });
    await waitFor(() => expect(screen.getByTestId("c360-name")).toBeTruthy());
    const shown = screen.getByTestId("c360-name");
    for (let i = 0; i < 3; i++) await rerender({ summary: one() });
    expect(mocked.customer360).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId("c360-name")).toBe(shown);

    mocked.customer360.mockImplementation(async (id: number) => view360(id, `Twin${id}`));
    const several = () => summary({ identification: { result: "several", contact_ids: [4, 5] } });
    await rerender({ summary: several() });
    await waitFor(() => expect(screen.getAllByTestId("select-record")).toHaveLength(2));
    const chooser = screen.getAllByTestId("select-record");
    await rerender({ summary: several() });
    expect(mocked.customer360).toHaveBeenCalledTimes(3);
    expect(screen.getAllByTestId("select-record")).toEqual(chooser);

    await rerender({ summary: summary({ identification: { result: "several", contact_ids: [4, 6] } }) });
    await waitFor(() => expect(mocked.customer360).toHaveBeenCalledTimes(5));
  });

  it("several matches: the chooser links the selected record", async () => {
    mocked.customer360.mockImplementation(async (id: number) => view360(id, `Twin${id}`));
    render(Customer360, { summary: summary({ identification: { result: "several", contact_ids: [4, 5] } }) });
    expect(screen.getByTestId("c360-several").textContent).toBe("One or more records found. Select a record or create new.");
    await waitFor(() => expect(screen.getAllByTestId("select-record")).toHaveLength(2));
    await fireEvent.click(screen.getAllByTestId("select-record")[1]);
    expect(mocked.linkRecord).toHaveBeenCalledWith(70, { contact_id: 5, case_id: null, confirm_other_case: false });
    await fireEvent.click(screen.getByTestId("create-new"));
    expect(screen.getByTestId("contact-form")).toBeTruthy();
  });

  it("no match: searches by every field and quick-creates a contact that is then linked", async () => {
    mocked.searchRecords.mockResolvedValue([]);
    mocked.createContact.mockResolvedValue({ id: 8, first_name: "New", last_name: "Person" });
    render(Customer360, { summary: summary({ identification: { result: "none" } }) });
    expect(screen.getByTestId("c360-none").textContent).toBe(
      "No records found. Search for an existing customer record or create a new one to link to this conversation.",
    );
    for (const f of ["first_name", "last_name", "account_name", "address", "city", "state", "phone", "email", "case_id"]) {
      expect(screen.getByTestId(`search-${f}`)).toBeTruthy();
    }
    await fireEvent.input(screen.getByTestId("search-last_name"), { target: { value: " Love " } });
    await fireEvent.input(screen.getByTestId("search-case_id"), { target: { value: "12" } });
    await fireEvent.click(screen.getByTestId("search"));
    await waitFor(() => expect(mocked.searchRecords).toHaveBeenCalled());
    expect(mocked.searchRecords.mock.calls[0][0]).toMatchObject({ last_name: "Love", case_id: 12 });
    await waitFor(() => expect(screen.getByTestId("search-results").textContent).toContain("No match"));
    await fireEvent.click(screen.getByTestId("quick-contact"));
    await fireEvent.input(screen.getByTestId("contact-last_name"), { target: { value: "Person" } });
    await fireEvent.click(screen.getByTestId("create-contact"));
    await waitFor(() => expect(mocked.linkRecord).toHaveBeenCalledWith(70, { contact_id: 8, case_id: null, confirm_other_case: false }));
    expect(mocked.createContact.mock.calls[0][0]).toMatchObject({ last_name: "Person", first_name: "" });
  });

  it("selecting the contact a case search found links that case too", async () => {
    mocked.searchRecords.mockResolvedValue([{ id: 3, first_name: "Ada", last_name: "Lovelace", account_name: null }]);
    mocked.linkRecord.mockResolvedValue(null);
    render(Customer360, { summary: summary({ identification: { result: "none" } }) });
    await fireEvent.input(screen.getByTestId("search-case_id"), { target: { value: "12" } });
    await fireEvent.click(screen.getByTestId("search"));
    await waitFor(() => expect(screen.getByTestId("select-record")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("select-record"));
    await waitFor(() =>
      expect(mocked.linkRecord).toHaveBeenLastCalledWith(70, { contact_id: 3, case_id: 12, confirm_other_case: false }),
    );
    // A search by name alone links the contact only.
    await fireEvent.input(screen.getByTestId("search-case_id"), { target: { value: "" } });
    await fireEvent.input(screen.getByTestId("search-last_name"), { target: { value: "Love" } });
    await fireEvent.click(screen.getByTestId("search"));
    await waitFor(() => expect(screen.getByTestId("select-record")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("select-record"));
    await waitFor(() =>
      expect(mocked.linkRecord).toHaveBeenLastCalledWith(70, { contact_id: 3, case_id: null, confirm_other_case: false }),
    );
  });

  it("another conversation keeps the panel's fields but nothing typed in them", async () => {
    // WebKit keeps part of every form control made and dropped: the
    // fields are made once, and a switch only resets what they hold.
    mocked.searchRecords.mockResolvedValue([]);
    const none = (id: number) => summary({ id, identification: { result: "none" } });
    const { rerender } = render(Customer360, { summary: none(70) });
    const field = screen.getByTestId("search-city") as HTMLInputElement;
    await fireEvent.input(field, { target: { value: "Leeds" } });
    await fireEvent.click(screen.getByTestId("search"));
    await waitFor(() => expect(screen.getByTestId("search-results")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("quick-contact"));
    expect(screen.getByTestId("contact-form")).toBeTruthy();
    await rerender({ summary: none(71) });
    expect(screen.getByTestId("search-city")).toBe(field);
    await waitFor(() => expect(field.value).toBe(""));
    expect(screen.queryByTestId("search-results")).toBeNull();
    expect(screen.queryByTestId("contact-form")).toBeNull();
    // A linked conversation hides the fields rather than dropping them.
    mocked.customer360.mockResolvedValue(view360());
    await rerender({ summary: summary({ id: 72, identification: { result: "one", contact_id: 3 }, link: { contact_id: 3 } }) });
    await waitFor(() => expect(screen.getByTestId("c360-name")).toBeTruthy());
    expect(screen.getByTestId("record-search").hidden).toBe(true);
    expect(screen.getByTestId("search-city")).toBe(field);
  });

  it("searches on Enter in a field, as a form would, without a <form> element", async () => {
    // WebKitGTK keeps every dropped <form> for the page's life (lib/enter.ts).
    mocked.searchRecords.mockResolvedValue([]);
    const { container } = render(Customer360, { summary: summary({ identification: { result: "none" } }) });
    await fireEvent.click(screen.getByTestId("quick-contact"));
    expect(container.querySelector("form")).toBeNull();
    await fireEvent.input(screen.getByTestId("search-city"), { target: { value: "Leeds" } });
    await fireEvent.keyDown(screen.getByTestId("search-city"), { key: "Shift" });
    expect(mocked.searchRecords).not.toHaveBeenCalled();
    await fireEvent.keyDown(screen.getByTestId("search-city"), { key: "Enter" });
    await waitFor(() => expect(mocked.searchRecords).toHaveBeenCalledTimes(1));
    expect(mocked.searchRecords.mock.calls[0][0]).toMatchObject({ city: "Leeds" });
    mocked.createContact.mockResolvedValue({ id: 8, first_name: "Ed", last_name: "Enter" });
    await fireEvent.input(screen.getByTestId("contact-last_name"), { target: { value: "Enter" } });
    await fireEvent.keyDown(screen.getByTestId("contact-last_name"), { key: "Enter" });
    await waitFor(() => expect(mocked.createContact).toHaveBeenCalledTimes(1));
  });

  it("quick-creates an account", async () => {
    mocked.createAccount.mockResolvedValue({ id: 9, name: "Fabrikam" });
    render(Customer360, { summary: summary() });
    await fireEvent.click(screen.getByTestId("quick-account"));
    await fireEvent.input(screen.getByTestId("account-name"), { target: { value: "Fabrikam" } });
    await fireEvent.click(screen.getByTestId("create-account"));
    await waitFor(() => expect(mocked.createAccount).toHaveBeenCalled());
    expect(mocked.createAccount.mock.calls[0][0]).toMatchObject({ name: "Fabrikam" });
    // The contact made next belongs to the new account and is linked.
    mocked.createContact.mockResolvedValue({ id: 8, first_name: "Fay", last_name: "Ng", account_id: 9 });
    await waitFor(() => expect(screen.getByTestId("contact-account").textContent).toBe("Account: Fabrikam"));
    await fireEvent.input(screen.getByTestId("contact-last_name"), { target: { value: "Ng" } });
    await fireEvent.click(screen.getByTestId("create-contact"));
    await waitFor(() => expect(mocked.createContact).toHaveBeenCalled());
    expect(mocked.createContact.mock.calls[0][0]).toMatchObject({ last_name: "Ng", account_id: 9 });
    await waitFor(() => expect(mocked.linkRecord).toHaveBeenLastCalledWith(70, expect.objectContaining({ contact_id: 8 })));
  });

  it("linking another case than the assigned one asks for confirmation first", async () => {
    mocked.customer360.mockResolvedValue(view360());
    mocked.linkRecord.mockRejectedValueOnce({ code: "conflict", message: "assigned to another case" });
    mocked.linkRecord.mockResolvedValueOnce(null);
    render(Customer360, { summary: summary({ link: { contact_id: 3, case_id: 11 } }) });
    await waitFor(() => expect(screen.getByTestId("linked-case")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("link-case"));
    await waitFor(() => expect(screen.getByTestId("case-warning")).toBeTruthy());
    expect(mocked.linkRecord).toHaveBeenLastCalledWith(70, { contact_id: 3, case_id: 12, confirm_other_case: false });
    await fireEvent.click(screen.getByTestId("case-confirm"));
    await waitFor(() => expect(mocked.linkRecord).toHaveBeenLastCalledWith(70, { contact_id: 3, case_id: 12, confirm_other_case: true }));
    await waitFor(() => expect(screen.queryByTestId("case-warning")).toBeNull());
  });
});

describe("Customer360 and another conversation coming to the front", () => {
  const none = (id: number) => summary({ id, identification: { result: "none" } });

  it("links a contact created for one conversation to it, not to the one on screen when it is made", async () => {
    let made: (c: unknown) => void = () => {};
    mocked.createContact.mockImplementation(() => new Promise((resolve) => (made = resolve)));
    mocked.linkRecord.mockResolvedValue(null);
    const { rerender } = render(Customer360, { summary: none(70) });
    await fireEvent.click(screen.getByTestId("quick-contact"));
    await fireEvent.input(screen.getByTestId("contact-last_name"), { target: { value: "Person" } });
    await fireEvent.click(screen.getByTestId("create-contact"));
    await waitFor(() => expect(mocked.createContact).toHaveBeenCalled());
    await rerender({ summary: none(71) });
    // The agent starts on 71's form meanwhile: the late answer leaves it alone.
    await fireEvent.click(screen.getByTestId("quick-contact"));
    await fireEvent.input(screen.getByTestId("contact-last_name"), { target: { value: "Other" } });
    made({ id: 8, first_name: "", last_name: "Person" });
    await waitFor(() => expect(mocked.linkRecord).toHaveBeenCalledWith(70, { contact_id: 8, case_id: null, confirm_other_case: false }));
    expect(mocked.linkRecord).not.toHaveBeenCalledWith(71, expect.anything());
    expect((screen.getByTestId("contact-last_name") as HTMLInputElement).value).toBe("Other");
  });

  it("drops search results and an account answered for the conversation before", async () => {
    let found: (r: unknown) => void = () => {};
    let madeAccount: (a: unknown) => void = () => {};
    mocked.searchRecords.mockImplementation(() => new Promise((resolve) => (found = resolve)));
    mocked.createAccount.mockImplementation(() => new Promise((resolve) => (madeAccount = resolve)));
    const { rerender } = render(Customer360, { summary: none(70) });
    await fireEvent.input(screen.getByTestId("search-last_name"), { target: { value: "Love" } });
    await fireEvent.click(screen.getByTestId("search"));
    await fireEvent.click(screen.getByTestId("quick-account"));
    await fireEvent.input(screen.getByTestId("account-name"), { target: { value: "Fabrikam" } });
    await fireEvent.click(screen.getByTestId("create-account"));
    await waitFor(() => expect(mocked.createAccount).toHaveBeenCalled());
    await rerender({ summary: none(71) });
    found([{ id: 3, first_name: "Ada", last_name: "Lovelace", account_name: null }]);
    madeAccount({ id: 9, name: "Fabrikam" });
    await new Promise((r) => setTimeout(r, 20));
    expect(screen.queryByTestId("search-results")).toBeNull();
    expect(screen.queryByTestId("contact-form")).toBeNull();
    expect((screen.getByTestId("search-account_name") as HTMLInputElement).value).toBe("");
  });
});

describe("Customer360 look-ups", () => {
  it("drops an answer that arrives after the link changed", async () => {
    let answerAda: (v: View) => void = () => {};
    mocked.customer360.mockImplementation(
      (id: number) =>
        new Promise<View>((resolve) => {
          if (id === 3) answerAda = resolve;
          else resolve(view360(id, "Other"));
        }),
    );
    const { rerender } = render(Customer360, { summary: summary({ link: { contact_id: 3 } }) });
    await rerender({ summary: summary({ link: { contact_id: 4 } }) });
    await waitFor(() => expect(screen.getByTestId("c360-name").textContent).toBe(`Ada Other ${HOSTILE}`));
    answerAda(view360(3, "Lovelace"));
    await new Promise((r) => setTimeout(r, 20));
    expect(screen.getByTestId("c360-name").textContent).toBe(`Ada Other ${HOSTILE}`);
  });
});

describe("SessionActions", () => {
  it("transfers to a chosen agent with a note", async () => {
    mocked.teamDirectory.mockResolvedValue({
      agents: [{ id: 2, name: "Ana", role: "agent", presence: "available", connected: true }],
      queues: ["Billing"],
    });
    render(SessionActions, { summary: summary() });
    await fireEvent.click(screen.getByTestId("session-actions"));
    await waitFor(() => expect(screen.getByTestId("action-target").querySelectorAll("option")).toHaveLength(2));
    await fireEvent.change(screen.getByTestId("action-target"), { target: { value: "2" } });
    await fireEvent.input(screen.getByTestId("action-note"), { target: { value: "billing" } });
    await fireEvent.click(screen.getByTestId("action-send"));
    expect(act).toHaveBeenCalledWith({
      action: "transfer",
      conversation_id: 70,
      target: { to: "agent", agent_id: 2 },
      note: "billing",
    });
  });

  it("sends with Enter in the note, and is not a <form>", async () => {
    mocked.teamDirectory.mockResolvedValue({
      agents: [{ id: 2, name: "Ana", role: "agent", presence: "available", connected: true }],
      queues: ["Billing"],
    });
    const { container } = render(SessionActions, { summary: summary() });
    await fireEvent.click(screen.getByTestId("session-actions"));
    // Opened for each hand-on: no <form> (lib/enter.ts).
    expect(container.querySelector("form")).toBeNull();
    await waitFor(() => expect(screen.getByTestId("action-target").querySelectorAll("option")).toHaveLength(2));
    await fireEvent.input(screen.getByTestId("action-note"), { target: { value: "vip" } });
    await fireEvent.keyDown(screen.getByTestId("action-note"), { key: "Enter" });
    // No one chosen yet: the panel says so and sends nothing.
    expect(act).not.toHaveBeenCalled();
    expect(screen.getByRole("alert").textContent).toContain("Choose who");
    await fireEvent.change(screen.getByTestId("action-target"), { target: { value: "2" } });
    await fireEvent.keyDown(screen.getByTestId("action-note"), { key: "Enter" });
    expect(act).toHaveBeenCalledWith({
      action: "transfer",
      conversation_id: 70,
      target: { to: "agent", agent_id: 2 },
      note: "vip",
    });
    expect(screen.queryByTestId("session-actions-form")).toBeNull();
  });

  it("sends an assign request with its reason, and escalates without choosing", async () => {
    mocked.teamDirectory.mockResolvedValue({
      agents: [
        { id: 2, name: "Ana", role: "agent", presence: "available", connected: true },
        { id: 4, name: "Sam", role: "supervisor", presence: "available", connected: true },
      ],
      queues: [],
    });
    render(SessionActions, { summary: summary() });
    await fireEvent.click(screen.getByTestId("session-actions"));
    await fireEvent.change(screen.getByTestId("action-kind"), { target: { value: "request_assign" } });
    await waitFor(() => expect(screen.getByTestId("action-target").querySelectorAll("option")).toHaveLength(3));
    await fireEvent.change(screen.getByTestId("action-target"), { target: { value: "2" } });
    await fireEvent.input(screen.getByTestId("action-note"), { target: { value: "shift ends" } });
    await fireEvent.click(screen.getByTestId("action-send"));
    expect(act).toHaveBeenCalledWith({ action: "request_assign", conversation_id: 70, agent_id: 2, reason: "shift ends" });
    await fireEvent.click(screen.getByTestId("session-actions"));
    await fireEvent.change(screen.getByTestId("action-kind"), { target: { value: "escalate" } });
    // Only supervisors are offered.
    expect(screen.getByTestId("action-target").querySelectorAll("option")).toHaveLength(2);
    await fireEvent.click(screen.getByTestId("action-send"));
    expect(act).toHaveBeenLastCalledWith({ action: "escalate", conversation_id: 70, supervisor_id: null, note: null });
  });
});

describe("SessionActions and signed-out agents", () => {
  it("offers a signed-out agent only for a supervisor's outright assignment", async () => {
    mocked.teamDirectory.mockResolvedValue({
      agents: [
        { id: 2, name: "Ana", role: "agent", presence: "available", connected: true },
        { id: 3, name: "Bo", role: "agent", presence: "offline", connected: false },
      ],
      queues: [],
    });
    render(SessionActions, { summary: summary(), supervisor: true });
    await fireEvent.click(screen.getByTestId("session-actions"));
    const option = (id: string) =>
      screen.getByTestId("action-target").querySelector(`option[value="${id}"]`) as HTMLOptionElement;
    await waitFor(() => expect(option("3")).toBeTruthy());
    expect(option("3").textContent).toBe("Bo (offline)");
    expect(option("2").textContent).toBe("Ana");
    expect(option("3").disabled).toBe(true);
    expect(option("2").disabled).toBe(false);
    await fireEvent.change(screen.getByTestId("action-kind"), { target: { value: "assign" } });
    expect(option("3").disabled).toBe(false);
  });
});

describe("SessionActions and a teammate who signs in later", () => {
  it("reads the team again each time the panel opens", async () => {
    const bo = { id: 3, name: "Bo", role: "agent" as const, presence: "offline" as const, connected: false };
    mocked.teamDirectory.mockResolvedValueOnce({ agents: [bo], queues: [] });
    render(SessionActions, { summary: summary() });
    const option = () => screen.getByTestId("action-target").querySelector('option[value="3"]') as HTMLOptionElement;
    await fireEvent.click(screen.getByTestId("session-actions"));
    await waitFor(() => expect(option()?.disabled).toBe(true));
    await fireEvent.click(screen.getByTestId("session-actions"));
    mocked.teamDirectory.mockResolvedValueOnce({
      agents: [{ ...bo, presence: "available", connected: true }],
      queues: [],
    });
    await fireEvent.click(screen.getByTestId("session-actions"));
    await waitFor(() => expect(option()?.disabled).toBe(false));
    expect(option().textContent).toBe("Bo");
    expect(mocked.teamDirectory).toHaveBeenCalledTimes(2);
  });
});

describe("SessionActions and teammates' presence", () => {
  it("shows a signed-in teammate's presence unless Available", async () => {
    mocked.teamDirectory.mockResolvedValue({
      agents: [
        { id: 2, name: "Ana", role: "agent", presence: "available", connected: true },
        { id: 3, name: "Bo", role: "agent", presence: "do_not_disturb", connected: true },
        { id: 5, name: "Cy", role: "agent", presence: "inactive", connected: true },
      ],
      queues: [],
    });
    render(SessionActions, { summary: summary() });
    await fireEvent.click(screen.getByTestId("session-actions"));
    const labels = () => [...screen.getByTestId("action-target").querySelectorAll("option")].map((o) => o.textContent);
    await waitFor(() => expect(labels()).toHaveLength(4));
    expect(labels().slice(1)).toEqual(["Ana", "Bo (Do not disturb)", "Cy (Inactive)"]);
  });
});

describe("SessionActions for a supervisor", () => {
  it("offers 'Assign to…' to a supervisor only and assigns outright", async () => {
    mocked.teamDirectory.mockResolvedValue({
      agents: [{ id: 2, name: `Ana ${HOSTILE}`, role: "agent", presence: "available", connected: true }],
      queues: [],
    });
    const labels = () => [...screen.getByTestId("action-kind").querySelectorAll("option")].map((o) => o.textContent);
    const { unmount } = render(SessionActions, { summary: summary() });
    await fireEvent.click(screen.getByTestId("session-actions"));
    expect(labels()).not.toContain("Assign to…");
    unmount();
    render(SessionActions, { summary: summary(), supervisor: true });
    await fireEvent.click(screen.getByTestId("session-actions"));
    expect(labels()).toContain("Assign to…");
    await fireEvent.change(screen.getByTestId("action-kind"), { target: { value: "assign" } });
    await waitFor(() => expect(screen.getByTestId("action-target").querySelectorAll("option")).toHaveLength(2));
    expect(screen.queryByTestId("action-note")).toBeNull();
    await fireEvent.change(screen.getByTestId("action-target"), { target: { value: "2" } });
    await fireEvent.click(screen.getByTestId("action-send"));
    expect(act).toHaveBeenCalledWith({ action: "assign_to", conversation_id: 70, agent_id: 2 });
    expect(window.__xss).toBeUndefined();
  });

  it("reaches the session header of a supervisor's own conversation", async () => {
    render(ChatPanel, { detail: detail(), me: 1, supervisor: true });
    await fireEvent.click(screen.getByTestId("session-actions"));
    const kinds = [...screen.getByTestId("action-kind").querySelectorAll("option")].map((o) => o.textContent);
    expect(kinds).toContain("Assign to…");
  });
});

describe("ChatPanel in a session", () => {
  it("offers the hand-on actions to the owner only", () => {
    const { unmount } = render(ChatPanel, { detail: detail(), me: 1 });
    expect(screen.getByTestId("session-actions")).toBeTruthy();
    expect(screen.getByTestId("customer-360")).toBeTruthy();
    unmount();
    render(ChatPanel, { detail: detail(), me: 2 });
    expect(screen.queryByTestId("session-actions")).toBeNull();
    expect(screen.getByTestId("joined")).toBeTruthy();
  });
});

describe("TeamPanel (a supervisor's)", () => {
  const member = (id: number, name: string, presence: string, connected = true) =>
    ({ id, name, role: "agent", presence, connected }) as never;

  it("resets a teammate who is not Available, then shows the team as the hub has it", async () => {
    mocked.teamDirectory
      .mockResolvedValueOnce({
        agents: [member(2, "Ana", "available"), member(3, `Bo ${HOSTILE}`, "inactive"), member(5, "Cy", "do_not_disturb", false)],
        queues: [],
      })
      .mockResolvedValueOnce({
        agents: [member(2, "Ana", "available"), member(3, `Bo ${HOSTILE}`, "busy"), member(5, "Cy", "do_not_disturb", false)],
        queues: [],
      });
    // The hub went back to what Bo had set before missing an offer.
    mocked.resetPresence.mockResolvedValueOnce("busy");
    const onClose = vi.fn();
    render(TeamPanel, { onClose });
    await waitFor(() => expect(screen.getByTestId("team-presence-3").textContent?.trim()).toBe("Inactive"));
    expect(screen.getByTestId("team-presence-5").textContent?.trim()).toBe("Do not disturb · signed out");
    expect(screen.queryByTestId("reset-presence-2")).toBeNull();
    expect(screen.getByTestId("reset-presence-5")).toBeTruthy();
    screen.getByTestId("reset-presence-3").focus();
    await fireEvent.click(screen.getByTestId("reset-presence-3"));
    expect(mocked.resetPresence).toHaveBeenCalledWith(3);
    await waitFor(() => expect(screen.getByTestId("team-presence-3").textContent?.trim()).toBe("Busy"));
    expect(screen.getByTestId("reset-presence-3")).toBeTruthy();
    // The keyboard is in the dialog (a button that goes must not take it).
    expect(document.activeElement).toBe(screen.getByTestId("close-team"));
    expect(screen.getByRole("status").textContent).toBe(`Bo ${HOSTILE} is Busy again.`);
    expect(window.__xss).toBeUndefined();
    await fireEvent.keyDown(screen.getByTestId("close-team"), { key: "Escape" });
    expect(onClose).toHaveBeenCalled();
  });

  it("lists the team's conversations, waiting ones first, and assigns one to a teammate", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      mocked.teamDirectory.mockResolvedValue({
        agents: [member(2, "Ana", "available"), member(3, "Bo", "busy")],
        queues: [],
      });
      mocked.teamConversations
        .mockResolvedValueOnce([
          summary({ id: 70, status: "queued", owner: null, channel: "sms", customer: { ...summary().customer, name: `Wanda ${HOSTILE}` } }),
          summary({ id: 71, status: "assigned", owner: 2, channel: "chat" }),
        ])
        .mockResolvedValueOnce([summary({ id: 71, status: "assigned", owner: 2, channel: "chat" }), summary({ id: 70, status: "assigned", owner: 3, channel: "sms" })]);
      act.mockClear();
      render(TeamPanel, { onClose: () => {} });
      await waitFor(() => expect(screen.getByTestId("team-conversation-70")).toBeTruthy());
      const rows = screen.getAllByTestId(/^team-conversation-\d+$/).map((r) => r.dataset.testid);
      expect(rows).toEqual(["team-conversation-70", "team-conversation-71"]);
      expect(screen.getByTestId("team-conversation-70").textContent).toContain(`Wanda ${HOSTILE}`);
      expect(screen.getByTestId("team-conversation-status-70").textContent?.trim()).toBe("SMS · Waiting");
      expect(screen.getByTestId("team-conversation-status-71").textContent?.trim()).toBe("Chat · With Ana");
      // The owner is no choice for its own conversation.
      const choices = [...(screen.getByTestId("assign-target-71") as HTMLSelectElement).options].map((o) => o.textContent);
      expect(choices).toEqual(["Assign to…", "Bo"]);
      // Nobody chosen: said, nothing sent.
      await fireEvent.click(screen.getByTestId("assign-70"));
      expect(screen.getByRole("alert").textContent).toBe(`Choose who to assign Wanda ${HOSTILE}'s conversation to.`);
      expect(act).not.toHaveBeenCalled();
      await fireEvent.change(screen.getByTestId("assign-target-70"), { target: { value: "3" } });
      await fireEvent.click(screen.getByTestId("assign-70"));
      expect(act).toHaveBeenCalledWith({ action: "assign_to", conversation_id: 70, agent_id: 3 });
      expect(screen.getByRole("status").textContent).toBe(`Wanda ${HOSTILE}'s conversation is being assigned to Bo.`);
      // Read again once the hub has had the time to answer.
      await vi.advanceTimersByTimeAsync(600);
      await waitFor(() => expect(screen.getByTestId("team-conversation-status-70").textContent?.trim()).toBe("SMS · With Bo"));
      expect(window.__xss).toBeUndefined();
    } finally {
      vi.useRealTimers();
      mocked.teamDirectory.mockReset();
      mocked.teamDirectory.mockResolvedValue({ agents: [], queues: [] });
      mocked.teamConversations.mockReset();
      mocked.teamConversations.mockResolvedValue([]);
    }
  });

  it("offers a reset only while the hub's own change stands, and says to what", async () => {
    mocked.teamDirectory.mockResolvedValueOnce({
      agents: [
        { ...(member(3, "Bo", "inactive") as object), reset_to: "busy" },
        { ...(member(4, "Cy", "busy") as object), reset_to: null },
        { ...(member(5, "Di", "do_not_disturb") as object), reset_to: "available" },
      ],
      queues: [],
    });
    render(TeamPanel, { onClose: () => {} });
    await waitFor(() => expect(screen.getByTestId("reset-presence-3")).toBeTruthy());
    expect(screen.getByTestId("reset-presence-3").getAttribute("aria-label")).toBe("Reset Bo's presence to Busy");
    expect(screen.queryByTestId("reset-presence-4")).toBeNull();
    expect(screen.getByTestId("reset-presence-5")).toBeTruthy();
  });

  it("shows in the panel an assignment the hub refused", async () => {
    const { ui } = await import("../lib/state.svelte");
    mocked.teamDirectory.mockResolvedValueOnce({ agents: [member(2, "Ana", "available")], queues: [] });
    mocked.teamConversations.mockResolvedValueOnce([summary({ id: 70, status: "queued", owner: null })]);
    render(TeamPanel, { onClose: () => {} });
    await waitFor(() => expect(screen.getByTestId("team-conversation-70")).toBeTruthy());
    const refused = () => {
      ui.lastFailure = { seq: (ui.lastFailure?.seq ?? 0) + 1, what: "assign", message: "that agent has the maximum of 10 open sessions", conversationId: 70 };
    };
    refused();
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("that agent has the maximum of 10 open sessions"));
    // The next refusal, with the same text, shows again after the panel cleared it.
    mocked.teamConversations.mockResolvedValue([summary({ id: 70, status: "queued", owner: null })]);
    await fireEvent.click(screen.getByTestId("assign-70"));
    expect(screen.getByRole("alert").textContent).toBe(`Choose who to assign ${summary().customer.name}'s conversation to.`);
    refused();
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("that agent has the maximum of 10 open sessions"));
  });

  it("drops a chosen assignee once a re-read shows the chat taken, or the teammate no longer offered", async () => {
    try {
      mocked.teamDirectory
        .mockResolvedValueOnce({ agents: [member(2, "Alice", "available"), member(3, "Bob", "busy"), member(4, "Cy", "busy")], queues: [] })
        .mockResolvedValue({ agents: [member(2, "Alice", "available"), member(3, "Bob", "busy")], queues: [] });
      const waiting = (id: number) => summary({ id, status: "queued", owner: null });
      mocked.teamConversations
        .mockResolvedValueOnce([waiting(70), waiting(72)])
        .mockResolvedValue([summary({ id: 70, status: "assigned", owner: 3 }), waiting(72)]);
      act.mockClear();
      render(TeamPanel, { onClose: () => {} });
      await waitFor(() => expect(screen.getByTestId("team-conversation-72")).toBeTruthy());
      const alice = screen.getByTestId("assign-target-70") as HTMLSelectElement;
      await fireEvent.change(alice, { target: { value: "2" } });
      const cy = screen.getByTestId("assign-target-72") as HTMLSelectElement;
      await fireEvent.change(cy, { target: { value: "4" } });
      // Bob took X meanwhile; Cy left the team.
      await fireEvent.click(screen.getByTestId("refresh-team"));
      await waitFor(() => expect(screen.getByTestId("team-conversation-status-70").textContent?.trim()).toContain("With Bob"));
      await waitFor(() => expect([...cy.options].map((o) => o.value)).not.toContain("4"));
      expect((screen.getByTestId("assign-target-70") as HTMLSelectElement).value).toBe("");
      expect((screen.getByTestId("assign-target-72") as HTMLSelectElement).value).toBe("");
      await fireEvent.click(screen.getByTestId("assign-70"));
      await fireEvent.click(screen.getByTestId("assign-72"));
      expect(act).not.toHaveBeenCalled();
    } finally {
      mocked.teamDirectory.mockReset();
      mocked.teamDirectory.mockResolvedValue({ agents: [], queues: [] });
      mocked.teamConversations.mockReset();
      mocked.teamConversations.mockResolvedValue([]);
    }
  });

  it("says why a reset was refused", async () => {
    mocked.teamDirectory.mockResolvedValue({ agents: [member(3, "Bo", "inactive")], queues: [] });
    mocked.resetPresence.mockRejectedValue({ code: "forbidden", message: "agent is not in your team" });
    render(TeamPanel, { onClose: () => {} });
    await waitFor(() => expect(screen.getByTestId("reset-presence-3")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("reset-presence-3"));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("agent is not in your team"));
    expect(screen.getByTestId("team-presence-3").textContent?.trim()).toBe("Inactive");
  });
});

describe("Header's Team button", () => {
  const view = (can_assign: boolean): AppView =>
    appView({
      profile: { id: 1, username: "sam", display_name: "Sam", role: can_assign ? "supervisor" : "agent", team: null },
      can_assign,
    });

  it("is a supervisor's only", async () => {
    const { unmount } = render(Header, { view: view(false), onSettings: () => {} });
    expect(screen.queryByTestId("open-team")).toBeNull();
    unmount();
    const onTeam = vi.fn();
    render(Header, { view: view(true), onSettings: () => {}, onTeam });
    await fireEvent.click(screen.getByTestId("open-team"));
    expect(onTeam).toHaveBeenCalledWith(screen.getByTestId("open-team"));
  });
});

describe("Header's presence", () => {
  it("shows a presence only a newer hub knows, and does not offer it", async () => {
    render(Header, { view: appView({ presence: "other" }), onSettings: () => {} });
    const select = screen.getByTestId("presence") as HTMLSelectElement;
    expect(select.value).toBe("other");
    const shown = [...select.options].find((o) => o.value === "other");
    expect(shown?.textContent).toBe("Other (set by the hub)");
    expect(shown?.disabled).toBe(true);
    // The agent can still choose a presence this version knows.
    expect([...select.options].filter((o) => !o.disabled).map((o) => o.value)).toEqual([
      "available", "busy", "do_not_disturb", "away", "offline",
    ]);
  });
});

describe("Header's presence after the hub sets it back", () => {
  it("shows the view's presence again after a read, even the same one as before the agent's pick", async () => {
    const { rerender } = render(Header, { view: appView({ presence: "do_not_disturb" }), onSettings: () => {} });
    const select = screen.getByTestId("presence") as HTMLSelectElement;
    expect(select.value).toBe("do_not_disturb");
    await fireEvent.change(select, { target: { value: "available" } });
    expect(act).toHaveBeenCalledWith({ action: "set_presence", presence: "available" });
    // A read before the hub's answer keeps the pick on show for a moment.
    await rerender({ view: appView({ presence: "do_not_disturb" }) });
    expect(select.value).toBe("available");
    // The hub put Do not disturb straight back (session limit, work
    // waiting): the select says so once the moment has passed.
    await waitFor(() => expect(select.value).toBe("do_not_disturb"), { timeout: 3000 });
  });
});

describe("WaitingChats (any teammate's)", () => {
  const chat = (id: number, name: string, preview: string, messages = 1) => ({
    conversation: summary({ id, status: "offered", owner: null, channel: "sms", customer: { ...summary().customer, name } }),
    preview,
    messages,
  });

  it("lists the team's unowned chats as text, takes one, and closes once it is the agent's", async () => {
    const { ui } = await import("../lib/state.svelte");
    mocked.waitingTeamChats.mockResolvedValueOnce([chat(80, `Wes ${HOSTILE}`, `still ${HOSTILE} there?`, 2), chat(81, "Xia", "hi")]);
    act.mockClear();
    const onClose = vi.fn();
    render(WaitingChats, { onClose });
    await waitFor(() => expect(screen.getByTestId("waiting-chat-80")).toBeTruthy());
    expect(screen.getByTestId("waiting-preview-80").textContent).toBe(`still ${HOSTILE} there?`);
    expect(screen.getByTestId("waiting-chat-80").textContent).toContain("SMS · 2 messages");
    expect(screen.getByTestId("waiting-chat-81").textContent).toContain("SMS · 1 message");
    expect(window.__xss).toBeUndefined();
    // The keyboard starts on the first Take.
    expect(document.activeElement).toBe(screen.getByTestId("take-80"));
    await fireEvent.click(screen.getByTestId("take-80"));
    expect(act).toHaveBeenCalledWith({ action: "take_team_chat", conversation_id: 80 });
    expect(onClose).not.toHaveBeenCalled();
    // The hub's assignment reaches the view: the panel has done its job.
    const before = ui.view;
    ui.view = appView({ conversations: [{ ...rows()[0], id: 80 }] });
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    ui.view = before;
  });

  it("shows a teammate was quicker (each time), and reads the list again", async () => {
    const { ui } = await import("../lib/state.svelte");
    const refused = (conversationId: number) => {
      ui.lastFailure = { seq: (ui.lastFailure?.seq ?? 0) + 1, what: "take", message: "someone else took it", conversationId };
    };
    mocked.waitingTeamChats
      .mockResolvedValueOnce([chat(80, "Wes", "hello"), chat(81, "Xia", "hi")])
      .mockResolvedValueOnce([chat(81, "Xia", "hi")])
      .mockResolvedValueOnce([]);
    act.mockClear();
    render(WaitingChats, { onClose: () => {} });
    await waitFor(() => expect(screen.getByTestId("take-80")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("take-80"));
    // A second take before the hub answers the first is not sent.
    await fireEvent.click(screen.getByTestId("take-81"));
    expect(act).toHaveBeenCalledTimes(1);
    // Another command's refusal is not this take's, nor is an earlier
    // take's (of another conversation, sent before the panel was reopened).
    ui.lastFailure = { seq: (ui.lastFailure?.seq ?? 0) + 1, what: "send", message: "too long", conversationId: 80 };
    refused(79);
    await new Promise((r) => setTimeout(r, 20));
    expect(screen.queryByRole("alert")).toBeNull();
    refused(80);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("someone else took it"));
    await waitFor(() => expect(screen.queryByTestId("waiting-chat-80")).toBeNull());
    // The same refusal again (the same text) shows again: the panel is not stuck.
    await fireEvent.click(screen.getByTestId("take-81"));
    expect(screen.queryByRole("alert")).toBeNull();
    refused(81);
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("someone else took it"));
    await waitFor(() => expect(screen.getByTestId("no-waiting-chats")).toBeTruthy());
    expect(act).toHaveBeenCalledTimes(2);
  });

  it("reads the list again while open (a customer who came or was taken), and not once closed", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValueOnce([chat(80, "Wes", "hello")]).mockResolvedValue([chat(80, "Wes", "hello"), chat(82, "Yan", "new")]);
      const { unmount } = render(WaitingChats, { onClose: () => {} });
      await waitFor(() => expect(screen.getByTestId("waiting-chat-80")).toBeTruthy());
      expect(screen.queryByTestId("waiting-chat-82")).toBeNull();
      await vi.advanceTimersByTimeAsync(5000);
      await waitFor(() => expect(screen.getByTestId("waiting-chat-82")).toBeTruthy());
      const reads = mocked.waitingTeamChats.mock.calls.length;
      unmount();
      await vi.advanceTimersByTimeAsync(20_000);
      expect(mocked.waitingTeamChats.mock.calls.length).toBe(reads);
    } finally {
      vi.useRealTimers();
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValue([]);
    }
  });

  it("reads the list again at once when a team message comes or goes, without waiting for the timer", async () => {
    const { ui } = await import("../lib/state.svelte");
    const before = ui.view;
    try {
      ui.view = appView({ offers: [] });
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValueOnce([chat(80, "Wes", "hello")]).mockResolvedValue([chat(80, "Wes", "hello"), chat(82, "Yan", "new")]);
      render(WaitingChats, { onClose: () => {} });
      await waitFor(() => expect(screen.getByTestId("waiting-chat-80")).toBeTruthy());
      expect(mocked.waitingTeamChats).toHaveBeenCalledTimes(1);
      // A view read that changes nothing the list depends on reads nothing.
      ui.view = appView({ offers: [] });
      await new Promise((r) => setTimeout(r, 20));
      expect(mocked.waitingTeamChats).toHaveBeenCalledTimes(1);
      // Yan wrote to the team: the engine's view has the team message.
      const teamMessage = offer({}, 1_000_060_000, { kind: "team_message", preview: "new", messages: 1 });
      ui.view = appView({ offers: [{ ...teamMessage, offer: { ...teamMessage.offer, id: 12 } }] });
      await waitFor(() => expect(screen.getByTestId("waiting-chat-82")).toBeTruthy());
      expect(mocked.waitingTeamChats).toHaveBeenCalledTimes(2);
    } finally {
      ui.view = before;
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValue([]);
    }
  });

  it("says so, and lets the agent try again, when the app could not take the command", async () => {
    mocked.waitingTeamChats.mockResolvedValueOnce([chat(80, "Wes", "hello")]);
    act.mockClear();
    act.mockRejectedValueOnce({ code: "internal", message: "the engine is not running" });
    render(WaitingChats, { onClose: () => {} });
    await waitFor(() => expect(screen.getByTestId("take-80")).toBeTruthy());
    await fireEvent.click(screen.getByTestId("take-80"));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("the engine is not running"));
    await fireEvent.click(screen.getByTestId("take-80"));
    expect(act).toHaveBeenCalledTimes(2);
  });

  it("clears a failed read once a read succeeds, and stops reading a hub that refuses the list", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats
        .mockRejectedValueOnce({ code: "hub_unreachable", message: "not connected" })
        .mockResolvedValue([chat(80, "Wes", "hello")]);
      const first = render(WaitingChats, { onClose: () => {} });
      await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("not connected"));
      await vi.advanceTimersByTimeAsync(5000);
      await waitFor(() => expect(screen.getByTestId("waiting-chat-80")).toBeTruthy());
      expect(screen.queryByRole("alert")).toBeNull();
      first.unmount();

      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockRejectedValue({ code: "refused", message: "this hub does not list waiting team chats (it is older than this app)" });
      render(WaitingChats, { onClose: () => {} });
      await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("older than this app"));
      await vi.advanceTimersByTimeAsync(20_000);
      expect(mocked.waitingTeamChats).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValue([]);
    }
  });

  it("keeps the keyboard in the dialog when a re-read removes the row it was on", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValueOnce([chat(80, "Wes", "hello"), chat(81, "Xia", "hi")]).mockResolvedValue([chat(81, "Xia", "hi")]);
      render(WaitingChats, { onClose: () => {} });
      await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("take-80")));
      await vi.advanceTimersByTimeAsync(5000);
      await waitFor(() => expect(screen.queryByTestId("waiting-chat-80")).toBeNull());
      await waitFor(() => expect(document.activeElement).toBe(screen.getByRole("dialog")));
    } finally {
      vi.useRealTimers();
      mocked.waitingTeamChats.mockReset();
      mocked.waitingTeamChats.mockResolvedValue([]);
    }
  });

  it("gives the first Take the keyboard once a slow read arrives, when the keyboard is still in the dialog", async () => {
    let answer!: (c: unknown) => void;
    mocked.waitingTeamChats.mockReturnValueOnce(new Promise((r) => (answer = r)));
    render(WaitingChats, { onClose: () => {} });
    await new Promise((r) => setTimeout(r, 20));
    answer([chat(80, "Wes", "hello")]);
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("take-80")));
  });

  it("leaves the keyboard on an offer's Accept that appeared while the list was read", async () => {
    let answer!: (c: unknown) => void;
    mocked.waitingTeamChats.mockReturnValueOnce(new Promise((r) => (answer = r)));
    render(WaitingChats, { onClose: () => {} });
    await new Promise((r) => setTimeout(r, 20));
    // The offer's card takes the keyboard on its Accept.
    render(OfferAlert, { offer: offer(), now: 1_000_000_000 });
    const accept = screen.getByTestId("accept");
    await waitFor(() => expect(document.activeElement).toBe(accept));
    answer([chat(80, "Wes", "hello")]);
    await waitFor(() => expect(screen.getByTestId("take-80")).toBeTruthy());
    await new Promise((r) => setTimeout(r, 20));
    // The agent's Enter answers the offer they see, not a team chat.
    expect(document.activeElement).toBe(accept);
  });

  it("is offered in the header to an agent in a team", () => {
    const inTeam = appView({ profile: { id: 1, username: "a1", display_name: "A", role: "agent", team: "T" } });
    const { unmount } = render(Header, { view: inTeam, onSettings: () => {} });
    expect(screen.getByTestId("open-waiting")).toBeTruthy();
    unmount();
    render(Header, { view: appView({ profile: { id: 1, username: "a1", display_name: "A", role: "agent", team: null } }), onSettings: () => {} });
    expect(screen.queryByTestId("open-waiting")).toBeNull();
  });
});
