//! The customer store behind Customer 360: contacts, accounts and cases,
//! identification of a new conversation's customer (by phone for SMS,
//! WhatsApp and voice, by email for chat), indexed search, quick create, and
//! linking a conversation to a record or case.

use switchboard_protocol::rest::{
    normalize_phone, Account, CaseRecord, Contact, Customer360, LinkRequest, NewAccount,
    NewContact, RecordSearch,
};
use switchboard_protocol::{AccountId, CaseId, ContactId, Identification, RecordLink};

use super::*;

/// Most candidates kept in an identification or returned by a search.
const MAX_MATCHES: i64 = 20;
/// Longest accepted text in a record field.
const MAX_FIELD: usize = 200;

const CONTACT_COLUMNS: &str = "c.id, c.first_name, c.last_name, c.email, c.phone, c.address, c.city, c.state, c.account_id, a.name";

fn contact_from_row(r: &sqlx::sqlite::SqliteRow) -> Contact {
    Contact {
        id: ContactId(r.get(0)),
        first_name: r.get(1),
        last_name: r.get(2),
        email: r.get(3),
        phone: r.get(4),
        address: r.get(5),
        city: r.get(6),
        state: r.get(7),
        account_id: r.get::<Option<i64>, _>(8).map(AccountId),
        account_name: r.get(9),
    }
}

/// A trimmed, length-capped optional field; empty is none.
fn field(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(|s| truncate(s.trim(), MAX_FIELD))
        .filter(|s| !s.is_empty())
}

fn lower(v: &Option<String>) -> Option<String> {
    field(v).map(|s| s.to_lowercase())
}

/// The upper bound of a prefix range: every string starting with `prefix`
/// sorts before it, so `col >= prefix AND col < bound` uses the index.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Whether a channel identifies its customer by phone (else by email).
fn by_phone(channel: Channel) -> Option<bool> {
    match channel {
        Channel::Sms | Channel::Whatsapp | Channel::Voice => Some(true),
        Channel::Chat => Some(false),
        Channel::Facebook | Channel::Case | Channel::Other => None,
    }
}

impl Work<'_> {
    /// Matches a new conversation's customer against the contacts. `None`
    /// for channels that carry neither phone nor email.
    pub(super) async fn identify(
        &mut self,
        m: &IngressMessage,
    ) -> HubResult<Option<Identification>> {
        let (column, key) = match by_phone(m.channel) {
            Some(true) => ("phone_norm", m.phone.as_deref().map(normalize_phone)),
            Some(false) => (
                "email_lc",
                m.email.as_deref().map(|e| e.trim().to_lowercase()),
            ),
            None => return Ok(None),
        };
        let Some(key) = key.filter(|k| !k.is_empty() && k != "+") else {
            return Ok(Some(Identification::NoMatch));
        };
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM contacts WHERE {column} = ? ORDER BY id LIMIT ?"
        ))
        .bind(&key)
        .bind(MAX_MATCHES)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(Some(match ids.as_slice() {
            [] => Identification::NoMatch,
            [one] => Identification::One {
                contact_id: ContactId(*one),
            },
            many => Identification::Several {
                contact_ids: many.iter().copied().map(ContactId).collect(),
            },
        }))
    }

    /// The contact a case belongs to, if the case exists.
    pub(super) async fn case_contact(&mut self, case: CaseId) -> HubResult<Option<ContactId>> {
        let c: Option<i64> = sqlx::query_scalar("SELECT contact_id FROM cases WHERE id = ?")
            .bind(case.0)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(c.map(ContactId))
    }

    async fn insert_account(&mut self, a: &NewAccount) -> HubResult<Account> {
        let name = field(&Some(a.name.clone()))
            .ok_or_else(|| HubError::invalid("an account needs a name"))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, name_lc, phone, address, city, state) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&name)
        .bind(name.to_lowercase())
        .bind(field(&a.phone))
        .bind(field(&a.address))
        .bind(field(&a.city))
        .bind(field(&a.state))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Account {
            id: AccountId(id),
            name,
            phone: field(&a.phone),
            address: field(&a.address),
            city: field(&a.city),
            state: field(&a.state),
        })
    }

    async fn insert_contact(&mut self, c: &NewContact) -> HubResult<ContactId> {
        let last = field(&Some(c.last_name.clone()))
            .ok_or_else(|| HubError::invalid("a contact needs a last name"))?;
        let first = field(&Some(c.first_name.clone())).unwrap_or_default();
        if let Some(a) = c.account_id {
            let known: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = ?")
                .bind(a.0)
                .fetch_optional(&mut *self.tx)
                .await?;
            if known.is_none() {
                return Err(HubError::not_found("no such account"));
            }
        }
        let phone = field(&c.phone);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO contacts (first_name, last_name, first_lc, last_lc, email, email_lc, phone, phone_norm,
                address, address_lc, city, city_lc, state, state_lc, account_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&first)
        .bind(&last)
        .bind(first.to_lowercase())
        .bind(last.to_lowercase())
        .bind(field(&c.email))
        .bind(lower(&c.email))
        .bind(&phone)
        .bind(phone.as_deref().map(normalize_phone))
        .bind(field(&c.address))
        .bind(lower(&c.address))
        .bind(field(&c.city))
        .bind(lower(&c.city))
        .bind(field(&c.state))
        .bind(lower(&c.state))
        .bind(c.account_id.map(|a| a.0))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(ContactId(id))
    }
}

async fn load_contact(conn: &mut SqliteConnection, id: ContactId) -> HubResult<Contact> {
    let row = sqlx::query(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c LEFT JOIN accounts a ON a.id = c.account_id WHERE c.id = ?"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(contact_from_row)
        .ok_or_else(|| HubError::not_found("no such contact"))
}

impl Hub {
    /// Contacts matching every given field (case-insensitive prefixes;
    /// phone normalised; case id exact), at most 20.
    pub async fn search_records(&self, q: &RecordSearch) -> HubResult<Vec<Contact>> {
        if q.is_empty() {
            return Err(HubError::invalid("give at least one search field"));
        }
        let mut sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c LEFT JOIN accounts a ON a.id = c.account_id WHERE 1 = 1"
        );
        let mut binds: Vec<String> = Vec::new();
        let mut prefix = |column: &str, value: Option<String>, sql: &mut String| {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} >= ? AND {column} < ?"));
                binds.push(prefix_end(&v));
                binds.insert(binds.len() - 1, v);
            }
        };
        prefix("c.first_lc", lower(&q.first_name), &mut sql);
        prefix("c.last_lc", lower(&q.last_name), &mut sql);
        prefix("a.name_lc", lower(&q.account_name), &mut sql);
        prefix("c.address_lc", lower(&q.address), &mut sql);
        prefix("c.city_lc", lower(&q.city), &mut sql);
        prefix("c.state_lc", lower(&q.state), &mut sql);
        prefix("c.email_lc", lower(&q.email), &mut sql);
        if let Some(p) = field(&q.phone).map(|p| normalize_phone(&p)) {
            // A phone with no digits would match every contact (the first
            // twenty, taken for a match by whoever asked).
            if p.is_empty() {
                return Err(HubError::invalid("a phone number needs digits"));
            }
            sql.push_str(" AND c.phone_norm = ?");
            binds.push(p);
        }
        if let Some(case) = q.case_id {
            sql.push_str(" AND c.id = (SELECT contact_id FROM cases WHERE id = ?)");
            binds.push(case.to_string());
        }
        sql.push_str(" ORDER BY c.last_lc, c.first_lc, c.id LIMIT ?");
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(MAX_MATCHES).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(contact_from_row).collect())
    }

    /// Customer 360 of a contact: the contact, its account, open cases and
    /// earlier conversations.
    pub async fn customer_360(
        &self,
        viewer: &AgentProfile,
        id: ContactId,
    ) -> HubResult<Customer360> {
        let mut conn = self.pool.acquire().await?;
        let contact = load_contact(&mut conn, id).await?;
        let account = match contact.account_id {
            Some(a) => {
                let row = sqlx::query(
                    "SELECT id, name, phone, address, city, state FROM accounts WHERE id = ?",
                )
                .bind(a.0)
                .fetch_optional(&mut *conn)
                .await?;
                row.map(|r| Account {
                    id: AccountId(r.get(0)),
                    name: r.get(1),
                    phone: r.get(2),
                    address: r.get(3),
                    city: r.get(4),
                    state: r.get(5),
                })
            }
            None => None,
        };
        let cases = sqlx::query(
            "SELECT id, title, open, contact_id, created_at FROM cases WHERE contact_id = ? AND open = 1 ORDER BY created_at DESC, id DESC LIMIT 50",
        )
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
        let open_cases = cases
            .iter()
            .map(|r| CaseRecord {
                id: CaseId(r.get(0)),
                title: r.get(1),
                open: r.get(2),
                contact_id: ContactId(r.get(3)),
                created_at: Millis(r.get(4)),
            })
            .collect();
        // The contact is everyone's; another team's conversations with it
        // (who handled them, the customer's words) are not: the viewer's
        // own team's, the ones they owned or joined, or all for an admin.
        // Chosen before the limit, so a busy other team cannot push the
        // viewer's own history out of it.
        let conv_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT c.id FROM conversations c JOIN queues q ON q.id = c.queue_id
             WHERE c.contact_id = ?1
               AND (?3 OR q.team_id = (SELECT team_id FROM agents WHERE id = ?2)
                    OR c.owner_id = ?2
                    OR EXISTS (SELECT 1 FROM conversation_participants p
                               WHERE p.conversation_id = c.id AND p.agent_id = ?2))
             ORDER BY c.created_at DESC, c.id DESC LIMIT 20",
        )
        .bind(id.0)
        .bind(viewer.id.0)
        .bind(viewer.role == Role::Admin)
        .fetch_all(&mut *conn)
        .await?;
        let mut earlier_conversations = Vec::with_capacity(conv_ids.len());
        for c in conv_ids {
            earlier_conversations.push(load_summary(&mut conn, ConversationId(c)).await?);
        }
        Ok(Customer360 {
            contact,
            account,
            open_cases,
            earlier_conversations,
        })
    }

    /// Quick create of a contact.
    pub async fn create_contact(&self, c: &NewContact) -> HubResult<Contact> {
        let mut w = self.work().await?;
        let id = w.insert_contact(c).await?;
        let contact = load_contact(&mut w.tx, id).await?;
        self.commit(w).await?;
        Ok(contact)
    }

    /// Quick create of an account.
    pub async fn create_account(&self, a: &NewAccount) -> HubResult<Account> {
        let mut w = self.work().await?;
        let account = w.insert_account(a).await?;
        self.commit(w).await?;
        Ok(account)
    }

    /// Opens a case for a contact (connectors, admin tools, the demo).
    pub async fn create_case(&self, contact: ContactId, title: &str) -> HubResult<CaseRecord> {
        let mut w = self.work().await?;
        load_contact(&mut w.tx, contact).await?;
        let title = truncate(title.trim(), MAX_FIELD);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cases (contact_id, title, open, created_at) VALUES (?, ?, 1, ?) RETURNING id",
        )
        .bind(contact.0)
        .bind(&title)
        .bind(w.now.0)
        .fetch_one(&mut *w.tx)
        .await?;
        let now = w.now;
        self.commit(w).await?;
        Ok(CaseRecord {
            id: CaseId(id),
            title,
            open: true,
            contact_id: contact,
            created_at: now,
        })
    }

    /// Links a conversation to a record (and case), for its owner, a
    /// participant or a supervisor. Linking to a case other than the
    /// assigned one needs `confirm_other_case`; the case must belong to the
    /// contact. Everyone in the conversation gets the updated summary.
    pub async fn link_conversation(
        &self,
        viewer: &AgentProfile,
        conv: ConversationId,
        link: &LinkRequest,
    ) -> HubResult<ConversationSummary> {
        let mut w = self.work().await?;
        let summary = load_summary(&mut w.tx, conv).await?;
        if !crate::hub::may_see(&mut w.tx, viewer, &summary).await? {
            return Err(HubError::not_found("no such conversation"));
        }
        load_contact(&mut w.tx, link.contact_id).await?;
        if let Some(case) = link.case_id {
            match w.case_contact(case).await? {
                Some(c) if c == link.contact_id => {}
                Some(_) => return Err(HubError::invalid("that case belongs to another contact")),
                None => return Err(HubError::not_found("no such case")),
            }
            let assigned = summary.link.and_then(|l| l.case_id);
            if assigned.is_some_and(|a| a != case) && !link.confirm_other_case {
                return Err(HubError::conflict(
                    "this conversation is assigned to another case; confirm to link it to this one",
                ));
            }
        }
        // Linking to a record without a case keeps the assigned case only
        // if it belongs to that record.
        let case_id = match link.case_id {
            Some(c) => Some(c),
            None => summary
                .link
                .filter(|l| l.contact_id == link.contact_id)
                .and_then(|l| l.case_id),
        };
        sqlx::query("UPDATE conversations SET contact_id = ?, case_id = ? WHERE id = ?")
            .bind(link.contact_id.0)
            .bind(case_id.map(|c| c.0))
            .bind(conv.0)
            .execute(&mut *w.tx)
            .await?;
        let updated = load_summary(&mut w.tx, conv).await?;
        debug_assert_eq!(
            updated.link,
            Some(RecordLink {
                contact_id: link.contact_id,
                case_id
            })
        );
        if updated.status == ConversationStatus::Assigned {
            let members = updated
                .owner
                .into_iter()
                .chain(updated.participants.clone());
            for m in members {
                w.append(
                    m,
                    AgentEvent::ConversationUpdated {
                        conversation: updated.clone(),
                    },
                )
                .await?;
            }
        }
        self.commit(w).await?;
        tracing::info!(conversation = %conv, contact = %link.contact_id, "linked to record");
        Ok(updated)
    }

    /// The teammates (and every queue) an agent can hand work to.
    pub async fn team_directory(
        &self,
        me: &AgentProfile,
    ) -> HubResult<switchboard_protocol::rest::TeamDirectory> {
        let rows = sqlx::query(
            "SELECT a.id, a.display_name, a.role, a.presence, a.presence_before_system FROM agents a
             WHERE a.team_id = (SELECT team_id FROM agents WHERE id = ?) AND a.id <> ? ORDER BY a.display_name, a.id",
        )
        .bind(me.id.0)
        .bind(me.id.0)
        .fetch_all(&self.pool)
        .await?;
        let agents = rows
            .iter()
            .map(|r| {
                let id = AgentId(r.get(0));
                let presence = unwire(r.get::<&str, _>(3))?;
                Ok(switchboard_protocol::rest::TeamMember {
                    id,
                    name: r.get(1),
                    role: Role::parse(r.get::<&str, _>(2))
                        .ok_or_else(|| HubError::Corrupt("unknown role".into()))?,
                    presence,
                    connected: self.links.is_connected(id),
                    reset_to: crate::hub::reset_target(presence, r.get::<Option<&str>, _>(4)),
                })
            })
            .collect::<HubResult<Vec<_>>>()?;
        let queues: Vec<String> = sqlx::query_scalar("SELECT name FROM queues ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(switchboard_protocol::rest::TeamDirectory { agents, queues })
    }

    /// Seeds the customer store once (an empty store only): the demo's
    /// contacts, accounts and cases.
    pub async fn seed_records(
        &self,
        seed: &[(NewContact, Option<&str>, &[&str])],
    ) -> HubResult<()> {
        let mut w = self.work().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
            .fetch_one(&mut *w.tx)
            .await?;
        if count > 0 {
            return self.commit(w).await;
        }
        for (contact, account, cases) in seed {
            let mut c = contact.clone();
            if let Some(name) = account {
                let existing: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM accounts WHERE name = ?")
                        .bind(name)
                        .fetch_optional(&mut *w.tx)
                        .await?;
                c.account_id = Some(match existing {
                    Some(id) => AccountId(id),
                    None => {
                        w.insert_account(&NewAccount {
                            name: (*name).into(),
                            ..Default::default()
                        })
                        .await?
                        .id
                    }
                });
            }
            let id = w.insert_contact(&c).await?;
            for title in *cases {
                sqlx::query(
                    "INSERT INTO cases (contact_id, title, open, created_at) VALUES (?, ?, 1, ?)",
                )
                .bind(id.0)
                .bind(*title)
                .bind(w.now.0)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        self.commit(w).await
    }
}
