import type { OfferCard } from "../bindings/OfferCard";
import type { ConversationDetail } from "../bindings/ConversationDetail";
import type { ConversationRow } from "../bindings/ConversationRow";
import type { NotificationTemplate } from "../bindings/NotificationTemplate";
import type { OfferOrigin } from "../bindings/OfferOrigin";
import type { AppView } from "../bindings/AppView";

export const HOSTILE = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;

export function template(over: Partial<NotificationTemplate> = {}): NotificationTemplate {
  return {
    kind: "alert",
    timeout_secs: 60,
    show_timeout: true,
    allow_reject: true,
    reject_reason_required: false,
    auto_accept: false,
    auto_assign: false,
    details: ["customer_name", "comment", "wait_time"],
    desktop: "when_unfocused",
    ...over,
  };
}

export function offer(
  over: Partial<NotificationTemplate> = {},
  deadline = 1_000_060_000,
  origin: OfferOrigin = { kind: "new_conversation" },
  headline = `Incoming WhatsApp from Ada ${HOSTILE}`,
  notes: string[] = [],
  [accept_label, reject_label] = ["Accept", "Reject"],
): OfferCard {
  return {
    deadline,
    headline,
    notes,
    accept_label,
    reject_label,
    offer: {
      id: 7,
      origin,
      created_at: 1_000_000_000,
      expires_at: deadline,
      template: template(over),
      conversation: {
        id: 70,
        channel: "whatsapp",
        queue: "Support",
        scenario: "incoming_whatsapp",
        customer: { name: `Ada ${HOSTILE}` },
        comment: `Please help ${HOSTILE}`,
        created_at: 1_000_000_000 - 30_000,
        status: "offered",
      },
    },
  };
}

export function detail(): ConversationDetail {
  return {
    summary: { ...offer().offer.conversation, status: "assigned", owner: 1 },
    messages: [
      { id: 1, conversation_id: 70, author: { kind: "customer" }, text: `hi ${HOSTILE}`, sent_at: 1_000_000_000, time: "14:46" },
      { id: 2, conversation_id: 70, author: { kind: "agent", agent_id: 1 }, text: "Hello Ada", sent_at: 1_000_001_000, time: "14:47" },
    ],
    draft: "half a thought",
    unread: 1,
    may_have_earlier: false,
  };
}

export function rows(): ConversationRow[] {
  return [
    { id: 70, channel: "whatsapp", customer_name: `Ada ${HOSTILE}`, unread: 3, last_text: HOSTILE, last_at: 2, session_open: true, has_draft: true },
    { id: 71, channel: "sms", customer_name: "Ben", unread: 0, last_text: null, last_at: 1, session_open: false, has_draft: false },
  ];
}

/** A signed-in agent's view with nothing going on (`over` replaces fields). */
export function appView(over: Partial<AppView> = {}): AppView {
  return {
    profile: { id: 1, username: "ada", display_name: "Ada", role: "agent", team: null },
    can_assign: false,
    presence: "available",
    connection: "online",
    unread_chats: 0,
    conversations: [],
    active: null,
    offers: [],
    banners: [],
    settings: {
      desktop_notifications: null,
      sound_when: "when_unfocused",
      volume: 80,
      tone: "classic",
      reminder_secs: null,
      theme: "system",
      start_at_login: false,
      clock: "system",
    },
    ...over,
  };
}
