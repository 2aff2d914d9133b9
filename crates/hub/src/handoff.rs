//! Routing between agents: transfer, escalation, consult, assign and
//! discuss requests, supervisor assignment, team-owned conversations and the
//! idle owner's "Assign to me?".
//!
//! Everything reuses the offer machinery: a request is an [`Offer`] whose
//! [`OfferOrigin`] says what it is, so the client's alerts, countdowns,
//! persistence, OS notifications and tray quick-accept work unchanged.
//! Routed origins (transfer, escalation) are rerouted when declined, like a
//! new conversation; requests (`OfferOrigin::is_request`) are not, and
//! declining them costs the agent nothing.

use switchboard_protocol::{AgentRef, TransferTarget};

use super::*;

/// Kept from a customer message in a team notification.
pub(super) const PREVIEW_CHARS: usize = 200;

/// SQL condition on conversation `c`: a pending offer to one person (anything
/// but a team message: a transfer or escalation with an alert template),
/// which is theirs to answer, not the team's to take from the waiting list
/// (`take_team_chat`) or to be offered as a late arrival (`team_catch_up`:
/// the agent who just transferred it would be offered it back). One text
/// for all three, so they cannot disagree. A customer who writes meanwhile
/// is still heard by the whole team, as for any team chat nobody has
/// accepted (seed 003), and the teammate who accepts that team message
/// takes the chat (the transfer's offer is withdrawn).
pub(super) const OFFERED_TO_ONE_PERSON: &str = "EXISTS (SELECT 1 FROM offers o
    WHERE o.conversation_id = c.id AND o.status = 'pending'
      AND COALESCE(json_extract(o.origin, '$.kind'), 'new_conversation') <> 'team_message')";

impl Work<'_> {
    /// Whether the conversation is offered to one person
    /// ([`OFFERED_TO_ONE_PERSON`]).
    async fn offered_to_one_person(&mut self, conv: ConversationId) -> HubResult<bool> {
        let sql = format!("SELECT {OFFERED_TO_ONE_PERSON} FROM conversations c WHERE c.id = ?");
        Ok(sqlx::query_scalar(&sql)
            .bind(conv.0)
            .fetch_one(&mut *self.tx)
            .await?)
    }

    /// The conversation, if the agent owns it or joined it and it is open.
    pub(super) async fn member(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
    ) -> HubResult<ConversationSummary> {
        let summary = load_summary(&mut self.tx, conv).await?;
        if summary.owner != Some(agent) && !summary.participants.contains(&agent) {
            return Err(HubError::not_found("no such conversation"));
        }
        if summary.status != ConversationStatus::Assigned {
            return Err(HubError::conflict("conversation is closed"));
        }
        Ok(summary)
    }

    /// An agent's id and display name.
    async fn agent_ref(&mut self, agent: AgentId) -> HubResult<AgentRef> {
        let p = load_profile(&mut self.tx, agent).await?;
        Ok(AgentRef {
            id: agent,
            name: p.display_name,
        })
    }

    /// Refuses a target outside `team` (or no such agent): work is handed
    /// only within a team, as the team directory offers it.
    async fn in_team(&mut self, target: AgentId, team: Option<i64>) -> HubResult<()> {
        let target_team: Option<Option<i64>> =
            sqlx::query_scalar("SELECT team_id FROM agents WHERE id = ?")
                .bind(target.0)
                .fetch_optional(&mut *self.tx)
                .await?;
        match target_team {
            Some(t) if t.is_some() && t == team => Ok(()),
            _ => Err(HubError::not_found("no such agent in the team")),
        }
    }

    /// Refuses an agent with no live connection.
    fn signed_in(&self, agent: AgentId) -> HubResult<()> {
        if self.hub.links.is_connected(agent) {
            Ok(())
        } else {
            Err(HubError::conflict("that agent is not signed in"))
        }
    }

    /// Refuses to give `agent` one more session (owning `conv`, or taking
    /// part in it) when it already has the most open sessions allowed
    /// (`routing.max_sessions`; owned and taken part in alike). Routing passes such an agent over (with
    /// its notice and Do not disturb); the hand-offs that name an agent
    /// (transfer, escalation, supervisor assignment) and every offer it
    /// accepts check here, or they would take it past the limit unseen (an
    /// agent offered a chat at 9 may own a 10th by the time it accepts).
    pub(super) async fn under_session_limit(
        &mut self,
        agent: AgentId,
        actor: AgentId,
        conv: ConversationId,
    ) -> HubResult<()> {
        let max = self.hub.config.routing.max_sessions;
        // A session it has for `conv` already (taking part, now to own it)
        // stays the one tab.
        if self.open_sessions_besides(agent, Some(conv)).await? < i64::from(max) {
            return Ok(());
        }
        Err(HubError::refused(
            ErrorCode::SessionLimit,
            if agent == actor {
                format!("you have the maximum of {max} open sessions: close one first")
            } else {
                format!("that agent has the maximum of {max} open sessions")
            },
        ))
    }

    /// How many sessions the agent has open: conversations it owns and
    /// those it takes part in (consult, discussion), as the session limit
    /// counts them ([`crate::routing::Candidate::open_sessions`]).
    async fn open_sessions(&mut self, agent: AgentId) -> HubResult<i64> {
        self.open_sessions_besides(agent, None).await
    }

    /// [`Self::open_sessions`] but for `conv`'s, if it has one. Owned ones
    /// by the owner index, the rest by the participants' (not a scan of
    /// every assigned conversation).
    async fn open_sessions_besides(
        &mut self,
        agent: AgentId,
        conv: Option<ConversationId>,
    ) -> HubResult<i64> {
        let besides = conv.map_or(0, |c| c.0);
        Ok(sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM conversations
                      WHERE owner_id = ?1 AND status = 'assigned' AND id != ?2)
                  + (SELECT COUNT(*) FROM conversation_participants p
                      JOIN conversations c ON c.id = p.conversation_id
                      WHERE p.agent_id = ?1 AND c.status = 'assigned'
                        AND c.owner_id IS NOT ?1 AND c.id != ?2)",
        )
        .bind(agent.0)
        .bind(besides)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The agent's team.
    async fn team_of(&mut self, agent: AgentId) -> HubResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT team_id FROM agents WHERE id = ?")
                .bind(agent.0)
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    async fn queue_row(&mut self, conv: ConversationId) -> HubResult<(i64, QueueOptions, String)> {
        let row = sqlx::query(
            "SELECT q.team_id, q.team_owned, q.idle_timeout_secs, q.templates
             FROM conversations c JOIN queues q ON q.id = c.queue_id WHERE c.id = ?",
        )
        .bind(conv.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(r) = row else {
            return Err(HubError::not_found("no such conversation"));
        };
        Ok((
            r.get(0),
            QueueOptions {
                team_owned: r.get(1),
                idle_timeout_secs: r.get::<Option<i64>, _>(2).map(|v| v as u32),
            },
            r.get(3),
        ))
    }

    /// The conversation's queue template for a scenario.
    async fn queue_template(
        &mut self,
        conv: ConversationId,
        scenario: Scenario,
    ) -> HubResult<NotificationTemplate> {
        let (_, _, templates) = self.queue_row(conv).await?;
        let overrides: BTreeMap<Scenario, TemplateOverride> = unjson(&templates)?;
        Ok(effective_template(&overrides, scenario))
    }

    /// The template of a request: always an alert with Accept / Reject and
    /// a countdown, whatever the scenario's template kind; the timeout is
    /// the scenario's when it is an alert, else a minute.
    async fn request_template(
        &mut self,
        conv: ConversationId,
        origin: &OfferOrigin,
    ) -> HubResult<NotificationTemplate> {
        let scenario = match origin {
            OfferOrigin::AssignRequest { .. } | OfferOrigin::AssignToMe { .. } => {
                Scenario::Transfer
            }
            OfferOrigin::Consult { .. } | OfferOrigin::DiscussRequest { .. } => {
                Scenario::Escalation
            }
            _ => load_summary(&mut self.tx, conv).await?.scenario,
        };
        let base = self.queue_template(conv, scenario).await?;
        Ok(NotificationTemplate {
            kind: NotificationKind::Alert,
            timeout_secs: if base.kind == NotificationKind::Alert {
                base.timeout_secs
            } else {
                60
            },
            show_timeout: true,
            allow_reject: true,
            reject_reason_required: origin.reason_required(),
            auto_accept: false,
            auto_assign: false,
            details: base.details,
            desktop: base.desktop,
        })
    }

    pub(super) async fn team_owned(&mut self, conv: ConversationId) -> HubResult<bool> {
        Ok(self.queue_row(conv).await?.1.team_owned)
    }

    /// The presences the conversation's queue gives work to (its
    /// workstream's allowed presences): teammates in any other (Do not
    /// disturb, Inactive, Offline) are not asked to take its chats.
    async fn allowed_presences(&mut self, conv: ConversationId) -> HubResult<Vec<Presence>> {
        let text: String = sqlx::query_scalar(
            "SELECT q.allowed_presences FROM conversations c JOIN queues q ON q.id = c.queue_id WHERE c.id = ?",
        )
        .bind(conv.0)
        .fetch_one(&mut *self.tx)
        .await?;
        unjson(&text)
    }

    /// Refuses to hand `conv` to `target` by name while `target` is in a
    /// presence its queue gives no work to (Do not disturb, Away,
    /// Inactive after a missed offer, by default): routing passes such an
    /// agent over until the presence is reset, and a transfer or an
    /// assign request must not reach someone who has stepped away either
    /// (a toast transfer assigns at once, and the customer would wait on
    /// an empty desk).
    async fn takes_work(&mut self, conv: ConversationId, target: AgentId) -> HubResult<()> {
        let presence: String = sqlx::query_scalar("SELECT presence FROM agents WHERE id = ?")
            .bind(target.0)
            .fetch_one(&mut *self.tx)
            .await?;
        let presence: Presence = unwire(&presence)?;
        if self.allowed_presences(conv).await?.contains(&presence) {
            Ok(())
        } else {
            Err(HubError::conflict(format!(
                "that agent is {} and takes no new work until their presence is reset",
                presence.label()
            )))
        }
    }

    /// Whether a teammate may be asked to take a chat (a team message,
    /// "Assign to me?"): connected, so the question is seen, not left to
    /// lapse and count as asked; in a presence the queue gives work to;
    /// and with room for one more session, as Accept would be refused
    /// (one at the limit hears of the chat when a session ends or moves
    /// on: `team_catch_up`).
    async fn may_ask(
        &mut self,
        member: AgentId,
        presence: Presence,
        allowed: &[Presence],
    ) -> HubResult<bool> {
        Ok(allowed.contains(&presence)
            && self.hub.links.is_connected(member)
            && self.open_sessions(member).await? < i64::from(self.hub.config.routing.max_sessions))
    }

    async fn team_members(&mut self, team_id: i64) -> HubResult<Vec<(AgentId, Presence)>> {
        let rows = sqlx::query("SELECT id, presence FROM agents WHERE team_id = ? ORDER BY id")
            .bind(team_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| Ok((AgentId(r.get(0)), unwire(r.get::<&str, _>(1))?)))
            .collect()
    }

    /// Withdraws the conversation's pending offers whose origin matches.
    pub(super) async fn withdraw_offers(
        &mut self,
        conv: ConversationId,
        matches: impl Fn(&OfferOrigin) -> bool,
    ) -> HubResult<()> {
        self.withdraw_offers_where(conv, |_, o| matches(o)).await
    }

    /// Withdraws the conversation's pending offers whose offered agent and
    /// origin match.
    pub(super) async fn withdraw_offers_where(
        &mut self,
        conv: ConversationId,
        matches: impl Fn(AgentId, &OfferOrigin) -> bool,
    ) -> HubResult<()> {
        let rows = sqlx::query(
            "SELECT id, agent_id, origin FROM offers WHERE conversation_id = ? AND status = 'pending'",
        )
        .bind(conv.0)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in rows {
            let origin = origin_of(r.get(2))?;
            let agent = AgentId(r.get(1));
            if !matches(agent, &origin) {
                continue;
            }
            self.withdraw(OfferId(r.get(0)), agent, conv).await?;
        }
        Ok(())
    }

    /// Every teammate hears of a team-owned conversation nobody owns yet:
    /// earlier notifications are replaced by one with the newest message.
    pub(super) async fn team_notify(&mut self, conv: ConversationId) -> HubResult<()> {
        self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::TeamMessage { .. }))
            .await?;
        let (team_id, _, _) = self.queue_row(conv).await?;
        let (template, origin) = self.team_message_offer(conv).await?;
        let allowed = self.allowed_presences(conv).await?;
        // Who transferred it here: a transfer never comes back to its
        // sender (they can still take it from the Waiting list).
        let senders: Vec<i64> = sqlx::query_scalar(
            "SELECT agent_id FROM offer_exclusions WHERE conversation_id = ? AND hard = 1",
        )
        .bind(conv.0)
        .fetch_all(&mut *self.tx)
        .await?;
        for (member, presence) in self.team_members(team_id).await? {
            // One signed out hears of the chat when it connects
            // (`team_catch_up`).
            if senders.contains(&member.0) || !self.may_ask(member, presence, &allowed).await? {
                continue;
            }
            self.offer_to(conv, member, template.clone(), origin.clone())
                .await?;
        }
        tracing::info!(conversation = %conv, "team notified");
        Ok(())
    }

    /// An agent who comes online (connects, or takes a presence the queue
    /// gives work to) hears of the team's unclaimed chats it has not been
    /// offered since their customer's last message. Before, an agent who
    /// was away when the message came heard of the chat only at the
    /// customer's next one, and a chat whose customer then waited was seen
    /// by nobody.
    pub(super) async fn team_catch_up(&mut self, agent: AgentId) -> HubResult<()> {
        let waiting: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT c.id FROM conversations c
               JOIN queues q ON q.id = c.queue_id
               JOIN agents a ON a.id = ?1 AND a.team_id = q.team_id
             WHERE c.status = 'offered' AND q.team_owned AND NOT {OFFERED_TO_ONE_PERSON}
               AND NOT EXISTS (SELECT 1 FROM offer_exclusions x
                 WHERE x.conversation_id = c.id AND x.agent_id = ?1 AND x.hard = 1)
               AND NOT EXISTS (SELECT 1 FROM offers o
                 WHERE o.conversation_id = c.id AND o.agent_id = ?1 AND o.status <> 'withdrawn'
                   AND json_extract(o.origin, '$.kind') = 'team_message'
                   AND json_extract(o.origin, '$.messages') = (SELECT COUNT(*) FROM messages m
                     WHERE m.conversation_id = c.id AND m.author_kind = 'customer'))
             ORDER BY c.id LIMIT 500"
        ))
        .bind(agent.0)
        .fetch_all(&mut *self.tx)
        .await?;
        let presence: String = sqlx::query_scalar("SELECT presence FROM agents WHERE id = ?")
            .bind(agent.0)
            .fetch_one(&mut *self.tx)
            .await?;
        let presence: Presence = unwire(&presence)?;
        for conv in waiting.into_iter().map(ConversationId) {
            let allowed = self.allowed_presences(conv).await?;
            if !self.may_ask(agent, presence, &allowed).await? {
                continue;
            }
            let (template, origin) = self.team_message_offer(conv).await?;
            self.offer_to(conv, agent, template, origin).await?;
            tracing::info!(conversation = %conv, %agent, "team chat offered to a late arrival");
        }
        Ok(())
    }

    /// A team chat's offer ended unanswered (lapsed, declined, or its agent
    /// signed out): if no teammate has one up any more and nobody took the
    /// chat, the team is asked again after `team_reminder_secs` (counted
    /// from the last to end). Before, a chat every teammate let lapse or
    /// declined was offered to nobody until the customer wrote again, and
    /// a customer who waited quietly waited for good.
    pub(super) async fn remind_team_if_unheard(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
    ) -> HubResult<()> {
        let secs = self.hub.config.routing.team_reminder_secs;
        if secs == 0 || !self.awaits_owner(conv).await? || self.team_offers_up(conv).await? {
            return Ok(());
        }
        let due = Millis(
            self.now
                .0
                .saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)),
        );
        self.add_timer(TimerKind::TeamReminder, conv.0, agent, due, true)
            .await
    }

    /// The team reminder is due: the chat is offered to every teammate who
    /// may take it, as for a new message, unless someone took it or was
    /// asked meanwhile (the customer wrote, a teammate came online).
    pub(super) async fn team_reminder(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
    ) -> HubResult<()> {
        // Nor when it is offered to one person now (taken, then
        // transferred to a teammate by name): the team would take it from
        // them, as `team_catch_up` and the Waiting list know.
        if !self.awaits_owner(conv).await?
            || !self.team_owned(conv).await?
            || self.team_offers_up(conv).await?
            || self.offered_to_one_person(conv).await?
        {
            return Ok(());
        }
        tracing::info!(conversation = %conv, "team chat unanswered; asking the team again");
        self.team_notify(conv).await?;
        if !self.team_offers_up(conv).await? {
            // Nobody could be asked (away, Do not disturb, at the session
            // limit): ask again later. Those who come back are not caught
            // up, as they were told of this message already.
            self.remind_team_if_unheard(conv, agent).await?;
        }
        Ok(())
    }

    /// Whether a teammate has an offer for this team chat up now.
    async fn team_offers_up(&mut self, conv: ConversationId) -> HubResult<bool> {
        let up: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offers WHERE conversation_id = ? AND status = 'pending'
               AND json_extract(origin, '$.kind') = 'team_message'",
        )
        .bind(conv.0)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(up > 0)
    }

    /// The offer a teammate gets for an unclaimed team chat: the customer's
    /// latest message and how many there are.
    async fn team_message_offer(
        &mut self,
        conv: ConversationId,
    ) -> HubResult<(NotificationTemplate, OfferOrigin)> {
        let (count, preview): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), (SELECT text FROM messages WHERE conversation_id = ?1 AND author_kind = 'customer' ORDER BY id DESC LIMIT 1)
             FROM messages WHERE conversation_id = ?1 AND author_kind = 'customer'",
        )
        .bind(conv.0)
        .fetch_one(&mut *self.tx)
        .await?;
        let origin = OfferOrigin::TeamMessage {
            preview: preview
                .unwrap_or_default()
                .chars()
                .take(PREVIEW_CHARS)
                .collect(),
            messages: count as u32,
        };
        let template = self.request_template(conv, &origin).await?;
        Ok((template, origin))
    }

    /// Starts the owner's answer clock on a customer message, if the queue
    /// asks teammates when the owner is idle. An earlier unanswered message
    /// keeps its (earlier) deadline.
    pub(super) async fn start_idle_timer(
        &mut self,
        conv: ConversationId,
        owner: AgentId,
    ) -> HubResult<()> {
        if let Some(secs) = self.answer_clock_secs(conv).await? {
            let due = Millis(self.now.0 + i64::from(secs) * 1000);
            self.add_timer(TimerKind::OwnerIdle, conv.0, owner, due, false)
                .await?;
        }
        Ok(())
    }

    /// A conversation has a new owner: its answer clock starts afresh for
    /// them if the customer is waiting for an answer, and is cleared if
    /// not (an earlier owner's clock would be ignored when it fired, and
    /// kept the new owner's from starting).
    pub(super) async fn owner_clock_for_new_owner(
        &mut self,
        conv: ConversationId,
        owner: AgentId,
        customer_waiting: bool,
    ) -> HubResult<()> {
        match self.answer_clock_secs(conv).await? {
            Some(secs) if customer_waiting => {
                let due = Millis(self.now.0 + i64::from(secs) * 1000);
                self.add_timer(TimerKind::OwnerIdle, conv.0, owner, due, true)
                    .await
            }
            Some(_) => self.delete_timer(TimerKind::OwnerIdle, conv.0).await,
            // No clock in this queue (or not a chat): none to clear.
            None => Ok(()),
        }
    }

    /// How long an owner has to answer the customer before teammates are
    /// asked, if the queue sets it and the conversation is a chat: a call
    /// is answered by voice and a case worked off-line, so neither has a
    /// reply to wait for.
    async fn answer_clock_secs(&mut self, conv: ConversationId) -> HubResult<Option<u32>> {
        let row: Option<(Option<i64>, bool, String)> = sqlx::query_as(
            "SELECT q.idle_timeout_secs, c.is_call, c.channel
             FROM conversations c JOIN queues q ON q.id = c.queue_id WHERE c.id = ?",
        )
        .bind(conv.0)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some((secs, is_call, channel)) = row else {
            return Err(HubError::not_found("no such conversation"));
        };
        if is_call || channel == wire(&Channel::Case) {
            return Ok(None);
        }
        Ok(secs.map(|v| v as u32))
    }

    /// The owner did not answer in time: connected teammates in a presence
    /// the queue gives work to are asked "Assign to me?".
    pub(super) async fn owner_idle(
        &mut self,
        conv: ConversationId,
        owner: AgentId,
    ) -> HubResult<()> {
        let summary = load_summary(&mut self.tx, conv).await?;
        if summary.status != ConversationStatus::Assigned || summary.owner != Some(owner) {
            return Ok(());
        }
        let (team_id, options, _) = self.queue_row(conv).await?;
        let origin = OfferOrigin::AssignToMe {
            owner: self.agent_ref(owner).await?,
            idle_secs: options.idle_timeout_secs.unwrap_or(0),
        };
        let template = self.request_template(conv, &origin).await?;
        // One question per teammate: an earlier one still pending (the
        // owner idle again before it was answered) is replaced.
        self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::AssignToMe { .. }))
            .await?;
        let allowed = self.allowed_presences(conv).await?;
        for (member, presence) in self.team_members(team_id).await? {
            if member == owner
                || summary.participants.contains(&member)
                || !self.may_ask(member, presence, &allowed).await?
            {
                continue;
            }
            self.offer_to(conv, member, template.clone(), origin.clone())
                .await?;
        }
        tracing::info!(conversation = %conv, owner = %owner, "owner idle; asked teammates");
        Ok(())
    }

    /// A participant leaves (closed its tab, or the conversation moved on).
    pub(super) async fn leave(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
        reason: RevokeReason,
    ) -> HubResult<()> {
        self.remove_participant(conv, agent).await?;
        self.append(
            agent,
            AgentEvent::ConversationRevoked {
                conversation_id: conv,
                reason,
            },
        )
        .await?;
        let summary = load_summary(&mut self.tx, conv).await?;
        if let (ConversationStatus::Assigned, Some(owner)) = (summary.status, summary.owner) {
            self.append(
                owner,
                AgentEvent::ConversationUpdated {
                    conversation: summary,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Ends everything attached to the current ownership: participants,
    /// the idle clock, pending requests.
    pub(super) async fn end_membership(
        &mut self,
        conv: ConversationId,
        summary: &ConversationSummary,
    ) -> HubResult<()> {
        for p in &summary.participants {
            self.remove_participant(conv, *p).await?;
            self.append(
                *p,
                AgentEvent::ConversationRevoked {
                    conversation_id: conv,
                    reason: RevokeReason::LeftConsult,
                },
            )
            .await?;
            // A session fewer: team chats it was passed over for at the
            // session limit reach it now.
            self.team_catch_up(*p).await?;
        }
        self.delete_timer(TimerKind::OwnerIdle, conv.0).await?;
        self.withdraw_offers(conv, OfferOrigin::is_request).await
    }

    /// Takes the conversation from its owner, who is told why; it is then
    /// queued with no owner.
    async fn hand_over(
        &mut self,
        conv: ConversationId,
        summary: &ConversationSummary,
        reason: RevokeReason,
    ) -> HubResult<()> {
        if let Some(owner) = summary.owner {
            self.append(
                owner,
                AgentEvent::ConversationRevoked {
                    conversation_id: conv,
                    reason,
                },
            )
            .await?;
        }
        self.end_membership(conv, summary).await?;
        self.delete_timer(TimerKind::DisconnectedGrace, conv.0)
            .await?;
        self.set_status(conv, ConversationStatus::Queued, None)
            .await
    }

    /// Sends a conversation straight to one agent with a routed origin
    /// (transfer or escalation): an offer, or an assignment with a toast,
    /// as the scenario's template says.
    async fn send_to(
        &mut self,
        conv: ConversationId,
        target: AgentId,
        scenario: Scenario,
        origin: OfferOrigin,
    ) -> HubResult<()> {
        sqlx::query("UPDATE conversations SET scenario = ?, route_origin = ? WHERE id = ?")
            .bind(wire(&scenario))
            .bind(json(&origin))
            .bind(conv.0)
            .execute(&mut *self.tx)
            .await?;
        let template = self.queue_template(conv, scenario).await?;
        self.deliver(conv, target, scenario, template).await
    }

    pub(super) async fn transfer(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
        target: TransferTarget,
        note: Option<String>,
    ) -> HubResult<()> {
        let summary = self.owned(agent, conv).await?;
        let origin = OfferOrigin::Transfer {
            from: self.agent_ref(agent).await?,
            note: clean_note(note),
        };
        match target {
            TransferTarget::Agent { agent_id } => {
                if agent_id == agent {
                    return Err(HubError::invalid("cannot transfer to yourself"));
                }
                let team = self.team_of(agent).await?;
                self.in_team(agent_id, team).await?;
                // A toast template assigns at once, and an owner who is
                // not connected has no grace clock: it would sit there.
                self.signed_in(agent_id)?;
                self.takes_work(conv, agent_id).await?;
                self.under_session_limit(agent_id, agent, conv).await?;
                self.hand_over(conv, &summary, RevokeReason::Transferred)
                    .await?;
                self.send_to(conv, agent_id, Scenario::Transfer, origin)
                    .await?;
            }
            TransferTarget::Queue { queue } => {
                let queue_id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM queues WHERE name = ?")
                        .bind(&queue)
                        .fetch_optional(&mut *self.tx)
                        .await?;
                let Some(queue_id) = queue_id else {
                    return Err(HubError::not_found(format!("no queue {queue:?}")));
                };
                self.hand_over(conv, &summary, RevokeReason::Transferred)
                    .await?;
                sqlx::query(
                    "UPDATE conversations SET queue_id = ?, scenario = ?, route_origin = ? WHERE id = ?",
                )
                .bind(queue_id)
                .bind(wire(&Scenario::Transfer))
                .bind(json(&origin))
                .bind(conv.0)
                .execute(&mut *self.tx)
                .await?;
                // Not back to the sender.
                self.exclude(conv, agent, Exclusion::Sender).await?;
                self.route(conv).await?;
            }
        }
        tracing::info!(conversation = %conv, agent = %agent, "transferred");
        Ok(())
    }

    pub(super) async fn escalate(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
        supervisor: Option<AgentId>,
        note: Option<String>,
    ) -> HubResult<()> {
        let summary = self.owned(agent, conv).await?;
        let target = match supervisor {
            Some(s) => {
                let p = load_profile(&mut self.tx, s).await?;
                // Only within the conversation's team (admins cover every
                // team, as in supervisor assignment). Anyone else is "not
                // found", like an unknown id, before the role and sign-in
                // checks: their different errors would let an agent probe
                // who is a supervisor elsewhere and whether they are on.
                let (team_id, _, _) = self.queue_row(conv).await?;
                if p.role != Role::Admin && self.team_of(s).await? != Some(team_id) {
                    return Err(HubError::not_found("no such supervisor in the team"));
                }
                if !p.role.is_supervisor() {
                    return Err(HubError::invalid("escalations go to a supervisor"));
                }
                self.signed_in(s)?;
                s
            }
            None => {
                let team = self.team_of(agent).await?;
                let rows = sqlx::query(
                    "SELECT id, presence FROM agents WHERE team_id IS ? AND role IN ('supervisor', 'admin') AND id <> ?
                     ORDER BY role = 'admin', id",
                )
                .bind(team)
                .bind(agent.0)
                .fetch_all(&mut *self.tx)
                .await?;
                let sups = rows
                    .iter()
                    .map(|r| Ok((r.get::<i64, _>(0), unwire(r.get::<&str, _>(1))?)))
                    .collect::<HubResult<Vec<(i64, Presence)>>>()?;
                // Only a connected one: a toast escalation assigns at once,
                // and an absent owner has no grace clock. Of those, one
                // with room for a session (the limit would refuse it) whose
                // presence takes work in the queue first, then one with
                // room; a call for help is not refused for presence while
                // any supervisor is there (one on Do not disturb still gets
                // it, as a named one does).
                let allowed = self.allowed_presences(conv).await?;
                let max = i64::from(self.hub.config.routing.max_sessions);
                let mut connected: Vec<(i64, bool, bool)> = Vec::new();
                for (s, p) in &sups {
                    if self.hub.links.is_connected(AgentId(*s)) {
                        // A consulting supervisor's tab for it stays one.
                        let room = self.open_sessions_besides(AgentId(*s), Some(conv)).await? < max;
                        connected.push((*s, room, allowed.contains(p)));
                    }
                }
                let chosen = connected
                    .iter()
                    .find(|(_, room, takes_work)| *room && *takes_work)
                    .or_else(|| connected.iter().find(|(_, room, _)| *room))
                    .or(connected.first())
                    .map(|(s, _, _)| *s);
                match (chosen, sups.is_empty()) {
                    (Some(s), _) => AgentId(s),
                    (None, true) => return Err(HubError::not_found("no supervisor in your team")),
                    (None, false) => {
                        return Err(HubError::conflict(
                            "no supervisor of your team is signed in",
                        ))
                    }
                }
            }
        };
        if target == agent {
            return Err(HubError::invalid("cannot escalate to yourself"));
        }
        self.under_session_limit(target, agent, conv).await?;
        let origin = OfferOrigin::Escalation {
            from: self.agent_ref(agent).await?,
            note: clean_note(note),
        };
        self.hand_over(conv, &summary, RevokeReason::Transferred)
            .await?;
        self.send_to(conv, target, Scenario::Escalation, origin)
            .await?;
        tracing::info!(conversation = %conv, agent = %agent, supervisor = %target, "escalated");
        Ok(())
    }

    /// A request from the owner to a named agent (consult, assign,
    /// discuss).
    pub(super) async fn ask(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
        target: AgentId,
        origin: impl FnOnce(AgentRef) -> OfferOrigin,
    ) -> HubResult<()> {
        let summary = self.owned(agent, conv).await?;
        if target == agent {
            return Err(HubError::invalid("cannot ask yourself"));
        }
        let team = self.team_of(agent).await?;
        self.in_team(target, team).await?;
        // A request is not rerouted: one nobody can see would only time
        // out a minute later. Say so now.
        self.signed_in(target)?;
        if summary.participants.contains(&target) {
            return Err(HubError::conflict(
                "that agent is already in the conversation",
            ));
        }
        let origin = origin(self.agent_ref(agent).await?);
        // Asked to take the conversation over: work, as a transfer is.
        // A consult or a discussion only asks for a word.
        if matches!(origin, OfferOrigin::AssignRequest { .. }) {
            self.takes_work(conv, target).await?;
        }
        let template = self.request_template(conv, &origin).await?;
        self.offer_to(conv, target, template, origin).await?;
        Ok(())
    }

    /// A supervisor assigns a conversation outright; the new owner is
    /// notified per the queue's work-item template.
    pub(super) async fn supervisor_assign(
        &mut self,
        supervisor: AgentId,
        conv: ConversationId,
        target: AgentId,
    ) -> HubResult<()> {
        let sup = load_profile(&mut self.tx, supervisor).await?;
        if !sup.role.is_supervisor() {
            return Err(HubError::forbidden("supervisors only"));
        }
        let summary = load_summary(&mut self.tx, conv).await?;
        let (team_id, _, _) = self.queue_row(conv).await?;
        if sup.role == Role::Supervisor && self.team_of(supervisor).await? != Some(team_id) {
            return Err(HubError::not_found("no such conversation"));
        }
        // The new owner works the queue's team.
        self.in_team(target, Some(team_id)).await?;
        if summary.status == ConversationStatus::Closed {
            return Err(HubError::conflict("conversation is closed"));
        }
        if summary.owner == Some(target) {
            return Err(HubError::conflict("that agent already owns it"));
        }
        self.under_session_limit(target, supervisor, conv).await?;
        if summary.owner.is_some() {
            self.hand_over(conv, &summary, RevokeReason::Reassigned)
                .await?;
        }
        self.withdraw_offers(conv, |_| true).await?;
        self.remove_participant(conv, target).await?;
        let template = self
            .queue_template(conv, Scenario::WorkItemAssignment)
            .await?;
        self.assign(
            conv,
            target,
            AssignMode::Supervisor,
            false,
            template,
            OfferOrigin::NewConversation,
        )
        .await?;
        if !self.hub.links.is_connected(target) {
            // Allowed (a supervisor may assign to an agent who is away),
            // but the new owner gets the grace of an owner who dropped:
            // back in time keeps it (`Hub::agent_connected` cancels the
            // timer), else it is rerouted instead of stranding the customer.
            let due = Millis(self.now.0 + self.hub.grace_ms());
            self.add_timer(TimerKind::DisconnectedGrace, conv.0, target, due, true)
                .await?;
            tracing::info!(conversation = %conv, agent = %target, "assigned to an absent agent; grace started");
        }
        tracing::info!(conversation = %conv, agent = %target, supervisor = %supervisor, "assigned by supervisor");
        if let Some(old) = summary.owner {
            // A session fewer for the old owner: the team chats it was
            // passed over for at the session limit.
            self.team_catch_up(old).await?;
        }
        Ok(())
    }

    /// Accepting a request offer.
    pub(super) async fn accept_request(
        &mut self,
        agent: AgentId,
        offer: OfferId,
        row: OfferRow,
    ) -> HubResult<CommandReply> {
        let conv = row.conv;
        let summary = load_summary(&mut self.tx, conv).await?;
        match &row.origin {
            OfferOrigin::AssignRequest { from, .. }
            | OfferOrigin::AssignToMe { owner: from, .. } => {
                if summary.status != ConversationStatus::Assigned || summary.owner != Some(from.id)
                {
                    return Err(HubError::conflict("the conversation has changed hands"));
                }
                self.under_session_limit(agent, agent, conv).await?;
                self.accepted(offer, agent, conv).await?;
                // Ownership moves; the old owner is told; other teammates'
                // questions are moot.
                self.append(
                    from.id,
                    AgentEvent::ConversationRevoked {
                        conversation_id: conv,
                        reason: RevokeReason::TakenOver,
                    },
                )
                .await?;
                self.delete_timer(TimerKind::OwnerIdle, conv.0).await?;
                self.delete_timer(TimerKind::DisconnectedGrace, conv.0)
                    .await?;
                self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::AssignToMe { .. }))
                    .await?;
                self.remove_participant(conv, agent).await?;
                let conversation = self.accepted_owner(conv, agent, &row).await?;
                self.answer(&row, true, false, None).await?;
                self.team_catch_up(from.id).await?;
                // A session of the old owner's is free: work waiting for
                // room goes to them now, not at some later change.
                self.route_waiting().await?;
                Ok(CommandReply::OfferAccepted { conversation })
            }
            OfferOrigin::Consult { .. } | OfferOrigin::DiscussRequest { .. } => {
                let Some(owner) = summary
                    .owner
                    .filter(|_| summary.status == ConversationStatus::Assigned)
                else {
                    return Err(HubError::conflict("the conversation is no longer open"));
                };
                if owner == agent {
                    // The owner joining its own conversation would get
                    // every event twice (as owner and as participant).
                    return Err(HubError::conflict("you own this conversation"));
                }
                // Joining opens a session (a tab) like owning one does.
                self.under_session_limit(agent, agent, conv).await?;
                self.accepted(offer, agent, conv).await?;
                sqlx::query(
                    "INSERT OR IGNORE INTO conversation_participants (conversation_id, agent_id) VALUES (?, ?)",
                )
                .bind(conv.0)
                .bind(agent.0)
                .execute(&mut *self.tx)
                .await?;
                let conversation = load_summary(&mut self.tx, conv).await?;
                let (messages, has_earlier) = recent_messages(&mut self.tx, conv).await?;
                let (last_read, unread) = read_state(&mut self.tx, agent, conv).await?;
                self.append(
                    agent,
                    AgentEvent::ConversationAssigned {
                        conversation: conversation.clone(),
                        mode: AssignMode::Joined,
                        open_session: true,
                        template: row.template.clone(),
                        messages,
                        origin: row.origin.clone(),
                        last_read,
                        unread: Some(unread),
                        has_earlier: Some(has_earlier),
                    },
                )
                .await?;
                self.append(
                    owner,
                    AgentEvent::ConversationUpdated {
                        conversation: conversation.clone(),
                    },
                )
                .await?;
                self.answer(&row, true, false, None).await?;
                Ok(CommandReply::OfferAccepted { conversation })
            }
            _ => {
                // A team message: the first to accept owns it.
                if summary.owner.is_some() || summary.status == ConversationStatus::Closed {
                    return Err(HubError::conflict("someone else took it"));
                }
                self.under_session_limit(agent, agent, conv).await?;
                self.accepted(offer, agent, conv).await?;
                self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::TeamMessage { .. }))
                    .await?;
                let conversation = self.accepted_owner(conv, agent, &row).await?;
                Ok(CommandReply::OfferAccepted { conversation })
            }
        }
    }

    /// An agent takes a team chat nobody owns, from the team's waiting list
    /// (`GET /team/waiting`): as accepting its team message would, without
    /// one. Between a team message that lapsed and the reminder, or while
    /// the agent's presence gets no team messages, the list is how a
    /// teammate takes the customer. Another team's conversation, or one
    /// that is not a team chat, is `not_found` (ids cannot be probed); one
    /// taken meanwhile is a conflict.
    pub(super) async fn take_team_chat(
        &mut self,
        agent: AgentId,
        conv: ConversationId,
    ) -> HubResult<CommandReply> {
        // One answer for "no such id" and "not yours": ids cannot be probed.
        let not_found = || HubError::not_found("no such team chat");
        let (team_id, options, _) = match self.queue_row(conv).await {
            Err(HubError::Refused {
                code: ErrorCode::NotFound,
                ..
            }) => return Err(not_found()),
            other => other?,
        };
        if !options.team_owned || self.team_of(agent).await? != Some(team_id) {
            return Err(not_found());
        }
        if !self.awaits_owner(conv).await? {
            return Err(HubError::conflict("someone else took it"));
        }
        if self.offered_to_one_person(conv).await? {
            return Err(HubError::conflict("it is offered to someone in particular"));
        }
        self.under_session_limit(agent, agent, conv).await?;
        self.withdraw_offers(conv, |o| matches!(o, OfferOrigin::TeamMessage { .. }))
            .await?;
        let (template, origin) = self.team_message_offer(conv).await?;
        let conversation = self
            .assign(conv, agent, AssignMode::Accepted, true, template, origin)
            .await?;
        tracing::info!(conversation = %conv, %agent, "team chat taken from the waiting list");
        Ok(CommandReply::OfferAccepted { conversation })
    }

    /// The accepting agent owns the conversation now, session open.
    async fn accepted_owner(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
        row: &OfferRow,
    ) -> HubResult<ConversationSummary> {
        self.assign(
            conv,
            agent,
            AssignMode::Accepted,
            true,
            row.template.clone(),
            row.origin.clone(),
        )
        .await
    }

    pub(super) async fn remove_participant(
        &mut self,
        conv: ConversationId,
        agent: AgentId,
    ) -> HubResult<()> {
        sqlx::query(
            "DELETE FROM conversation_participants WHERE conversation_id = ? AND agent_id = ?",
        )
        .bind(conv.0)
        .bind(agent.0)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn accepted(
        &mut self,
        offer: OfferId,
        agent: AgentId,
        conv: ConversationId,
    ) -> HubResult<()> {
        self.resolve_offer(offer, "accepted", None).await?;
        self.append(
            agent,
            AgentEvent::OfferResolved {
                offer_id: offer,
                conversation_id: conv,
                outcome: OfferOutcome::Accepted,
            },
        )
        .await?;
        Ok(())
    }

    /// A request declined or unanswered: nothing moves, nobody is
    /// penalised; the requester is told.
    pub(super) async fn decline_request(
        &mut self,
        offer: OfferId,
        row: OfferRow,
        outcome: OfferOutcome,
        reason: Option<String>,
    ) -> HubResult<()> {
        let status = if outcome == OfferOutcome::Rejected {
            "rejected"
        } else {
            "timed_out"
        };
        self.resolve_offer(offer, status, reason.as_deref()).await?;
        self.append(
            row.agent,
            AgentEvent::OfferResolved {
                offer_id: offer,
                conversation_id: row.conv,
                outcome,
            },
        )
        .await?;
        self.answer(&row, false, outcome == OfferOutcome::Rejected, reason)
            .await?;
        if matches!(row.origin, OfferOrigin::TeamMessage { .. }) {
            self.remind_team_if_unheard(row.conv, row.agent).await?;
        }
        Ok(())
    }

    /// Tells the requester of a consult, assign or discuss request how it
    /// ended.
    async fn answer(
        &mut self,
        row: &OfferRow,
        accepted: bool,
        rejected: bool,
        reason: Option<String>,
    ) -> HubResult<()> {
        let Some((request, from)) = row.origin.answered_request() else {
            return Ok(());
        };
        let requester = from.id;
        let by = self.agent_ref(row.agent).await?;
        self.append(
            requester,
            AgentEvent::RequestAnswered {
                conversation_id: row.conv,
                request,
                by,
                accepted,
                rejected,
                reason,
            },
        )
        .await?;
        Ok(())
    }
}

fn clean_note(note: Option<String>) -> Option<String> {
    note.map(|n| truncate(n.trim(), switchboard_protocol::MAX_NOTE_BYTES))
        .filter(|n| !n.is_empty())
}
