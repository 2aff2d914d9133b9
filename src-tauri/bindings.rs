//! TypeScript bindings for the UI: every type crossing the IPC boundary
//! (via ts-rs) plus typed wrappers for the commands and the event name.
//! Committed under `ui/src/bindings/`; a test fails when they drift
//! (`scripts/dev bindings` rewrites them).

use std::path::Path;

use switchboard_client::view::{
    AppView, ConversationDetail, Customer360View, EarlierMessages, ViewRead, ViewUpdate,
};
use switchboard_client::AgentAction;
use switchboard_protocol::rest::{
    Account, Contact, LinkRequest, NewAccount, NewContact, RecordSearch, TeamDirectory,
    WaitingTeamChat,
};
use switchboard_protocol::{AgentProfile, ConversationSummary};
use ts_rs::{Config, TS};

use crate::error::IpcError;
use crate::events::EVENT;
use crate::models::{LastLogin, ShellEvent, SignInRequest};

struct Cmd {
    name: &'static str,
    args: Vec<(&'static str, String)>,
    ret: String,
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in name.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn commands(cfg: &Config) -> Vec<Cmd> {
    vec![
        Cmd {
            name: "view_update",
            args: vec![("read", ViewRead::name(cfg))],
            ret: ViewUpdate::name(cfg),
        },
        Cmd {
            name: "last_login",
            args: vec![],
            ret: LastLogin::name(cfg),
        },
        Cmd {
            name: "sign_in",
            args: vec![("request", SignInRequest::name(cfg))],
            ret: AgentProfile::name(cfg),
        },
        Cmd {
            name: "start_demo",
            args: vec![],
            ret: AgentProfile::name(cfg),
        },
        Cmd {
            name: "sign_out",
            args: vec![],
            ret: "null".into(),
        },
        Cmd {
            name: "cancel_resume",
            args: vec![],
            ret: "null".into(),
        },
        Cmd {
            name: "act",
            args: vec![("action", AgentAction::name(cfg))],
            ret: "null".into(),
        },
        Cmd {
            name: "system_theme",
            args: vec![],
            ret: "boolean | null".into(),
        },
        Cmd {
            name: "search_records",
            args: vec![("query", RecordSearch::name(cfg))],
            ret: format!("Array<{}>", Contact::name(cfg)),
        },
        Cmd {
            name: "customer_360",
            args: vec![("id", "number".into())],
            ret: Customer360View::name(cfg),
        },
        Cmd {
            name: "earlier_messages",
            args: vec![
                ("conversationId", "number".into()),
                ("before", "number".into()),
            ],
            ret: EarlierMessages::name(cfg),
        },
        Cmd {
            name: "create_contact",
            args: vec![("contact", NewContact::name(cfg))],
            ret: Contact::name(cfg),
        },
        Cmd {
            name: "create_account",
            args: vec![("account", NewAccount::name(cfg))],
            ret: Account::name(cfg),
        },
        Cmd {
            name: "link_record",
            args: vec![("id", "number".into()), ("link", LinkRequest::name(cfg))],
            ret: ConversationSummary::name(cfg),
        },
        Cmd {
            name: "team_directory",
            args: vec![],
            ret: TeamDirectory::name(cfg),
        },
        Cmd {
            name: "reset_presence",
            args: vec![("agentId", "number".into())],
            ret: "Presence".into(),
        },
        Cmd {
            name: "team_conversations",
            args: vec![],
            ret: format!("Array<{}>", ConversationSummary::name(cfg)),
        },
        Cmd {
            name: "waiting_team_chats",
            args: vec![],
            ret: format!("Array<{}>", WaitingTeamChat::name(cfg)),
        },
    ]
}

/// The names the build script's app manifest must list.
pub fn command_names() -> Vec<&'static str> {
    commands(&Config::new())
        .into_iter()
        .map(|c| c.name)
        .collect()
}

fn commands_ts(cfg: &Config) -> String {
    let cmds = commands(cfg);
    let mut types: Vec<String> = cmds
        .iter()
        .flat_map(|c| {
            c.args
                .iter()
                .map(|a| a.1.clone())
                .chain(std::iter::once(c.ret.clone()))
        })
        // `Array<T>` imports `T`.
        .map(|t| {
            t.strip_prefix("Array<")
                .and_then(|x| x.strip_suffix('>'))
                .map(str::to_owned)
                .unwrap_or(t)
        })
        .filter(|t| t != "number" && t != "null" && t != "boolean | null")
        .chain(["IpcError".to_owned(), "ShellEvent".to_owned()])
        .collect();
    types.sort();
    types.dedup();
    let mut out = String::from(
        "// Generated from src-tauri/bindings.rs by `scripts/dev bindings`. Do not edit.\n\
         import { invoke } from \"@tauri-apps/api/core\";\n",
    );
    for t in &types {
        out.push_str(&format!("import type {{ {t} }} from \"./{t}\";\n"));
    }
    out.push_str(&format!(
        "\n/** The one event channel from the shell. */\nexport const EVENT = {EVENT:?};\n\
         export type {{ IpcError, ShellEvent }};\n\n\
         /** Typed commands; a rejected promise carries an `IpcError`. */\nexport const commands = {{\n"
    ));
    for c in &cmds {
        let params = c
            .args
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        let obj = if c.args.is_empty() {
            String::new()
        } else {
            format!(
                ", {{ {} }}",
                c.args
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push_str(&format!(
            "  {}: ({params}): Promise<{}> => invoke<{}>({:?}{obj}),\n",
            camel(c.name),
            c.ret,
            c.ret,
            c.name
        ));
    }
    out.push_str("};\n");
    out
}

/// Writes every binding into `dir`.
pub fn export(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Config::new().with_out_dir(dir).with_large_int("number");
    AppView::export_all(&cfg)?;
    ConversationDetail::export_all(&cfg)?;
    EarlierMessages::export_all(&cfg)?;
    ViewRead::export_all(&cfg)?;
    ViewUpdate::export_all(&cfg)?;
    AgentAction::export_all(&cfg)?;
    ShellEvent::export_all(&cfg)?;
    IpcError::export_all(&cfg)?;
    SignInRequest::export_all(&cfg)?;
    LastLogin::export_all(&cfg)?;
    AgentProfile::export_all(&cfg)?;
    Customer360View::export_all(&cfg)?;
    RecordSearch::export_all(&cfg)?;
    NewContact::export_all(&cfg)?;
    NewAccount::export_all(&cfg)?;
    LinkRequest::export_all(&cfg)?;
    TeamDirectory::export_all(&cfg)?;
    WaitingTeamChat::export_all(&cfg)?;
    std::fs::write(dir.join("commands.ts"), commands_ts(&cfg))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read_dir(dir: &Path) -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read_to_string(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn committed_bindings_match_the_rust_types() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/bindings");
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            let _ = std::fs::remove_dir_all(&committed);
            std::fs::create_dir_all(&committed).expect("create bindings dir");
            export(&committed).expect("export bindings");
        }
        let fresh = tempfile::tempdir().expect("temp dir");
        export(fresh.path()).expect("export bindings");
        let want = read_dir(fresh.path());
        let have = read_dir(&committed);
        let drift: Vec<&String> = want
            .keys()
            .chain(have.keys())
            .filter(|k| want.get(*k) != have.get(*k))
            .collect();
        assert!(
            drift.is_empty(),
            "TypeScript bindings drifted in {drift:?}: run `scripts/dev bindings` and commit ui/src/bindings"
        );
        assert!(want.contains_key("commands.ts") && want.contains_key("AppView.ts"));
    }

    #[test]
    fn the_build_manifest_lists_every_command() {
        let build = include_str!("build.rs");
        for name in command_names() {
            assert!(
                build.contains(&format!("\"{name}\"")),
                "build.rs lacks {name}"
            );
        }
        let caps = include_str!("../capabilities/main.json");
        for name in command_names() {
            let perm = format!("\"allow-{}\"", name.replace('_', "-"));
            assert!(caps.contains(&perm), "capability lacks {perm}");
        }
    }
}
