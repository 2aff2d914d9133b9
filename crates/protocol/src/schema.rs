//! JSON Schema export of every wire type.

use schemars::{schema_for, Schema};

use crate::{rest, ClientFrame, ErrorBody, ServerFrame};

/// One committed schema file.
pub struct SchemaDocument {
    /// File name under `crates/protocol/schema/`.
    pub file_name: &'static str,
    /// The schema.
    pub schema: Schema,
}

impl SchemaDocument {
    /// Pretty JSON with a trailing newline, as committed.
    pub fn to_pretty_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.schema).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Every schema this protocol version defines.
pub fn schema_documents() -> Vec<SchemaDocument> {
    vec![
        SchemaDocument {
            file_name: "client-frame.json",
            schema: schema_for!(ClientFrame),
        },
        SchemaDocument {
            file_name: "server-frame.json",
            schema: schema_for!(ServerFrame),
        },
        SchemaDocument {
            file_name: "error-body.json",
            schema: schema_for!(ErrorBody),
        },
        SchemaDocument {
            file_name: "rest-login-request.json",
            schema: schema_for!(rest::LoginRequest),
        },
        SchemaDocument {
            file_name: "rest-login-response.json",
            schema: schema_for!(rest::LoginResponse),
        },
        SchemaDocument {
            file_name: "rest-ingress-message.json",
            schema: schema_for!(rest::IngressMessage),
        },
        SchemaDocument {
            file_name: "rest-ingress-response.json",
            schema: schema_for!(rest::IngressResponse),
        },
        SchemaDocument {
            file_name: "rest-presence-request.json",
            schema: schema_for!(rest::PresenceRequest),
        },
        SchemaDocument {
            file_name: "rest-presence-reset.json",
            schema: schema_for!(rest::PresenceReset),
        },
        SchemaDocument {
            file_name: "rest-agent-spec.json",
            schema: schema_for!(rest::AgentSpec),
        },
        SchemaDocument {
            file_name: "rest-agent-status.json",
            schema: schema_for!(rest::AgentStatus),
        },
        SchemaDocument {
            file_name: "rest-queue-spec.json",
            schema: schema_for!(rest::QueueSpec),
        },
        SchemaDocument {
            file_name: "rest-revoke-response.json",
            schema: schema_for!(rest::RevokeResponse),
        },
        SchemaDocument {
            file_name: "rest-record-search.json",
            schema: schema_for!(rest::RecordSearch),
        },
        SchemaDocument {
            file_name: "rest-contact.json",
            schema: schema_for!(rest::Contact),
        },
        SchemaDocument {
            file_name: "rest-account.json",
            schema: schema_for!(rest::Account),
        },
        SchemaDocument {
            file_name: "rest-customer-360.json",
            schema: schema_for!(rest::Customer360),
        },
        SchemaDocument {
            file_name: "rest-new-contact.json",
            schema: schema_for!(rest::NewContact),
        },
        SchemaDocument {
            file_name: "rest-new-account.json",
            schema: schema_for!(rest::NewAccount),
        },
        SchemaDocument {
            file_name: "rest-link-request.json",
            schema: schema_for!(rest::LinkRequest),
        },
        SchemaDocument {
            file_name: "rest-team-directory.json",
            schema: schema_for!(rest::TeamDirectory),
        },
        SchemaDocument {
            file_name: "rest-waiting-team-chat.json",
            schema: schema_for!(rest::WaitingTeamChat),
        },
    ]
}
