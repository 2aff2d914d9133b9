// Pure presentation helpers (no business rules).
import type { Channel } from "../bindings/Channel";
import type { Presence } from "../bindings/Presence";

const CHANNELS: Record<Channel, string> = {
  chat: "Chat",
  sms: "SMS",
  whatsapp: "WhatsApp",
  facebook: "Facebook",
  voice: "Call",
  case: "Case",
  // A channel a newer hub added: the conversation still shows.
  other: "Message",
};

export function channelLabel(c: Channel): string {
  return CHANNELS[c] ?? c;
}

const PRESENCES: Record<Presence, string> = {
  available: "Available",
  busy: "Busy",
  do_not_disturb: "Do not disturb",
  away: "Away",
  offline: "Appear offline",
  inactive: "Inactive",
  // A presence a newer hub set (it cannot be chosen here).
  other: "Other (set by the hub)",
};

export function presenceLabel(p: Presence | null | undefined): string {
  return p ? PRESENCES[p] : "Unknown";
}

/** Presences an agent may choose (inactive is set by the system). */
export const SELECTABLE_PRESENCES: Presence[] = ["available", "busy", "do_not_disturb", "away", "offline"];

/** "45 s", "2:05" — the time left until `deadline` (ms since epoch). */
export function countdown(deadline: number, now: number): string {
  const s = Math.max(0, Math.ceil((deadline - now) / 1000));
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Wait time since `since` (ms since epoch). */
export function waited(since: number, now: number): string {
  const s = Math.max(0, Math.floor((now - since) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// No clock times here: the engine labels them ("14:05", `MessageLine.time`).
// Formatting a time in the page, even through one shared Intl formatter or
// `Date#getHours`, makes WebKitGTK load ICU's time-zone and calendar data
// and keep it all day (3.5 MiB of the web process; issue 7).
