// Generated from src-tauri/bindings.rs by `scripts/dev bindings`. Do not edit.
import { invoke } from "@tauri-apps/api/core";
import type { AgentAction } from "./AgentAction";
import type { AgentProfile } from "./AgentProfile";
import type { AppView } from "./AppView";
import type { ConversationDetail } from "./ConversationDetail";
import type { IpcError } from "./IpcError";
import type { LastLogin } from "./LastLogin";
import type { ShellEvent } from "./ShellEvent";
import type { SignInRequest } from "./SignInRequest";

/** The one event channel from the shell. */
export const EVENT = "switchboard://event";
export type { IpcError, ShellEvent };

/** Typed commands; a rejected promise carries an `IpcError`. */
export const commands = {
  appView: (): Promise<AppView> => invoke<AppView>("app_view"),
  conversation: (id: number): Promise<ConversationDetail> => invoke<ConversationDetail>("conversation", { id }),
  lastLogin: (): Promise<LastLogin> => invoke<LastLogin>("last_login"),
  signIn: (request: SignInRequest): Promise<AgentProfile> => invoke<AgentProfile>("sign_in", { request }),
  startDemo: (): Promise<AgentProfile> => invoke<AgentProfile>("start_demo"),
  signOut: (): Promise<null> => invoke<null>("sign_out"),
  act: (action: AgentAction): Promise<null> => invoke<null>("act", { action }),
  systemTheme: (): Promise<boolean | null> => invoke<boolean | null>("system_theme"),
};
