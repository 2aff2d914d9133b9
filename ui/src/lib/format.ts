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

// One formatter for the whole app. `toLocaleTimeString(…, options)` builds a
// new ICU formatter on every call; ICU's memory is invisible to the
// JavaScript collector, so a history re-rendered on each conversation switch
// grew the web process by megabytes a minute (issue 7, the app soak).
const CLOCK = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });

/** "14:05": the wall-clock time of `ms` (ms since epoch) in the agent's locale. */
export function clock(ms: number): string {
  return CLOCK.format(ms);
}
