import { vi } from "vitest";

export const act = vi.fn(async (_action: unknown) => null);

vi.mock("../lib/api", () => ({
  commands: {
    act: (action: unknown) => act(action),
    appView: vi.fn(async () => {
      throw { code: "not_signed_in", message: "not signed in" };
    }),
    conversation: vi.fn(),
    viewUpdate: vi.fn(async () => {
      throw { code: "not_signed_in", message: "not signed in" };
    }),
    lastLogin: vi.fn(async () => ({ hub_url: "http://hub.test:1", username: "ada" })),
    signIn: vi.fn(async () => {
      throw { code: "unauthorized", message: "wrong user name or password" };
    }),
    startDemo: vi.fn(),
    signOut: vi.fn(),
    cancelResume: vi.fn(async () => null),
    systemTheme: vi.fn(async () => null),
    searchRecords: vi.fn(async () => []),
    customer360: vi.fn(),
    earlierMessages: vi.fn(),
    createContact: vi.fn(),
    createAccount: vi.fn(),
    linkRecord: vi.fn(async () => null),
    teamDirectory: vi.fn(async () => ({ agents: [], queues: [] })),
    resetPresence: vi.fn(async () => "available"),
    teamConversations: vi.fn(async () => []),
    waitingTeamChats: vi.fn(async () => []),
  },
  onShellEvent: vi.fn(async () => () => {}),
  windowLabel: () => "main",
  errorMessage: (e: { message?: string }) => e?.message ?? String(e),
  isRefusal: (e: { code?: string }) => e?.code === "refused",
}));
