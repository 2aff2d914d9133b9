// The only door to Rust: the generated typed commands and the one event
// channel. Components use this module (and tests mock it).
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { getCurrentWebviewWindow } from "@tauri-apps/api/webviewWindow";
import { commands, EVENT, type ShellEvent, type IpcError } from "../bindings/commands";

export { commands };
export type { ShellEvent, IpcError };

export function onShellEvent(handler: (e: ShellEvent) => void): Promise<UnlistenFn> {
  return listen<ShellEvent>(EVENT, (e) => handler(e.payload));
}

/** A readable message from whatever a command rejected with. */
export function errorMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as IpcError).message);
  return String(e);
}

/**
 * Whether the hub refused a read outright (not found, forbidden: a hub
 * without the endpoint, a role without the right), which asking again
 * will not change; unlike an unreachable hub.
 */
export function isRefusal(e: unknown): boolean {
  return !!e && typeof e === "object" && "code" in e && (e as IpcError).code === "refused";
}

/** This window's label ("main", or "alert" for the fallback alert window). */
export function windowLabel(): string {
  try {
    return getCurrentWebviewWindow().label;
  } catch {
    return "main";
  }
}
