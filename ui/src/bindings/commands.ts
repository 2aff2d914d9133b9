// Generated from src-tauri/bindings.rs by `scripts/dev bindings`. Do not edit.
import { invoke } from "@tauri-apps/api/core";
import type { Account } from "./Account";
import type { AgentAction } from "./AgentAction";
import type { AgentProfile } from "./AgentProfile";
import type { Contact } from "./Contact";
import type { ConversationSummary } from "./ConversationSummary";
import type { Customer360View } from "./Customer360View";
import type { EarlierMessages } from "./EarlierMessages";
import type { IpcError } from "./IpcError";
import type { LastLogin } from "./LastLogin";
import type { LinkRequest } from "./LinkRequest";
import type { NewAccount } from "./NewAccount";
import type { NewContact } from "./NewContact";
import type { Presence } from "./Presence";
import type { RecordSearch } from "./RecordSearch";
import type { ShellEvent } from "./ShellEvent";
import type { SignInRequest } from "./SignInRequest";
import type { TeamDirectory } from "./TeamDirectory";
import type { ViewRead } from "./ViewRead";
import type { ViewUpdate } from "./ViewUpdate";
import type { WaitingTeamChat } from "./WaitingTeamChat";

/** The one event channel from the shell. */
export const EVENT = "switchboard://event";
export type { IpcError, ShellEvent };

/** Typed commands; a rejected promise carries an `IpcError`. */
export const commands = {
  viewUpdate: (read: ViewRead): Promise<ViewUpdate> => invoke<ViewUpdate>("view_update", { read }),
  lastLogin: (): Promise<LastLogin> => invoke<LastLogin>("last_login"),
  signIn: (request: SignInRequest): Promise<AgentProfile> => invoke<AgentProfile>("sign_in", { request }),
  startDemo: (): Promise<AgentProfile> => invoke<AgentProfile>("start_demo"),
  signOut: (): Promise<null> => invoke<null>("sign_out"),
  cancelResume: (): Promise<null> => invoke<null>("cancel_resume"),
  act: (action: AgentAction): Promise<null> => invoke<null>("act", { action }),
  systemTheme: (): Promise<boolean | null> => invoke<boolean | null>("system_theme"),
  searchRecords: (query: RecordSearch): Promise<Array<Contact>> => invoke<Array<Contact>>("search_records", { query }),
  customer360: (id: number): Promise<Customer360View> => invoke<Customer360View>("customer_360", { id }),
  earlierMessages: (conversationId: number, before: number): Promise<EarlierMessages> => invoke<EarlierMessages>("earlier_messages", { conversationId, before }),
  createContact: (contact: NewContact): Promise<Contact> => invoke<Contact>("create_contact", { contact }),
  createAccount: (account: NewAccount): Promise<Account> => invoke<Account>("create_account", { account }),
  linkRecord: (id: number, link: LinkRequest): Promise<ConversationSummary> => invoke<ConversationSummary>("link_record", { id, link }),
  teamDirectory: (): Promise<TeamDirectory> => invoke<TeamDirectory>("team_directory"),
  resetPresence: (agentId: number): Promise<Presence> => invoke<Presence>("reset_presence", { agentId }),
  teamConversations: (): Promise<Array<ConversationSummary>> => invoke<Array<ConversationSummary>>("team_conversations"),
  waitingTeamChats: (): Promise<Array<WaitingTeamChat>> => invoke<Array<WaitingTeamChat>>("waiting_team_chats"),
};
