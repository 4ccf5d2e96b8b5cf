//! Requests and their workflow. Each state change, its history row and its event commit in one
//! transaction through the outbox; every update is guarded by the version read (optimistic
//! concurrency), so two agents acting at once never overwrite each other.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, Utc};
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::servicerequest::v1::{
    RequestPriority, RequestStatus, ServiceChannel, ServiceDefinition, ServiceKind,
};
use jamaa_proto::timestamp_from_millis;
use jamaa_server::PageRequest;
use jamaa_server::status::FieldViolations;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, IntoActiveModel, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::calendar::WorkingCalendar;
use crate::catalogue::version_of;
use crate::closed_days::calendar_of;
use crate::deadlines::CommuneClock;
use crate::definition::{Deadline, check_attribute_values, department_of};
use crate::domain::{self, RequestDescription};
use crate::error::Error;
use crate::response_templates::{in_language, text_of};
use crate::storage::{
    appeal, history_entry, response_template, service, service_request, tracking_number,
};

/// A point on the earth, already checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// A citizen who came to the desk, as the agent recorded them (parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkIn {
    pub full_name: String,
    pub phone: String,
    /// Their account, if they have one.
    pub account: Option<Uuid>,
}

/// Who files a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filer {
    /// A citizen, online, for themself.
    Citizen(Uuid),
    /// A reception agent at the desk, for a walk-in.
    Desk { agent_id: Uuid, walk_in: WalkIn },
    /// A client application of the commune (an Open311 app) through its API key, for the
    /// person reporting (without an account here). Incident reports only.
    ApiClient { key_id: Uuid, walk_in: WalkIn },
}

/// A new request, parsed. Attribute values are checked against the service's definition when
/// it is read.
pub struct NewRequest {
    /// The filer's `request_id`: the same value returns the same request.
    pub client_request_id: Uuid,
    pub filer: Filer,
    pub commune_id: Uuid,
    /// The commune's code, the first part of the tracking code.
    pub commune_code: String,
    pub service_id: Uuid,
    pub description: RequestDescription,
    pub attributes: HashMap<String, String>,
    pub location: Option<Location>,
    pub address: Option<String>,
    /// The district or arrondissement given, if any.
    pub area: Option<String>,
    pub urgent: bool,
    /// The filer's language code (templates answer in it).
    pub language: String,
}

/// Which requests of a commune a staff member handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffScope {
    pub commune_id: Uuid,
    /// `None`: every department; otherwise only requests of these departments.
    pub departments: Option<Vec<Uuid>>,
}

impl StaffScope {
    /// Whether `request` is in this scope.
    pub fn covers(&self, request: &service_request::Model) -> bool {
        request.commune_id == self.commune_id
            && match &self.departments {
                None => true,
                Some(departments) => request
                    .department_id
                    .is_some_and(|department| departments.contains(&department)),
            }
    }
}

/// A staff member's move of a request along its workflow, parsed.
pub struct StatusChange {
    pub request_id: Uuid,
    pub scope: StaffScope,
    pub actor_id: Uuid,
    pub to: RequestStatus,
    /// The public note (required when rejecting; checked by the caller).
    pub note: String,
    pub internal_note: String,
    pub legal_ground: String,
    /// The etag the actor read, if they sent one.
    pub etag: Option<String>,
    /// A response template whose text becomes the public note (the note is then empty).
    pub template: Option<response_template::Model>,
}

/// A staff member's assignment of a request, parsed.
pub struct Assignment {
    pub request_id: Uuid,
    pub scope: StaffScope,
    pub actor_id: Uuid,
    /// `None` keeps the request's department.
    pub department_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    /// `None` keeps the request's priority.
    pub priority: Option<RequestPriority>,
    pub etag: Option<String>,
}

/// Whose requests a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// A citizen's own requests.
    Citizen(Uuid),
    /// A staff member's, optionally only those assigned to one agent.
    Staff {
        scope: StaffScope,
        assignee: Option<Uuid>,
    },
}

/// A request with its status history and appeals, oldest first (empty in lists).
#[derive(Debug, Clone)]
pub struct RequestView {
    pub request: service_request::Model,
    pub history: Vec<history_entry::Model>,
    pub appeals: Vec<appeal::Model>,
}

/// A filed request and its receipt.
pub struct Filed {
    pub view: RequestView,
    /// The service's definition at the version the request was filed under.
    pub definition: ServiceDefinition,
    /// The receipt's secret: only on the first answer.
    pub secret: Option<String>,
}

/// The request operations.
pub struct Requests {
    db: DatabaseConnection,
    outbox: Outbox,
    clock: CommuneClock,
    reopen_window: Duration,
}

impl Requests {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        clock: CommuneClock,
        reopen_window_days: u32,
    ) -> Self {
        Requests {
            db,
            outbox,
            clock,
            reopen_window: Duration::days(i64::from(reopen_window_days)),
        }
    }

    /// Files a request for an active service of the commune: the request (SUBMITTED) with its
    /// due date, its first history row and `RequestSubmitted` commit together. Idempotent: a
    /// second submission with the same `client_request_id` by the same filer returns the
    /// first request (without the receipt's secret).
    pub async fn submit(&self, new: NewRequest) -> Result<Filed, Error> {
        let owner = owner_column(&new.filer);
        // A retry of a request already filed (same filer, same `request_id`) is found by the
        // unique key when the insert meets it (below), not by a read before every submission;
        // and if the checks refuse it (the service changed since), by a read then.
        let (service, definition, attributes) = match self.check(&new).await {
            Ok(checked) => checked,
            Err(error) => {
                return match find_by_client_id(&self.db, owner, new.client_request_id).await? {
                    Some(existing) => self.refiled(existing).await,
                    None => Err(error),
                };
            }
        };
        let secret = receipt_secret()?;
        let txn = self.db.begin().await?;
        let filing = Filing {
            new: &new,
            service: &service,
            definition: &definition,
            attributes,
            secret_hash: secret_hash(&secret),
        };
        match self.insert_submission(&txn, filing).await {
            Ok(view) => {
                self.outbox.commit(txn).await?;
                Ok(Filed {
                    view,
                    definition,
                    secret: Some(secret),
                })
            }
            Err(Error::Database(error)) if is_unique_violation(&error) => {
                // The same filer filed the same request_id before (a retry), or concurrently:
                // the first one stands, and this call answers with it.
                txn.rollback().await?;
                match find_by_client_id(&self.db, owner, new.client_request_id).await? {
                    Some(existing) => self.refiled(existing).await,
                    None => Err(Error::Database(error)),
                }
            }
            Err(error) => {
                txn.rollback().await?;
                Err(error)
            }
        }
    }

    /// The service a new request is filed under, its current definition, and the request's
    /// attribute values checked against it.
    async fn check(
        &self,
        new: &NewRequest,
    ) -> Result<(service::Model, ServiceDefinition, BTreeMap<String, String>), Error> {
        let service = service::Entity::find_by_id(new.service_id)
            .one(&self.db)
            .await?
            .filter(|service| service.commune_id == new.commune_id)
            .ok_or_else(|| Error::NotFound(format!("service {}", new.service_id)))?;
        if !service.active {
            return Err(Error::ServiceInactive(service.code));
        }
        let definition = version_of(&self.db, &service, service.version).await?;
        check_channel(&definition, &new.filer)?;
        let mut violations = FieldViolations::new();
        let attributes =
            check_attribute_values(&definition.attributes, &new.attributes, &mut violations);
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        Ok((service, definition, attributes))
    }

    async fn refiled(&self, existing: service_request::Model) -> Result<Filed, Error> {
        let service = service_of(&self.db, &existing).await?;
        let definition = version_of(&self.db, &service, existing.service_version).await?;
        Ok(Filed {
            view: self.with_history(existing).await?,
            definition,
            secret: None,
        })
    }

    /// Writes a submission inside `txn`: tracking number, request, first history row, event.
    async fn insert_submission(
        &self,
        txn: &DatabaseTransaction,
        filing: Filing<'_>,
    ) -> Result<RequestView, Error> {
        let Filing {
            new,
            service,
            definition,
            attributes,
            secret_hash,
        } = filing;
        let now = Utc::now();
        let sequence = next_tracking_number(txn, now).await?;
        let tracking_code = domain::tracking_code(&new.commune_code, now.year(), sequence);
        let attributes = serde_json::to_string(&attributes)
            .map_err(|error| Error::Internal(format!("cannot encode attributes: {error}")))?;
        let kind = ServiceKind::try_from(definition.kind).unwrap_or(ServiceKind::Unspecified);
        let due_date = match Deadline::from_policy(definition.deadline_policy.as_ref()) {
            Some(deadline) => {
                let calendar = calendar_of(txn, new.commune_id).await?;
                Some(calendar.due_date(self.clock.today(now), deadline.count_for(new.urgent)))
            }
            None => None,
        };
        let (walk_in, filed_by) = match &new.filer {
            Filer::Citizen(_) => (None, None),
            Filer::Desk { agent_id, walk_in } => (Some(walk_in), Some(*agent_id)),
            Filer::ApiClient { key_id, walk_in } => (Some(walk_in), Some(*key_id)),
        };
        let actor = filed_by.unwrap_or(owner_column(&new.filer));
        let request = service_request::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            citizen_id: Set(owner_column(&new.filer)),
            client_request_id: Set(new.client_request_id),
            service_id: Set(service.id),
            service_code: Set(service.code.clone()),
            tracking_code: Set(tracking_code),
            description: Set(new.description.as_str().to_string()),
            attributes: Set(attributes),
            latitude: Set(new.location.map(|location| location.latitude)),
            longitude: Set(new.location.map(|location| location.longitude)),
            status: Set(domain::status_to_db(RequestStatus::Submitted).to_string()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            service_version: Set(service.version),
            service_kind: Set(domain::kind_to_db(kind).to_string()),
            address: Set(new.address.clone()),
            walk_in_name: Set(walk_in.map(|walk_in| walk_in.full_name.clone())),
            walk_in_phone: Set(walk_in.map(|walk_in| walk_in.phone.clone())),
            filed_by: Set(filed_by),
            receipt_secret_hash: Set(Some(secret_hash)),
            urgent: Set(new.urgent),
            due_date: Set(due_date),
            clock_stopped_on: Set(None),
            extended: Set(false),
            extension_reason: Set(None),
            approaching_notified_for: Set(None),
            breached_notified_for: Set(None),
            department_id: Set(department_of(definition)),
            assignee_id: Set(None),
            priority: Set(domain::priority_to_db(if new.urgent {
                RequestPriority::Urgent
            } else {
                RequestPriority::Normal
            })
            .to_string()),
            rating: Set(None),
            rating_comment: Set(None),
            rated_at: Set(None),
            resolved_at: Set(None),
            answered_at: Set(None),
            area: Set(new.area.clone()),
            language: Set(new.language.clone()),
        }
        .insert(txn)
        .await?;
        let first = insert_history(
            txn,
            HistoryRow {
                request_id: request.id,
                from: RequestStatus::Unspecified,
                to: RequestStatus::Submitted,
                note: String::new(),
                internal_note: String::new(),
                legal_ground: String::new(),
                actor_id: actor,
                at: now,
            },
        )
        .await?;
        self.outbox
            .add(
                txn,
                subject(request.id),
                &events::RequestSubmitted {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    citizen_id: optional_id(account_of(&request)),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    submit_time: Some(timestamp_from_millis(now.timestamp_millis())),
                    due_date: request
                        .due_date
                        .map(|due| due.to_string())
                        .unwrap_or_default(),
                    service_kind: kind as i32,
                    department_id: optional_id(request.department_id),
                },
            )
            .await?;
        Ok(RequestView {
            request,
            history: vec![first],
            appeals: Vec::new(),
        })
    }

    /// The request `id` with its history, or `None` when it does not exist. The caller checks
    /// whether the viewer may see it.
    pub async fn find(&self, id: Uuid) -> Result<Option<RequestView>, Error> {
        match service_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
        {
            Some(request) => Ok(Some(self.with_history(request).await?)),
            None => Ok(None),
        }
    }

    /// The request with tracking code `tracking_code` if `secret` is its receipt's secret,
    /// with its service's definition (at the filed version). `None` for an unknown code or a
    /// wrong secret alike.
    pub async fn find_by_receipt(
        &self,
        tracking_code: &str,
        secret: &str,
    ) -> Result<Option<(RequestView, ServiceDefinition)>, Error> {
        let Some(request) = service_request::Entity::find()
            .filter(service_request::Column::TrackingCode.eq(tracking_code))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let given = secret_hash(&normalise_secret(secret));
        let matches = request
            .receipt_secret_hash
            .as_deref()
            .is_some_and(|stored| constant_time_eq(stored.as_bytes(), given.as_bytes()));
        if !matches {
            return Ok(None);
        }
        let service = service_of(&self.db, &request).await?;
        let definition = version_of(&self.db, &service, request.service_version).await?;
        Ok(Some((self.with_history(request).await?, definition)))
    }

    /// A page of requests in `scope`, optionally only in `status`, newest first, without
    /// history. Returns the requests and the next page token.
    pub async fn list(
        &self,
        scope: ListScope,
        status: Option<RequestStatus>,
        page: PageRequest,
    ) -> Result<(Vec<service_request::Model>, String), Error> {
        let mut query = match scope {
            ListScope::Citizen(citizen_id) => service_request::Entity::find()
                .filter(service_request::Column::CitizenId.eq(citizen_id)),
            ListScope::Staff { scope, assignee } => {
                let mut query = service_request::Entity::find()
                    .filter(service_request::Column::CommuneId.eq(scope.commune_id));
                if let Some(departments) = scope.departments {
                    query = query.filter(service_request::Column::DepartmentId.is_in(departments));
                }
                if let Some(assignee) = assignee {
                    query = query.filter(service_request::Column::AssigneeId.eq(assignee));
                }
                query
            }
        };
        if let Some(status) = status {
            query = query.filter(service_request::Column::Status.eq(domain::status_to_db(status)));
        }
        if let Some(before) = page.before {
            query = query.filter(service_request::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(service_request::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        Ok((rows, next_page_token))
    }

    /// Moves a request in the actor's scope to `change.to` if the workflow allows it, stopping
    /// or restarting its deadline clock as its policy says.
    pub async fn change_status(&self, change: StatusChange) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = load_in_scope(&txn, change.request_id, &change.scope).await?;
        check_etag(&request, change.etag.as_deref())?;
        let from = stored_status(&request.status)?;
        if !domain::staff_may_move(from, change.to) {
            return Err(Error::InvalidTransition {
                from,
                to: change.to,
            });
        }
        let kind = domain::kind_from_db(&request.service_kind);
        if change.to == RequestStatus::Rejected
            && kind == ServiceKind::InformationRequest
            && change.legal_ground.is_empty()
        {
            let mut violations = FieldViolations::new();
            violations.add(
                "legal_ground",
                "is required when refusing an access-to-information request (law 31-13: a refusal is written and reasoned)",
            );
            return Err(Error::InvalidArgument(violations));
        }
        let note = match &change.template {
            None => change.note.clone(),
            Some(template) => {
                let fits_service = template
                    .service_id
                    .is_none_or(|service| service == request.service_id);
                if template.status != domain::status_to_db(change.to) || !fits_service {
                    return Err(Error::precondition(
                        "TEMPLATE_MISMATCH",
                        "this response template is for another status or service",
                    ));
                }
                in_language(&text_of(template), &request.language)
            }
        };
        let mut next = request.clone();
        next.status = domain::status_to_db(change.to).to_string();
        match change.to {
            RequestStatus::Resolved => {
                next.resolved_at = Some(now);
                next.answered_at = Some(now);
            }
            RequestStatus::Rejected => next.answered_at = Some(now),
            RequestStatus::InProgress => next.resolved_at = None,
            _ => {}
        }
        self.move_clock(&txn, &request, &mut next, change.to, now)
            .await?;
        self.save_transition(
            &txn,
            &request,
            next,
            HistoryRow {
                request_id: request.id,
                from,
                to: change.to,
                note,
                internal_note: change.internal_note,
                legal_ground: change.legal_ground,
                actor_id: change.actor_id,
                at: now,
            },
        )
        .await?;
        self.outbox.commit(txn).await?;
        self.reload(request.id).await
    }

    /// Stops the clock when the request starts awaiting the citizen and its policy says so;
    /// restarts it (pushing the due date back) when it stops awaiting.
    async fn move_clock(
        &self,
        txn: &DatabaseTransaction,
        request: &service_request::Model,
        next: &mut service_request::Model,
        to: RequestStatus,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(due) = request.due_date else {
            return Ok(());
        };
        let today = self.clock.today(now);
        if let Some(stopped_on) = request.clock_stopped_on
            && to != RequestStatus::AwaitingCitizen
        {
            let deadline = self.deadline_of(txn, request).await?;
            let calendar = calendar_of(txn, request.commune_id).await?;
            if let Some(deadline) = deadline {
                next.due_date = Some(calendar.after_clock_stop(
                    due,
                    stopped_on,
                    today,
                    deadline.count_for(request.urgent),
                ));
            }
            next.clock_stopped_on = None;
        } else if to == RequestStatus::AwaitingCitizen
            && request.clock_stopped_on.is_none()
            && self
                .deadline_of(txn, request)
                .await?
                .is_some_and(|deadline| deadline.stop_clock_while_awaiting_citizen)
        {
            next.clock_stopped_on = Some(today);
        }
        Ok(())
    }

    async fn deadline_of(
        &self,
        db: &impl ConnectionTrait,
        request: &service_request::Model,
    ) -> Result<Option<Deadline>, Error> {
        let service = service_of(db, request).await?;
        let definition = version_of(db, &service, request.service_version).await?;
        Ok(Deadline::from_policy(definition.deadline_policy.as_ref()))
    }

    /// The citizen withdraws their request before work starts (SUBMITTED or RECEIVED). For a
    /// walk-in without an account, staff of the commune withdraw it for them.
    pub async fn cancel(
        &self,
        request_id: Uuid,
        canceller: Canceller,
        reason: String,
    ) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = service_request::Entity::find_by_id(request_id)
            .one(&txn)
            .await?
            .filter(|request| canceller.may_cancel(request))
            .ok_or_else(|| Error::NotFound(format!("request {request_id}")))?;
        let from = stored_status(&request.status)?;
        if !domain::can_move(from, RequestStatus::Cancelled) {
            return Err(Error::InvalidTransition {
                from,
                to: RequestStatus::Cancelled,
            });
        }
        let mut next = request.clone();
        next.status = domain::status_to_db(RequestStatus::Cancelled).to_string();
        next.clock_stopped_on = None;
        self.save_transition(
            &txn,
            &request,
            next,
            HistoryRow {
                request_id,
                from,
                to: RequestStatus::Cancelled,
                note: reason,
                internal_note: String::new(),
                legal_ground: String::new(),
                actor_id: canceller.actor(),
                at: now,
            },
        )
        .await?;
        self.outbox.commit(txn).await?;
        self.reload(request_id).await
    }

    /// The citizen reopens their resolved (or resolved then closed) request within the
    /// reopening window: it goes back to IN_PROGRESS.
    pub async fn reopen(
        &self,
        request_id: Uuid,
        citizen_id: Uuid,
        reason: String,
    ) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = load_own(&txn, request_id, citizen_id).await?;
        let from = stored_status(&request.status)?;
        if !domain::can_reopen(from) {
            return Err(Error::InvalidTransition {
                from,
                to: RequestStatus::InProgress,
            });
        }
        let Some(resolved_at) = request.resolved_at else {
            return Err(Error::precondition(
                "NOT_RESOLVED",
                "only a resolved request can be reopened; a refusal is appealed, not reopened",
            ));
        };
        if now - resolved_at > self.reopen_window {
            return Err(Error::precondition(
                "REOPEN_WINDOW_PASSED",
                format!(
                    "a request can be reopened within {} days of its resolution",
                    self.reopen_window.num_days()
                ),
            ));
        }
        let mut next = request.clone();
        next.status = domain::status_to_db(RequestStatus::InProgress).to_string();
        next.resolved_at = None;
        self.save_transition(
            &txn,
            &request,
            next,
            HistoryRow {
                request_id,
                from,
                to: RequestStatus::InProgress,
                note: reason,
                internal_note: String::new(),
                legal_ground: String::new(),
                actor_id: citizen_id,
                at: now,
            },
        )
        .await?;
        self.outbox.commit(txn).await?;
        self.reload(request_id).await
    }

    /// Assigns a request in the actor's scope; `RequestAssigned` commits with it.
    pub async fn assign(&self, assignment: Assignment) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = load_in_scope(&txn, assignment.request_id, &assignment.scope).await?;
        check_etag(&request, assignment.etag.as_deref())?;
        let mut next = request.clone();
        if let Some(department) = assignment.department_id {
            next.department_id = Some(department);
        }
        next.assignee_id = assignment.assignee_id;
        if let Some(priority) = assignment.priority {
            next.priority = domain::priority_to_db(priority).to_string();
        }
        next.version += 1;
        next.updated_at = now;
        save_guarded(&txn, &request, next.clone()).await?;
        self.outbox
            .add(
                &txn,
                subject(request.id),
                &events::RequestAssigned {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    department_id: optional_id(next.department_id),
                    assignee_id: optional_id(next.assignee_id),
                    priority: domain::priority_from_db(&next.priority) as i32,
                    assigned_by: assignment.actor_id.to_string(),
                    assign_time: Some(timestamp_from_millis(now.timestamp_millis())),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        self.reload(request.id).await
    }

    /// Extends an open request's deadline once, by its policy's extension; the reason goes to
    /// the citizen (`RequestDeadlineExtended`) and into the public history.
    pub async fn extend_deadline(
        &self,
        request_id: Uuid,
        scope: &StaffScope,
        actor_id: Uuid,
        reason: String,
    ) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = load_in_scope(&txn, request_id, scope).await?;
        let status = stored_status(&request.status)?;
        let (Some(due), Some(deadline)) =
            (request.due_date, self.deadline_of(&txn, &request).await?)
        else {
            return Err(Error::precondition(
                "NO_DEADLINE",
                "this request's service sets no deadline",
            ));
        };
        let Some(days) = deadline.extension_days else {
            return Err(Error::precondition(
                "NO_EXTENSION",
                "this request's service allows no extension",
            ));
        };
        if request.extended {
            return Err(Error::precondition(
                "ALREADY_EXTENDED",
                "the deadline was extended once already; the law allows one extension",
            ));
        }
        if !domain::OPEN_STATUSES.contains(&status) {
            return Err(Error::precondition(
                "REQUEST_NOT_OPEN",
                "only an open request's deadline can be extended",
            ));
        }
        let calendar: WorkingCalendar = calendar_of(&txn, request.commune_id).await?;
        let new_due = calendar.extended(due, days, deadline.count_for(request.urgent));
        let mut next = request.clone();
        next.due_date = Some(new_due);
        next.extended = true;
        next.extension_reason = Some(reason.clone());
        self.save_transition(
            &txn,
            &request,
            next,
            HistoryRow {
                request_id,
                from: status,
                to: status,
                note: reason.clone(),
                internal_note: String::new(),
                legal_ground: String::new(),
                actor_id,
                at: now,
            },
        )
        .await?;
        let kind = domain::kind_from_db(&request.service_kind);
        self.outbox
            .add(
                &txn,
                subject(request.id),
                &events::RequestDeadlineExtended {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    citizen_id: optional_id(account_of(&request)),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    service_kind: kind as i32,
                    old_due_date: due.to_string(),
                    new_due_date: new_due.to_string(),
                    reason,
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        self.reload(request_id).await
    }

    /// The citizen rates their resolved request, once.
    pub async fn rate(
        &self,
        request_id: Uuid,
        citizen_id: Uuid,
        rating: i32,
        comment: String,
    ) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = load_own(&txn, request_id, citizen_id).await?;
        let status = stored_status(&request.status)?;
        if !domain::can_rate(status) {
            return Err(Error::precondition(
                "NOT_RESOLVED",
                "a request can be rated once it is resolved",
            ));
        }
        if request.rating.is_some() {
            return Err(Error::precondition(
                "ALREADY_RATED",
                "this request was rated already; a rating is given once",
            ));
        }
        let mut next = request.clone();
        next.rating = Some(rating);
        next.rating_comment = (!comment.is_empty()).then_some(comment);
        next.rated_at = Some(now);
        next.version += 1;
        save_guarded(&txn, &request, next).await?;
        txn.commit().await?;
        self.reload(request_id).await
    }

    /// Saves `next` (one version up), its history row and `RequestStatusChanged` in `txn`.
    async fn save_transition(
        &self,
        txn: &DatabaseTransaction,
        request: &service_request::Model,
        mut next: service_request::Model,
        row: HistoryRow,
    ) -> Result<(), Error> {
        next.version = request.version + 1;
        next.updated_at = row.at;
        save_guarded(txn, request, next).await?;
        let (from, to, note, actor, at) =
            (row.from, row.to, row.note.clone(), row.actor_id, row.at);
        insert_history(txn, row).await?;
        if from != to {
            self.outbox
                .add(
                    txn,
                    subject(request.id),
                    &events::RequestStatusChanged {
                        request_id: request.id.to_string(),
                        commune_id: request.commune_id.to_string(),
                        citizen_id: optional_id(account_of(request)),
                        tracking_code: request.tracking_code.clone(),
                        service_code: request.service_code.clone(),
                        old_status: from as i32,
                        new_status: to as i32,
                        public_note: note,
                        changed_by: actor.to_string(),
                        change_time: Some(timestamp_from_millis(at.timestamp_millis())),
                    },
                )
                .await?;
        }
        Ok(())
    }

    async fn reload(&self, id: Uuid) -> Result<RequestView, Error> {
        self.find(id)
            .await?
            .ok_or_else(|| Error::Internal(format!("request {id} vanished after its change")))
    }

    async fn with_history(&self, request: service_request::Model) -> Result<RequestView, Error> {
        let history = history_entry::Entity::find()
            .filter(history_entry::Column::RequestId.eq(request.id))
            .order_by_asc(history_entry::Column::ChangedAt)
            .order_by_asc(history_entry::Column::Id)
            .all(&self.db)
            .await?;
        let appeals = appeal::Entity::find()
            .filter(appeal::Column::RequestId.eq(request.id))
            .order_by_asc(appeal::Column::FiledAt)
            .all(&self.db)
            .await?;
        Ok(RequestView {
            request,
            history,
            appeals,
        })
    }
}

/// Who cancels a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canceller {
    /// The citizen whose request it is.
    Citizen(Uuid),
    /// Staff of the commune, for a walk-in without an account.
    Desk { scope: StaffScope, agent_id: Uuid },
}

impl Canceller {
    fn may_cancel(&self, request: &service_request::Model) -> bool {
        match self {
            Canceller::Citizen(citizen) => account_of(request) == Some(*citizen),
            Canceller::Desk { scope, .. } => account_of(request).is_none() && scope.covers(request),
        }
    }

    fn actor(&self) -> Uuid {
        match self {
            Canceller::Citizen(citizen) => *citizen,
            Canceller::Desk { agent_id, .. } => *agent_id,
        }
    }
}

/// The account a request belongs to: `None` for a walk-in without one.
pub fn account_of(request: &service_request::Model) -> Option<Uuid> {
    (!request.citizen_id.is_nil()).then_some(request.citizen_id)
}

/// The etag of a request as stored (its version).
pub fn etag_of(request: &service_request::Model) -> String {
    format!("v{}", request.version)
}

/// The status stored in a row, or an internal error for a value this code never writes.
pub fn stored_status(value: &str) -> Result<RequestStatus, Error> {
    domain::status_from_db(value)
        .ok_or_else(|| Error::Internal(format!("unknown stored request status {value:?}")))
}

/// The subject of a request's events.
pub fn subject(request_id: Uuid) -> String {
    format!("requests/{request_id}")
}

struct Filing<'a> {
    new: &'a NewRequest,
    service: &'a service::Model,
    definition: &'a ServiceDefinition,
    attributes: std::collections::BTreeMap<String, String>,
    secret_hash: String,
}

struct HistoryRow {
    request_id: Uuid,
    from: RequestStatus,
    to: RequestStatus,
    note: String,
    internal_note: String,
    legal_ground: String,
    actor_id: Uuid,
    at: DateTime<Utc>,
}

/// The `citizen_id` column of a filing: the account, or nil for a walk-in without one.
fn owner_column(filer: &Filer) -> Uuid {
    match filer {
        Filer::Citizen(citizen) => *citizen,
        Filer::Desk { walk_in, .. } => walk_in.account.unwrap_or(Uuid::nil()),
        Filer::ApiClient { .. } => Uuid::nil(),
    }
}

fn check_channel(definition: &ServiceDefinition, filer: &Filer) -> Result<(), Error> {
    let channel =
        ServiceChannel::try_from(definition.channel).unwrap_or(ServiceChannel::Unspecified);
    match (filer, channel) {
        (Filer::Citizen(_), ServiceChannel::Desk) => Err(Error::precondition(
            "DESK_ONLY_SERVICE",
            format!(
                "service {} is filed at the commune's desk, not online",
                definition.code
            ),
        )),
        (Filer::Desk { .. }, ServiceChannel::Online) => Err(Error::precondition(
            "ONLINE_ONLY_SERVICE",
            format!("service {} is filed online only", definition.code),
        )),
        (Filer::ApiClient { .. }, ServiceChannel::Desk) => Err(Error::precondition(
            "DESK_ONLY_SERVICE",
            format!(
                "service {} is filed at the commune's desk, not online",
                definition.code
            ),
        )),
        (Filer::ApiClient { .. }, _)
            if definition.kind
                != jamaa_proto::servicerequest::v1::ServiceKind::IncidentReport as i32 =>
        {
            Err(Error::precondition(
                "NOT_AN_INCIDENT_REPORT",
                format!(
                    "applications file incident reports only; service {} is not one",
                    definition.code
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn check_etag(request: &service_request::Model, etag: Option<&str>) -> Result<(), Error> {
    match etag {
        Some(etag) if etag != etag_of(request) => Err(Error::Conflict),
        _ => Ok(()),
    }
}

/// Writes `next` over `old` if nobody changed it since it was read.
async fn save_guarded(
    txn: &DatabaseTransaction,
    old: &service_request::Model,
    next: service_request::Model,
) -> Result<(), Error> {
    let updated = service_request::Entity::update_many()
        .set(next.into_active_model().reset_all())
        .filter(service_request::Column::Id.eq(old.id))
        .filter(service_request::Column::Version.eq(old.version))
        .exec(txn)
        .await?;
    if updated.rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::Conflict)
    }
}

async fn load_in_scope(
    txn: &DatabaseTransaction,
    id: Uuid,
    scope: &StaffScope,
) -> Result<service_request::Model, Error> {
    service_request::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|request| scope.covers(request))
        .ok_or_else(|| Error::NotFound(format!("request {id}")))
}

async fn load_own(
    txn: &DatabaseTransaction,
    id: Uuid,
    citizen_id: Uuid,
) -> Result<service_request::Model, Error> {
    service_request::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|request| account_of(request) == Some(citizen_id))
        .ok_or_else(|| Error::NotFound(format!("request {id}")))
}

async fn service_of(
    db: &impl ConnectionTrait,
    request: &service_request::Model,
) -> Result<service::Model, Error> {
    service::Entity::find_by_id(request.service_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("request {} lost its service", request.id)))
}

/// An optional id as events carry it: empty for none.
pub fn optional_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// The characters of receipt secrets: no 0/O, 1/I/L, so they survive being read aloud.
const SECRET_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Receipt secrets have 10 characters (about 50 bits).
const SECRET_CHARS: usize = 10;

fn receipt_secret() -> Result<String, Error> {
    let mut secret = String::with_capacity(SECRET_CHARS);
    while secret.len() < SECRET_CHARS {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|error| Error::Internal(format!("no randomness for a receipt: {error}")))?;
        // 248 = 8 × 31: bytes above it are dropped so every character is equally likely.
        for byte in bytes.into_iter().filter(|byte| *byte < 248) {
            if secret.len() < SECRET_CHARS {
                secret.push(char::from(SECRET_ALPHABET[usize::from(byte % 31)]));
            }
        }
    }
    Ok(secret)
}

/// A secret as typed: upper case, without spaces or dashes.
fn normalise_secret(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Allocates a tracking sequence number by inserting a row (its id comes from a database
/// sequence, so concurrent submissions never wait on each other).
async fn next_tracking_number(txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<i64, Error> {
    let inserted = tracking_number::Entity::insert(tracking_number::ActiveModel {
        id: NotSet,
        issued_at: Set(now),
    })
    .exec(txn)
    .await?;
    Ok(inserted.last_insert_id)
}

async fn insert_history(
    txn: &DatabaseTransaction,
    row: HistoryRow,
) -> Result<history_entry::Model, Error> {
    Ok(history_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        request_id: Set(row.request_id),
        from_status: Set(domain::status_to_db(row.from).to_string()),
        to_status: Set(domain::status_to_db(row.to).to_string()),
        note: Set(row.note),
        actor_id: Set(row.actor_id),
        changed_at: Set(row.at),
        internal_note: Set(row.internal_note),
        legal_ground: Set(row.legal_ground),
    }
    .insert(txn)
    .await?)
}

async fn find_by_client_id(
    db: &impl ConnectionTrait,
    owner: Uuid,
    client_request_id: Uuid,
) -> Result<Option<service_request::Model>, Error> {
    Ok(service_request::Entity::find()
        .filter(service_request::Column::CitizenId.eq(owner))
        .filter(service_request::Column::ClientRequestId.eq(client_request_id))
        .one(db)
        .await?)
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_secrets_are_ten_unambiguous_characters() {
        let secret = receipt_secret().expect("a secret");
        assert_eq!(secret.len(), SECRET_CHARS);
        assert!(secret.bytes().all(|byte| SECRET_ALPHABET.contains(&byte)));
        assert!(!secret.contains(['0', 'O', '1', 'I', 'L']));
        assert_ne!(secret, receipt_secret().expect("another secret"));
        assert_eq!(normalise_secret("abcde-fghjk"), "ABCDEFGHJK");
    }
}
