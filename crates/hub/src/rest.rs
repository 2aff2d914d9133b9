//! REST endpoints under `/api/v1`: login/logout, conversation history,
//! ingress for channel connectors, supervisor presence reset, and admin.
//! Every error is a JSON [`ErrorBody`] with a matching HTTP status.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use switchboard_protocol::rest::{
    Account, AgentSpec, AgentStatus, Contact, Customer360, IngressMessage, IngressResponse,
    LinkRequest, LoginRequest, LoginResponse, NewAccount, NewContact, PresenceRequest,
    PresenceReset, QueueSpec, RecordSearch, RevokeResponse,
};
use switchboard_protocol::{
    AgentId, AgentProfile, ContactId, ConversationId, ConversationSummary, ErrorBody, ErrorCode,
    Message, MessageId, Role,
};

use crate::error::HubError;
use crate::hub::Session;
use crate::server::AppState;

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidFrame | ErrorCode::HelloRequired | ErrorCode::UnsupportedVersion => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::RejectNotAllowed | ErrorCode::SessionLimit => {
            StatusCode::CONFLICT
        }
        ErrorCode::ReasonRequired | ErrorCode::InvalidPresence => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal | ErrorCode::Other => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        if self.code() == ErrorCode::Internal {
            tracing::error!(error = %self, "request failed");
        }
        let body: ErrorBody = self.body();
        let mut resp = (status_of(body.code), Json(body)).into_response();
        if let HubError::Throttled { retry_after_secs } = self {
            // The wait the message names, so a client obeying the header
            // does not wait longer than it must.
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        resp
    }
}

type ApiResult<T> = Result<Json<T>, HubError>;

/// A JSON body whose rejection is reported as an [`ErrorBody`].
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = HubError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(match e {
                JsonRejection::BytesRejection(_) => {
                    HubError::refused(ErrorCode::TooLarge, "request body too large or unreadable")
                }
                other => HubError::invalid(other.body_text()),
            }),
        }
    }
}

/// A path parameter whose rejection (`/conversations/abc`) is reported as
/// an [`ErrorBody`], not axum's plain text.
pub struct UrlPath<T>(pub T);

impl<S, T> FromRequestParts<S> for UrlPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| UrlPath(v))
            .map_err(|e| HubError::invalid(e.body_text()))
    }
}

/// A query string whose rejection (`?after=x`) is reported as an
/// [`ErrorBody`], not axum's plain text.
pub struct UrlQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for UrlQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| UrlQuery(v))
            .map_err(|e| HubError::invalid(e.body_text()))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A request made with a valid agent token.
pub struct Authed(pub Session);

impl FromRequestParts<AppState> for Authed {
    type Rejection = HubError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| HubError::unauthorized("missing bearer token"))?;
        Ok(Authed(state.hub.authenticate(token).await?))
    }
}

/// Who may post ingress: the configured connector token or an admin.
pub struct IngressCaller;

impl FromRequestParts<AppState> for IngressCaller {
    type Rejection = HubError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| HubError::unauthorized("missing bearer token"))?;
        if let Some(expected) = &state.hub.config().server.ingress_token {
            if crate::auth::token_hash(token) == crate::auth::token_hash(expected) {
                return Ok(IngressCaller);
            }
        }
        let session = state.hub.authenticate(token).await?;
        if session.profile.role == Role::Admin {
            Ok(IngressCaller)
        } else {
            Err(HubError::forbidden(
                "ingress needs the connector token or an admin",
            ))
        }
    }
}

fn require(profile: &AgentProfile, admin: bool) -> Result<(), HubError> {
    let ok = if admin {
        profile.role == Role::Admin
    } else {
        profile.role.is_supervisor()
    };
    if ok {
        Ok(())
    } else {
        Err(HubError::forbidden(if admin {
            "admins only"
        } else {
            "supervisors only"
        }))
    }
}

/// `GET /healthz`.
pub async fn health() -> &'static str {
    "ok"
}

/// `POST /api/v1/login`.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(req): Body<LoginRequest>,
) -> ApiResult<LoginResponse> {
    let (token, expires_at, agent) = state
        .hub
        .login(&req.username, &req.password, &peer.ip().to_string())
        .await?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        agent,
    }))
}

/// `POST /api/v1/logout`: revokes the token used.
pub async fn logout(
    State(state): State<AppState>,
    Authed(session): Authed,
) -> Result<StatusCode, HubError> {
    state.hub.revoke_token(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`.
pub async fn me(Authed(session): Authed) -> ApiResult<AgentProfile> {
    Ok(Json(session.profile))
}

/// Query of the history endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    after: Option<i64>,
    /// The newest `limit` messages before this one instead (an agent
    /// scrolling back past what the app keeps).
    before: Option<i64>,
    limit: Option<u32>,
}

/// Query of the connector's history endpoint: forward only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressHistoryQuery {
    after: Option<i64>,
}

/// `GET /api/v1/conversations/{id}/messages`: for those who may see the
/// conversation (owner, participants, its team's supervisors, admins).
pub async fn messages(
    State(state): State<AppState>,
    Authed(session): Authed,
    UrlPath(id): UrlPath<i64>,
    UrlQuery(q): UrlQuery<HistoryQuery>,
) -> ApiResult<Vec<Message>> {
    let conv = ConversationId(id);
    let Some(before) = q.before else {
        if q.limit.is_some() {
            return Err(HubError::invalid("limit goes with before"));
        }
        return Ok(Json(
            state
                .hub
                .conversation_messages(Some(&session.profile), conv, q.after.map(MessageId))
                .await?,
        ));
    };
    if q.after.is_some() {
        return Err(HubError::invalid("give after or before, not both"));
    }
    let limit = q.limit.unwrap_or(HISTORY_PAGE);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(HubError::invalid("limit must be 1 to 1000"));
    }
    Ok(Json(
        state
            .hub
            .conversation_messages_before(&session.profile, conv, MessageId(before), limit)
            .await?,
    ))
}

/// Messages a `before` page holds unless asked for fewer.
const HISTORY_PAGE: u32 = 100;

/// The most a `before` page holds.
const MAX_HISTORY_PAGE: u32 = 1000;

/// `GET /api/v1/ingress/conversations/{id}/messages`: the connector reads
/// agents' replies to deliver them to the customer.
pub async fn ingress_messages(
    State(state): State<AppState>,
    _caller: IngressCaller,
    UrlPath(id): UrlPath<i64>,
    UrlQuery(q): UrlQuery<IngressHistoryQuery>,
) -> ApiResult<Vec<Message>> {
    Ok(Json(
        state
            .hub
            .conversation_messages(None, ConversationId(id), q.after.map(MessageId))
            .await?,
    ))
}

/// `POST /api/v1/ingress/messages`.
pub async fn ingress(
    State(state): State<AppState>,
    _caller: IngressCaller,
    Body(m): Body<IngressMessage>,
) -> ApiResult<IngressResponse> {
    Ok(Json(state.hub.ingress(m).await?))
}

/// `POST /api/v1/agents/{id}/presence` (supervisor).
pub async fn set_presence(
    State(state): State<AppState>,
    Authed(session): Authed,
    UrlPath(id): UrlPath<i64>,
    Body(req): Body<PresenceRequest>,
) -> Result<StatusCode, HubError> {
    state
        .hub
        .supervisor_set_presence(&session.profile, AgentId(id), req.presence)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/agents/{id}/presence/reset` (supervisor): back to the
/// presence the hub's own change replaced, or Available.
pub async fn reset_presence(
    State(state): State<AppState>,
    Authed(session): Authed,
    UrlPath(id): UrlPath<i64>,
) -> ApiResult<PresenceReset> {
    let presence = state
        .hub
        .supervisor_reset_presence(&session.profile, AgentId(id))
        .await?;
    Ok(Json(PresenceReset { presence }))
}

/// `GET /api/v1/admin/agents` (supervisor: its team's; admin: all).
pub async fn list_agents(
    State(state): State<AppState>,
    Authed(session): Authed,
) -> ApiResult<Vec<AgentStatus>> {
    require(&session.profile, false)?;
    Ok(Json(state.hub.admin_agents(&session.profile).await?))
}

/// `POST /api/v1/admin/agents` (admin): create or update.
pub async fn upsert_agent(
    State(state): State<AppState>,
    Authed(session): Authed,
    Body(spec): Body<AgentSpec>,
) -> ApiResult<AgentProfile> {
    require(&session.profile, true)?;
    let id = state.hub.admin_upsert_agent(&spec).await?;
    Ok(Json(state.hub.profile(id).await?))
}

/// `POST /api/v1/admin/agents/{id}/revoke` (admin).
pub async fn revoke_agent(
    State(state): State<AppState>,
    Authed(session): Authed,
    UrlPath(id): UrlPath<i64>,
) -> ApiResult<RevokeResponse> {
    require(&session.profile, true)?;
    let agent_id = AgentId(id);
    state.hub.profile(agent_id).await?;
    let revoked = state.hub.revoke_agent_tokens(agent_id).await?;
    Ok(Json(RevokeResponse { agent_id, revoked }))
}

/// `GET /api/v1/admin/queues` (supervisor).
pub async fn list_queues(
    State(state): State<AppState>,
    Authed(session): Authed,
) -> ApiResult<Vec<QueueSpec>> {
    require(&session.profile, false)?;
    Ok(Json(state.hub.admin_queues().await?))
}

/// `PUT /api/v1/admin/queues` (admin): create or update.
pub async fn upsert_queue(
    State(state): State<AppState>,
    Authed(session): Authed,
    Body(spec): Body<QueueSpec>,
) -> Result<StatusCode, HubError> {
    require(&session.profile, true)?;
    state.hub.admin_upsert_queue(&spec).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/records/search?last_name=…` (any agent): contacts matching
/// every given field.
pub async fn search_records(
    State(state): State<AppState>,
    Authed(_session): Authed,
    UrlQuery(q): UrlQuery<RecordSearch>,
) -> ApiResult<Vec<Contact>> {
    Ok(Json(state.hub.search_records(&q).await?))
}

/// `GET /api/v1/records/contacts/{id}` (any agent): Customer 360, with the
/// earlier conversations the agent's team had with the contact.
pub async fn customer_360(
    State(state): State<AppState>,
    Authed(session): Authed,
    UrlPath(id): UrlPath<i64>,
) -> ApiResult<Customer360> {
    Ok(Json(
        state
            .hub
            .customer_360(&session.profile, ContactId(id))
            .await?,
    ))
}

/// `POST /api/v1/records/contacts` (any agent): quick create.
pub async fn create_contact(
    State(state): State<AppState>,
    Authed(_session): Authed,
    Body(c): Body<NewContact>,
) -> ApiResult<Contact> {
    Ok(Json(state.hub.create_contact(&c).await?))
}

/// `POST /api/v1/records/accounts` (any agent): quick create.
pub async fn create_account(
    State(state): State<AppState>,
    Authed(_session): Authed,
    Body(a): Body<NewAccount>,
) -> ApiResult<Account> {
    Ok(Json(state.hub.create_account(&a).await?))
}

/// `POST /api/v1/conversations/{id}/link` (owner, participant or
/// supervisor).
pub async fn link_conversation(
    State(state): State<AppState>,
    Authed(session): Authed,
    UrlPath(id): UrlPath<i64>,
    Body(link): Body<LinkRequest>,
) -> ApiResult<ConversationSummary> {
    Ok(Json(
        state
            .hub
            .link_conversation(&session.profile, ConversationId(id), &link)
            .await?,
    ))
}

/// `GET /api/v1/team/conversations` (supervisor or admin: its team's; an
/// admin with no team: all):
/// open conversations, waiting ones first.
pub async fn team_conversations(
    State(state): State<AppState>,
    Authed(session): Authed,
) -> ApiResult<Vec<ConversationSummary>> {
    Ok(Json(state.hub.team_conversations(&session.profile).await?))
}

/// `GET /api/v1/team/waiting` (any agent): its team's team chats nobody
/// owns yet, longest waiting first.
pub async fn waiting_team_chats(
    State(state): State<AppState>,
    Authed(session): Authed,
) -> ApiResult<Vec<switchboard_protocol::rest::WaitingTeamChat>> {
    Ok(Json(state.hub.waiting_team_chats(&session.profile).await?))
}

/// `GET /api/v1/team` (any agent): teammates and queues.
pub async fn team(
    State(state): State<AppState>,
    Authed(session): Authed,
) -> ApiResult<switchboard_protocol::rest::TeamDirectory> {
    Ok(Json(state.hub.team_directory(&session.profile).await?))
}
