//! The event consumer: turns other services' events into recipients and notifications.
//!
//! Each event is applied in ONE transaction that first claims the event id in the inbox table
//! ([`jamaa_events::inbox::try_claim`]); a redelivered event finds it claimed and changes nothing.
//! The unique index on `notifications (event_id, recipient_id)` backs this up.

use async_trait::async_trait;
use chrono::Utc;
use jamaa_events::{CloudEvent, EventHandler, HandlerError, inbox};
use jamaa_proto::events::v1 as events;
use jamaa_proto::servicerequest::v1::RequestStatus;
use jamaa_proto::r#type::v1::Language;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::CONSUMER;
use crate::fanout;
use crate::routing::{self, EMAIL, SMS};
use crate::storage::{commune, delivery, department_head, follower, notification, recipient};
use crate::templates::{self, Kind, Notice};

/// The consumed event types other events' handling depends on, handled as fences (see
/// [`jamaa_events::Subscription::fences`]): a person's language and residence
/// (`CitizenRegistered`), their erasure, a commune's code and time zone, a department's heads.
/// Rare beside the rest, which are handled concurrently, in order per subject.
pub fn fence_event_types() -> Vec<String> {
    vec![
        CloudEvent::type_of::<events::CitizenRegistered>(),
        CloudEvent::type_of::<events::AccountErased>(),
        CloudEvent::type_of::<events::StaffRoleChanged>(),
        CloudEvent::type_of::<events::CommuneCreated>(),
        CloudEvent::type_of::<events::CommuneUpdated>(),
    ]
}

/// The event types this service consumes.
pub fn handled_event_types() -> Vec<String> {
    vec![
        CloudEvent::type_of::<events::CitizenRegistered>(),
        CloudEvent::type_of::<events::RequestSubmitted>(),
        CloudEvent::type_of::<events::RequestStatusChanged>(),
        CloudEvent::type_of::<events::PetitionThresholdReached>(),
        CloudEvent::type_of::<events::VerificationCodeIssued>(),
        CloudEvent::type_of::<events::AccountErased>(),
        CloudEvent::type_of::<events::StaffInvited>(),
        CloudEvent::type_of::<events::SignUpAttempted>(),
        CloudEvent::type_of::<events::RequestDeadlineExtended>(),
        CloudEvent::type_of::<events::RequestAssigned>(),
        CloudEvent::type_of::<events::DeadlineApproaching>(),
        CloudEvent::type_of::<events::DeadlineBreached>(),
        CloudEvent::type_of::<events::StaffRoleChanged>(),
        CloudEvent::type_of::<events::PetitionDecided>(),
        CloudEvent::type_of::<events::ProposalAnswered>(),
        CloudEvent::type_of::<events::ResultUpdated>(),
        CloudEvent::type_of::<events::ProposalFollowed>(),
        CloudEvent::type_of::<events::PetitionDecisionOverdue>(),
        CloudEvent::type_of::<events::RequestFollowed>(),
        CloudEvent::type_of::<events::RequestUnfollowed>(),
        CloudEvent::type_of::<events::AppointmentBooked>(),
        CloudEvent::type_of::<events::AppointmentReminder>(),
        CloudEvent::type_of::<events::PetitionSigned>(),
        CloudEvent::type_of::<events::PetitionSubmitted>(),
        CloudEvent::type_of::<events::ConsultationOpened>(),
        CloudEvent::type_of::<events::ConsultationClosed>(),
        CloudEvent::type_of::<events::BudgetPhaseChanged>(),
        CloudEvent::type_of::<events::CommuneCreated>(),
        CloudEvent::type_of::<events::CommuneUpdated>(),
    ]
}

/// Applies notification's events to its database. Idempotent: see the module docs.
pub struct NotificationHandler {
    db: DatabaseConnection,
    /// The channels configured besides the inbox (`email`, `sms`): only theirs are queued.
    channels: Vec<&'static str>,
}

impl NotificationHandler {
    pub fn new(db: DatabaseConnection, channels: Vec<&'static str>) -> Self {
        NotificationHandler { db, channels }
    }
}

/// What one event asks of this service.
enum Effect {
    /// Remember a person's commune and language.
    Recipient(recipient::Model),
    /// Forget a person whose account was erased: their recipient record, inbox and follows.
    Forget(Uuid),
    /// Someone follows, or stops following, a request.
    Follow {
        request_id: Uuid,
        user_id: Uuid,
    },
    Unfollow {
        request_id: Uuid,
        user_id: Uuid,
    },
    /// Someone became, or stopped being, a department's head.
    DepartmentHead {
        department_id: Uuid,
        user_id: Uuid,
        head: bool,
    },
    /// Write to a request's assignee (if any) and its department's heads.
    NotifyAssigneeAndHeads {
        assignee: Option<Uuid>,
        department_id: Option<Uuid>,
        commune_id: Option<Uuid>,
        notice: Notice,
    },
    /// Write to a request's citizen (when it has an account) and to each of its followers.
    NotifyRequestAudience {
        request_id: Uuid,
        citizen: Option<Uuid>,
        commune_id: Option<Uuid>,
        notice: Notice,
    },
    /// Write to every known resident of `commune_id` (in batches, each in their language).
    NotifyResidents {
        commune_id: Uuid,
        notice: Notice,
    },
    /// Write to `recipient_id`.
    Notify {
        recipient_id: Uuid,
        commune_id: Option<Uuid>,
        notice: Notice,
        /// The language the event names; else the recipient's known one.
        language: Option<Language>,
        /// Send it to this address on this channel (the one a code proves), not the person's.
        address: Option<(&'static str, String)>,
    },
    /// Remember a commune's code and time zone.
    Commune {
        commune_id: Uuid,
        code: String,
        time_zone: Option<String>,
    },
    /// E-mail someone who has no account (yet): an invitee.
    Email {
        address: String,
        notice: Notice,
        language: Language,
    },
}

#[async_trait]
impl EventHandler for NotificationHandler {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        let Some(effect) = effect_of(event)? else {
            tracing::debug!(event_type = %event.event_type, "ignoring an event type this service does not handle");
            return Ok(());
        };
        let txn = self.db.begin().await?;
        if !inbox::try_claim(&txn, CONSUMER, event.id, &event.event_type).await? {
            tracing::debug!(event_id = %event.id, "event already handled");
            return Ok(());
        }
        match effect {
            Effect::Recipient(row) => upsert_recipient(&txn, row).await?,
            Effect::Forget(user_id) => {
                notification::Entity::delete_many()
                    .filter(notification::Column::RecipientId.eq(user_id))
                    .exec(&txn)
                    .await?;
                recipient::Entity::delete_by_id(user_id).exec(&txn).await?;
                follower::Entity::delete_many()
                    .filter(follower::Column::UserId.eq(user_id))
                    .exec(&txn)
                    .await?;
                department_head::Entity::delete_many()
                    .filter(department_head::Column::UserId.eq(user_id))
                    .exec(&txn)
                    .await?;
                crate::storage::preference::Entity::delete_by_id(user_id)
                    .exec(&txn)
                    .await?;
                crate::storage::audience_member::Entity::delete_many()
                    .filter(crate::storage::audience_member::Column::UserId.eq(user_id))
                    .exec(&txn)
                    .await?;
                // Their delivery history goes too; nothing queued for them leaves any more.
                delivery::Entity::delete_many()
                    .filter(delivery::Column::RecipientId.eq(user_id))
                    .exec(&txn)
                    .await?;
            }
            Effect::Follow {
                request_id,
                user_id,
            } => {
                follower::Entity::insert(follower::ActiveModel {
                    request_id: Set(request_id),
                    user_id: Set(user_id),
                })
                .on_conflict(
                    OnConflict::columns([follower::Column::RequestId, follower::Column::UserId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            }
            Effect::Unfollow {
                request_id,
                user_id,
            } => {
                follower::Entity::delete_many()
                    .filter(follower::Column::RequestId.eq(request_id))
                    .filter(follower::Column::UserId.eq(user_id))
                    .exec(&txn)
                    .await?;
            }
            Effect::NotifyRequestAudience {
                request_id,
                citizen,
                commune_id,
                notice,
            } => {
                let followers = follower::Entity::find()
                    .filter(follower::Column::RequestId.eq(request_id))
                    .all(&txn)
                    .await?;
                let audience: Vec<Uuid> = citizen
                    .into_iter()
                    .chain(
                        followers
                            .into_iter()
                            .map(|follower| follower.user_id)
                            .filter(|user| Some(*user) != citizen),
                    )
                    .collect();
                self.write(&txn, event, &audience, commune_id, &notice, None, None)
                    .await?;
            }
            Effect::DepartmentHead {
                department_id,
                user_id,
                head,
            } => {
                department_head::Entity::delete_many()
                    .filter(department_head::Column::DepartmentId.eq(department_id))
                    .filter(department_head::Column::UserId.eq(user_id))
                    .exec(&txn)
                    .await?;
                if head {
                    department_head::Entity::insert(department_head::ActiveModel {
                        department_id: Set(department_id),
                        user_id: Set(user_id),
                    })
                    .exec_without_returning(&txn)
                    .await?;
                }
            }
            Effect::NotifyAssigneeAndHeads {
                assignee,
                department_id,
                commune_id,
                notice,
            } => {
                let heads: Vec<Uuid> = match department_id {
                    Some(department_id) => department_head::Entity::find()
                        .filter(department_head::Column::DepartmentId.eq(department_id))
                        .all(&txn)
                        .await?
                        .into_iter()
                        .map(|head| head.user_id)
                        .collect(),
                    None => Vec::new(),
                };
                let audience: Vec<Uuid> = assignee
                    .into_iter()
                    .chain(heads.into_iter().filter(|head| Some(*head) != assignee))
                    .collect();
                self.write(&txn, event, &audience, commune_id, &notice, None, None)
                    .await?;
            }
            Effect::NotifyResidents { commune_id, notice } => {
                let mut after: Option<Uuid> = None;
                loop {
                    let page = residents_page(&txn, commune_id, after).await?;
                    let Some(last) = page.last() else {
                        break;
                    };
                    after = Some(*last);
                    self.write(&txn, event, &page, Some(commune_id), &notice, None, None)
                        .await?;
                    if page.len() < fanout::BATCH {
                        break;
                    }
                }
            }
            Effect::Notify {
                recipient_id,
                commune_id,
                notice,
                language,
                address,
            } => {
                self.write(
                    &txn,
                    event,
                    &[recipient_id],
                    commune_id,
                    &notice,
                    language,
                    address,
                )
                .await?;
            }
            Effect::Email {
                address,
                notice,
                language,
            } => {
                if self.channels.contains(&EMAIL) {
                    let rendered = templates::render(&notice, language).map_err(|error| {
                        HandlerError(format!("cannot render an e-mail: {error}"))
                    })?;
                    queue_email(&txn, event, address, &rendered).await?;
                } else {
                    tracing::warn!(event_id = %event.id, "no e-mail channel is configured: an invitation cannot be delivered");
                }
            }
            Effect::Commune {
                commune_id,
                code,
                time_zone,
            } => {
                let mut update = vec![commune::Column::Code];
                if time_zone.is_some() {
                    update.push(commune::Column::TimeZone);
                }
                commune::Entity::insert(commune::ActiveModel {
                    commune_id: Set(commune_id),
                    code: Set(code),
                    time_zone: Set(time_zone.unwrap_or_else(|| DEFAULT_TIME_ZONE.to_string())),
                })
                .on_conflict(
                    OnConflict::column(commune::Column::CommuneId)
                        .update_columns(update)
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }
}

/// Decodes `event` into what it asks of this service; `None` for types it does not handle.
/// A payload that does not decode, or names a malformed id, is an error (it ends in the
/// dead-letter queue after the delivery limit).
fn effect_of(event: &CloudEvent) -> Result<Option<Effect>, HandlerError> {
    let effect = if event.is::<events::CitizenRegistered>() {
        let payload = event.decode::<events::CitizenRegistered>()?;
        let language = Language::try_from(payload.preferred_language).unwrap_or(Language::Ar);
        Effect::Recipient(recipient::Model {
            user_id: parse_id(event, "user_id", &payload.user_id)?,
            commune_id: parse_id(event, "commune_id", &payload.commune_id)?,
            language: language.code().to_string(),
            resident: true,
        })
    } else if event.is::<events::RequestSubmitted>() {
        let payload = event.decode::<events::RequestSubmitted>()?;
        // A walk-in without an account has no inbox: their receipt is on paper.
        let Some(recipient_id) = parse_optional_id(event, "citizen_id", &payload.citizen_id)?
        else {
            return Ok(None);
        };
        Effect::Notify {
            recipient_id,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::RequestSubmitted {
                tracking_code: payload.tracking_code,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::RequestStatusChanged>() {
        let payload = event.decode::<events::RequestStatusChanged>()?;
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "request_id", &payload.request_id)?,
            citizen: parse_optional_id(event, "citizen_id", &payload.citizen_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::RequestStatusChanged {
                tracking_code: payload.tracking_code,
                new_status: RequestStatus::try_from(payload.new_status)
                    .unwrap_or(RequestStatus::Unspecified),
                public_note: payload.public_note,
            },
        }
    } else if event.is::<events::RequestDeadlineExtended>() {
        let payload = event.decode::<events::RequestDeadlineExtended>()?;
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "request_id", &payload.request_id)?,
            citizen: parse_optional_id(event, "citizen_id", &payload.citizen_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::DeadlineExtended {
                tracking_code: payload.tracking_code,
                due_date: payload.new_due_date,
                reason: payload.reason,
            },
        }
    } else if event.is::<events::RequestFollowed>() {
        let payload = event.decode::<events::RequestFollowed>()?;
        Effect::Follow {
            request_id: parse_id(event, "request_id", &payload.request_id)?,
            user_id: parse_id(event, "user_id", &payload.user_id)?,
        }
    } else if event.is::<events::RequestUnfollowed>() {
        let payload = event.decode::<events::RequestUnfollowed>()?;
        Effect::Unfollow {
            request_id: parse_id(event, "request_id", &payload.request_id)?,
            user_id: parse_id(event, "user_id", &payload.user_id)?,
        }
    } else if event.is::<events::RequestAssigned>() {
        let payload = event.decode::<events::RequestAssigned>()?;
        let Some(recipient_id) = parse_optional_id(event, "assignee_id", &payload.assignee_id)?
        else {
            return Ok(None);
        };
        Effect::Notify {
            recipient_id,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::RequestAssigned {
                tracking_code: payload.tracking_code,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::DeadlineApproaching>() {
        let payload = event.decode::<events::DeadlineApproaching>()?;
        let Some(recipient_id) = parse_optional_id(event, "assignee_id", &payload.assignee_id)?
        else {
            return Ok(None);
        };
        Effect::Notify {
            recipient_id,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::DeadlineApproaching {
                tracking_code: payload.tracking_code,
                due_date: payload.due_date,
                working_days_left: payload.working_days_left,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::DeadlineBreached>() {
        let payload = event.decode::<events::DeadlineBreached>()?;
        Effect::NotifyAssigneeAndHeads {
            assignee: parse_optional_id(event, "assignee_id", &payload.assignee_id)?,
            department_id: parse_optional_id(event, "department_id", &payload.department_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::DeadlineBreached {
                tracking_code: payload.tracking_code,
                due_date: payload.due_date,
            },
        }
    } else if event.is::<events::StaffRoleChanged>() {
        let payload = event.decode::<events::StaffRoleChanged>()?;
        let department = parse_optional_id(event, "department_id", &payload.department_id)?;
        match department {
            Some(department_id) if payload.role == "department_head" => Effect::DepartmentHead {
                department_id,
                user_id: parse_id(event, "user_id", &payload.user_id)?,
                head: payload.granted,
            },
            _ => return Ok(None),
        }
    } else if event.is::<events::AppointmentBooked>() {
        let payload = event.decode::<events::AppointmentBooked>()?;
        Effect::Notify {
            recipient_id: parse_id(event, "citizen_id", &payload.citizen_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::AppointmentBooked {
                office: payload.office_name.unwrap_or_default(),
                start: payload.local_start,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::AppointmentReminder>() {
        let payload = event.decode::<events::AppointmentReminder>()?;
        Effect::Notify {
            recipient_id: parse_id(event, "citizen_id", &payload.citizen_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::AppointmentReminder {
                office: payload.office_name.unwrap_or_default(),
                start: payload.local_start,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::PetitionDecided>() {
        let payload = event.decode::<events::PetitionDecided>()?;
        // The agent and every signatory (kept in the followers' table, by petition id).
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "petition_id", &payload.petition_id)?,
            citizen: Some(parse_id(event, "author_id", &payload.author_id)?),
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::PetitionDecided {
                title: payload.title,
                outcome: jamaa_proto::participation::v1::PetitionStatus::try_from(payload.outcome)
                    .unwrap_or(jamaa_proto::participation::v1::PetitionStatus::Answered),
                text: payload.text,
            },
        }
    } else if event.is::<events::PetitionSubmitted>() {
        let payload = event.decode::<events::PetitionSubmitted>()?;
        let due_date = payload
            .decision_due_time
            .and_then(|at| chrono::DateTime::from_timestamp(at.seconds, 0))
            .map(|at| at.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "petition_id", &payload.petition_id)?,
            citizen: Some(parse_id(event, "author_id", &payload.author_id)?),
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::PetitionSubmitted {
                title: payload.title,
                due_date,
            },
        }
    } else if event.is::<events::PetitionSigned>() {
        let payload = event.decode::<events::PetitionSigned>()?;
        Effect::Follow {
            request_id: parse_id(event, "petition_id", &payload.petition_id)?,
            user_id: parse_id(event, "citizen_id", &payload.citizen_id)?,
        }
    } else if event.is::<events::ConsultationOpened>() {
        let payload = event.decode::<events::ConsultationOpened>()?;
        let close_date = payload
            .close_time
            .and_then(|at| chrono::DateTime::from_timestamp(at.seconds, 0))
            .map(|at| at.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        Effect::NotifyResidents {
            commune_id: parse_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::ConsultationOpened {
                title: payload.title,
                close_date,
            },
        }
    } else if event.is::<events::ConsultationClosed>() {
        let payload = event.decode::<events::ConsultationClosed>()?;
        Effect::Notify {
            recipient_id: parse_id(event, "created_by", &payload.created_by)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::ConsultationClosed {
                title: payload.title,
                responses: payload.response_count,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::BudgetPhaseChanged>() {
        let payload = event.decode::<events::BudgetPhaseChanged>()?;
        Effect::NotifyResidents {
            commune_id: parse_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::BudgetPhaseChanged {
                title: payload.title,
                phase: jamaa_proto::participation::v1::BudgetPhase::try_from(payload.phase)
                    .unwrap_or(jamaa_proto::participation::v1::BudgetPhase::Proposing),
                selected: payload.selected_projects,
            },
        }
    } else if event.is::<events::ProposalAnswered>() {
        let payload = event.decode::<events::ProposalAnswered>()?;
        // Followers of a proposal live in the same table as followers of a request (by id).
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "proposal_id", &payload.proposal_id)?,
            citizen: Some(parse_id(event, "author_id", &payload.author_id)?),
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::ProposalAnswered {
                title: payload.title,
                status: jamaa_proto::participation::v1::ProposalStatus::try_from(payload.status)
                    .unwrap_or(jamaa_proto::participation::v1::ProposalStatus::Evaluating),
                text: payload.text,
            },
        }
    } else if event.is::<events::ResultUpdated>() {
        let payload = event.decode::<events::ResultUpdated>()?;
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "subject_id", &payload.subject_id)?,
            citizen: Some(parse_id(
                event,
                "subject_author_id",
                &payload.subject_author_id,
            )?),
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::ResultUpdated {
                title: payload.title,
                progress: payload.progress,
                note: payload.note,
            },
        }
    } else if event.is::<events::ProposalFollowed>() {
        let payload = event.decode::<events::ProposalFollowed>()?;
        let request_id = parse_id(event, "proposal_id", &payload.proposal_id)?;
        let user_id = parse_id(event, "user_id", &payload.user_id)?;
        if payload.following {
            Effect::Follow {
                request_id,
                user_id,
            }
        } else {
            Effect::Unfollow {
                request_id,
                user_id,
            }
        }
    } else if event.is::<events::PetitionDecisionOverdue>() {
        let payload = event.decode::<events::PetitionDecisionOverdue>()?;
        Effect::NotifyRequestAudience {
            request_id: parse_id(event, "petition_id", &payload.petition_id)?,
            citizen: Some(parse_id(event, "author_id", &payload.author_id)?),
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::PetitionDecisionOverdue {
                title: payload.title,
            },
        }
    } else if event.is::<events::PetitionThresholdReached>() {
        let payload = event.decode::<events::PetitionThresholdReached>()?;
        Effect::Notify {
            recipient_id: parse_id(event, "author_id", &payload.author_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::PetitionThresholdReached {
                title: payload.title,
                signature_count: payload.signature_count,
                signature_threshold: payload.signature_threshold,
            },
            language: None,
            address: None,
        }
    } else if event.is::<events::CommuneCreated>() {
        let payload = event.decode::<events::CommuneCreated>()?;
        Effect::Commune {
            commune_id: parse_id(event, "commune_id", &payload.commune_id)?,
            code: payload.code,
            time_zone: None,
        }
    } else if event.is::<events::CommuneUpdated>() {
        let payload = event.decode::<events::CommuneUpdated>()?;
        Effect::Commune {
            commune_id: parse_id(event, "commune_id", &payload.commune_id)?,
            code: payload.code,
            time_zone: Some(payload.time_zone).filter(|zone| !zone.trim().is_empty()),
        }
    } else if event.is::<events::AccountErased>() {
        let payload = event.decode::<events::AccountErased>()?;
        Effect::Forget(parse_id(event, "user_id", &payload.user_id)?)
    } else if event.is::<events::VerificationCodeIssued>() {
        use events::verification_code_issued::Purpose;
        let payload = event.decode::<events::VerificationCodeIssued>()?;
        let minutes = payload
            .expire_time
            .map(|expiry| ((expiry.seconds - event.time.timestamp()) as f64 / 60.0).round() as i64)
            .filter(|minutes| *minutes > 0)
            .unwrap_or(10);
        let purpose = Purpose::try_from(payload.purpose).unwrap_or(Purpose::ContactVerification);
        let notice = match purpose {
            Purpose::PasswordReset => Notice::PasswordResetCode {
                code: payload.code,
                minutes,
            },
            _ => Notice::ContactVerificationCode {
                code: payload.code,
                minutes,
            },
        };
        // The code goes to the address it proves, or (a reset) the one the person asked with:
        // a phone number by SMS, an e-mail address by e-mail.
        let address = if !payload.phone_number.is_empty() {
            Some((SMS, payload.phone_number))
        } else {
            Some((EMAIL, payload.email)).filter(|(_, email)| !email.is_empty())
        };
        Effect::Notify {
            recipient_id: parse_id(event, "user_id", &payload.user_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice,
            language: Language::try_from(payload.preferred_language)
                .ok()
                .filter(|language| *language != Language::Unspecified),
            address,
        }
    } else if event.is::<events::SignUpAttempted>() {
        let payload = event.decode::<events::SignUpAttempted>()?;
        Effect::Notify {
            recipient_id: parse_id(event, "user_id", &payload.user_id)?,
            commune_id: parse_optional_id(event, "commune_id", &payload.commune_id)?,
            notice: Notice::SignUpAttempted,
            language: Language::try_from(payload.preferred_language)
                .ok()
                .filter(|language| *language != Language::Unspecified),
            address: Some((EMAIL, payload.email)).filter(|(_, email)| !email.is_empty()),
        }
    } else if event.is::<events::StaffInvited>() {
        let payload = event.decode::<events::StaffInvited>()?;
        let days = payload
            .expire_time
            .map(|expiry| {
                ((expiry.seconds - event.time.timestamp()) as f64 / 86_400.0).round() as i64
            })
            .filter(|days| *days > 0)
            .unwrap_or(7);
        Effect::Email {
            address: payload.email,
            notice: Notice::StaffInvitation {
                display_name: payload.display_name,
                token: payload.token,
                days,
            },
            language: Language::try_from(payload.preferred_language).unwrap_or(Language::Ar),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(effect))
}

fn parse_id(event: &CloudEvent, field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| {
        HandlerError(format!(
            "event {} ({}) has a malformed {field}: {value:?}",
            event.id, event.event_type
        ))
    })
}

/// An id that may be missing (empty) but not malformed.
fn parse_optional_id(
    event: &CloudEvent,
    field: &str,
    value: &str,
) -> Result<Option<Uuid>, HandlerError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse_id(event, field, value).map(Some)
    }
}

/// Inserts or updates a recipient's commune and language.
async fn upsert_recipient(
    txn: &DatabaseTransaction,
    row: recipient::Model,
) -> Result<(), HandlerError> {
    let row = recipient::ActiveModel {
        user_id: Set(row.user_id),
        commune_id: Set(row.commune_id),
        language: Set(row.language),
        resident: Set(row.resident),
    };
    recipient::Entity::insert(row)
        .on_conflict(
            OnConflict::column(recipient::Column::UserId)
                .update_columns([
                    recipient::Column::CommuneId,
                    recipient::Column::Language,
                    recipient::Column::Resident,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// The time zone of a commune whose profile never named one (identity's default).
pub const DEFAULT_TIME_ZONE: &str = "Africa/Casablanca";

impl NotificationHandler {
    /// Writes `notice` to `people` (see [`fanout`]), with the commune's wording of its kind.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        txn: &DatabaseTransaction,
        event: &CloudEvent,
        people: &[Uuid],
        commune_id: Option<Uuid>,
        notice: &Notice,
        language: Option<Language>,
        address: Option<(&'static str, String)>,
    ) -> Result<(), HandlerError> {
        if people.is_empty() {
            return Ok(());
        }
        let kind = notice.kind();
        let custom = match commune_id {
            Some(commune_id) => crate::template_overrides::of_kind(txn, commune_id, kind).await?,
            None => Vec::new(),
        };
        let message = fanout::Message {
            event_id: event.id,
            event_type: &event.event_type,
            subject: &event.subject,
            commune_id,
            route: routing::route(kind),
            content: fanout::Content::Notice { notice, custom },
            channels: &self.channels,
            language,
            address,
        };
        fanout::write(txn, &message, people).await?;
        Ok(())
    }
}

/// One page of a commune's known residents (by user id, after `after`).
pub async fn residents_page(
    txn: &DatabaseTransaction,
    commune_id: Uuid,
    after: Option<Uuid>,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = recipient::Entity::find()
        .select_only()
        .column(recipient::Column::UserId)
        .filter(recipient::Column::CommuneId.eq(commune_id))
        .filter(recipient::Column::Resident.eq(true));
    if let Some(after) = after {
        query = query.filter(recipient::Column::UserId.gt(after));
    }
    query
        .order_by_asc(recipient::Column::UserId)
        .limit(fanout::BATCH as u64)
        .into_tuple::<Uuid>()
        .all(txn)
        .await
}

/// Queues an e-mail of `rendered` to `address`, someone without an account yet (an invitee).
async fn queue_email(
    txn: &DatabaseTransaction,
    event: &CloudEvent,
    address: String,
    rendered: &templates::Rendered,
) -> Result<(), HandlerError> {
    let now = Utc::now();
    let route = routing::route(Kind::StaffInvitation);
    fanout::queue_deliveries(
        txn,
        vec![delivery::ActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(event.id),
            channel: Set(EMAIL.into()),
            recipient_id: Set(None),
            address: Set(address),
            subject: Set(rendered.title.clone()),
            body: Set(rendered.body.clone()),
            status: Set("queued".into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            critical: Set(route.critical),
            topic: Set(Some(route.topic.code().to_string())),
            language: Set(Some(rendered.language.code().to_string())),
            event_type: Set(Some(event.event_type.clone())),
            commune_id: Set(None),
            provider_message_id: Set(None),
            delivered_at: Set(None),
            sent_to: Set(None),
        }],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};

    use crate::test_support::TempDatabase;

    const SOURCE: &str = "jamaa/test";

    fn registered(user_id: Uuid, commune_id: Uuid, language: Language) -> CloudEvent {
        CloudEvent::new(
            SOURCE,
            format!("users/{user_id}"),
            &events::CitizenRegistered {
                user_id: user_id.to_string(),
                commune_id: commune_id.to_string(),
                preferred_language: language as i32,
                gender: 0,
            },
        )
    }

    fn status_changed(citizen_id: Uuid, commune_id: Uuid) -> CloudEvent {
        let request_id = Uuid::now_v7();
        CloudEvent::new(
            SOURCE,
            format!("requests/{request_id}"),
            &events::RequestStatusChanged {
                request_id: request_id.to_string(),
                commune_id: commune_id.to_string(),
                citizen_id: citizen_id.to_string(),
                tracking_code: "CAS-2025-000042".into(),
                service_code: "birth-certificate".into(),
                old_status: RequestStatus::Received as i32,
                new_status: RequestStatus::InProgress as i32,
                public_note: String::new(),
                changed_by: Uuid::now_v7().to_string(),
                change_time: None,
            },
        )
    }

    async fn notifications_of(
        db: &DatabaseConnection,
        recipient_id: Uuid,
    ) -> Vec<notification::Model> {
        notification::Entity::find()
            .filter(notification::Column::RecipientId.eq(recipient_id))
            .all(db)
            .await
            .expect("notifications")
    }

    #[tokio::test]
    async fn a_redelivered_event_writes_one_notification_in_the_recipients_language() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![EMAIL, SMS]);
        let (citizen, commune) = (Uuid::now_v7(), Uuid::now_v7());
        handler
            .handle(&registered(citizen, commune, Language::Fr))
            .await
            .expect("registered");

        let event = status_changed(citizen, commune);
        handler.handle(&event).await.expect("first delivery");
        handler.handle(&event).await.expect("second delivery");

        let rows = notifications_of(&temp.db, citizen).await;
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.language, "fr");
        assert_eq!(row.event_id, event.id);
        assert_eq!(row.subject, event.subject);
        assert_eq!(row.commune_id, Some(commune));
        assert!(row.body.contains("CAS-2025-000042"), "{}", row.body);
        assert!(row.body.contains("en cours de traitement"), "{}", row.body);
        assert!(row.read_at.is_none());
    }

    #[tokio::test]
    async fn an_unknown_recipient_is_written_to_in_arabic() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![EMAIL, SMS]);
        let citizen = Uuid::now_v7();
        handler
            .handle(&status_changed(citizen, Uuid::now_v7()))
            .await
            .expect("handled");
        let rows = notifications_of(&temp.db, citizen).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].language, "ar");
        assert!(rows[0].body.contains("قيد المعالجة"));
    }

    #[tokio::test]
    async fn registration_is_remembered_once_and_writes_no_notification() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![EMAIL, SMS]);
        let (citizen, commune) = (Uuid::now_v7(), Uuid::now_v7());
        let event = registered(citizen, commune, Language::En);
        handler.handle(&event).await.expect("first");
        handler.handle(&event).await.expect("again");
        let row = recipient::Entity::find_by_id(citizen)
            .one(&temp.db)
            .await
            .expect("query")
            .expect("recipient");
        assert_eq!(row.language, "en");
        assert_eq!(row.commune_id, commune);
        let count = notification::Entity::find()
            .count(&temp.db)
            .await
            .expect("count");
        assert_eq!(count, 0);
    }

    #[tokio::test]
    async fn unknown_types_are_ignored_and_bad_payloads_fail() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![EMAIL, SMS]);
        let other = CloudEvent::new(
            SOURCE,
            "users/x",
            &events::AssuranceLevelRaised {
                user_id: Uuid::now_v7().to_string(),
                commune_id: Uuid::now_v7().to_string(),
                assurance_level: "verified_in_person".into(),
                raise_time: None,
            },
        );
        handler.handle(&other).await.expect("ignored");

        let mut broken = status_changed(Uuid::now_v7(), Uuid::now_v7());
        broken.data = vec![0xff, 0xff, 0xff];
        assert!(handler.handle(&broken).await.is_err());

        let bad_id = CloudEvent::new(
            SOURCE,
            "users/x",
            &events::CitizenRegistered {
                user_id: "not-a-uuid".into(),
                commune_id: Uuid::now_v7().to_string(),
                preferred_language: Language::Ar as i32,
                gender: 0,
            },
        );
        assert!(handler.handle(&bad_id).await.is_err());
        let count = notification::Entity::find()
            .count(&temp.db)
            .await
            .expect("count");
        assert_eq!(count, 0);
    }

    /// Every event type the other services emit that carries a message: who gets it, in which
    /// language, on which channels (the defaults: e-mail for requests and participation, e-mail
    /// and SMS for security; a code only to the address it proves) — and nothing twice when the
    /// event comes again.
    #[tokio::test]
    async fn every_event_type_reaches_the_right_people_once() {
        use jamaa_proto::participation::v1::{BudgetPhase, PetitionStatus, ProposalStatus};
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![EMAIL, SMS]);
        let commune = Uuid::now_v7();
        let (amina, yassine) = (Uuid::now_v7(), Uuid::now_v7());
        let (agent, head, department) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (request, petition, proposal) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let id = |id: Uuid| id.to_string();
        // Who is who, as their own events told the service.
        let setup: Vec<CloudEvent> = vec![
            registered(amina, commune, Language::Fr),
            registered(yassine, commune, Language::En),
            CloudEvent::new(
                SOURCE,
                "users/x",
                &events::RequestFollowed {
                    request_id: id(request),
                    commune_id: id(commune),
                    user_id: id(yassine),
                    tracking_code: "CAS-1".into(),
                },
            ),
            CloudEvent::new(
                SOURCE,
                "users/x",
                &events::StaffRoleChanged {
                    user_id: id(head),
                    commune_id: id(commune),
                    role: "department_head".into(),
                    department_id: id(department),
                    granted: true,
                    change_time: None,
                },
            ),
            CloudEvent::new(
                SOURCE,
                "petitions/x",
                &events::PetitionSigned {
                    petition_id: id(petition),
                    commune_id: id(commune),
                    citizen_id: id(yassine),
                },
            ),
            CloudEvent::new(
                SOURCE,
                "proposals/x",
                &events::ProposalFollowed {
                    proposal_id: id(proposal),
                    user_id: id(yassine),
                    following: true,
                },
            ),
        ];
        for event in &setup {
            handler.handle(event).await.expect("setup");
            handler.handle(event).await.expect("setup again");
        }
        let inbox = notification::Entity::find()
            .count(&temp.db)
            .await
            .expect("count");
        assert_eq!(inbox, 0, "who is who writes no message");

        // (event, who gets it with the language, the deliveries (channel, address)).
        let both = [(amina, "fr"), (yassine, "en")];
        type Case<'a> = (CloudEvent, Vec<(Uuid, &'a str)>, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                CloudEvent::new(
                    SOURCE,
                    "requests/r",
                    &events::RequestSubmitted {
                        request_id: id(request),
                        commune_id: id(commune),
                        citizen_id: id(amina),
                        tracking_code: "CAS-1".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "requests/r",
                    &events::RequestStatusChanged {
                        request_id: id(request),
                        commune_id: id(commune),
                        citizen_id: id(amina),
                        tracking_code: "CAS-1".into(),
                        new_status: RequestStatus::InProgress as i32,
                        ..Default::default()
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "requests/r",
                    &events::RequestDeadlineExtended {
                        request_id: id(request),
                        commune_id: id(commune),
                        citizen_id: id(amina),
                        tracking_code: "CAS-1".into(),
                        new_due_date: "2027-01-31".into(),
                        reason: "another body is consulted".into(),
                        ..Default::default()
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "requests/r",
                    &events::RequestAssigned {
                        request_id: id(request),
                        commune_id: id(commune),
                        tracking_code: "CAS-1".into(),
                        assignee_id: id(agent),
                        ..Default::default()
                    },
                ),
                vec![(agent, "ar")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "requests/r",
                    &events::DeadlineApproaching {
                        request_id: id(request),
                        commune_id: id(commune),
                        tracking_code: "CAS-1".into(),
                        assignee_id: id(agent),
                        due_date: "2027-01-31".into(),
                        working_days_left: 2,
                        ..Default::default()
                    },
                ),
                vec![(agent, "ar")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "requests/r",
                    &events::DeadlineBreached {
                        request_id: id(request),
                        commune_id: id(commune),
                        tracking_code: "CAS-1".into(),
                        assignee_id: id(agent),
                        department_id: id(department),
                        due_date: "2027-01-31".into(),
                        ..Default::default()
                    },
                ),
                vec![(agent, "ar"), (head, "ar")],
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "appointments/a",
                    &events::AppointmentBooked {
                        appointment_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        citizen_id: id(amina),
                        local_start: "2027-01-04 09:30".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "appointments/a",
                    &events::AppointmentReminder {
                        appointment_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        citizen_id: id(amina),
                        local_start: "2027-01-04 09:30".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "petitions/p",
                    &events::PetitionThresholdReached {
                        petition_id: id(petition),
                        commune_id: id(commune),
                        author_id: id(amina),
                        title: "Plus d'arbres".into(),
                        signature_count: 100,
                        signature_threshold: 100,
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "petitions/p",
                    &events::PetitionSubmitted {
                        petition_id: id(petition),
                        commune_id: id(commune),
                        author_id: id(amina),
                        title: "Plus d'arbres".into(),
                        ..Default::default()
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "petitions/p",
                    &events::PetitionDecided {
                        petition_id: id(petition),
                        commune_id: id(commune),
                        author_id: id(amina),
                        title: "Plus d'arbres".into(),
                        outcome: PetitionStatus::Answered as i32,
                        text: "Adopted.".into(),
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "petitions/p",
                    &events::PetitionDecisionOverdue {
                        petition_id: id(petition),
                        commune_id: id(commune),
                        author_id: id(amina),
                        title: "Plus d'arbres".into(),
                        ..Default::default()
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "proposals/p",
                    &events::ProposalAnswered {
                        proposal_id: id(proposal),
                        commune_id: id(commune),
                        author_id: id(amina),
                        title: "Un jardin".into(),
                        status: ProposalStatus::Accepted as i32,
                        text: "Oui.".into(),
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "results/r",
                    &events::ResultUpdated {
                        result_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        subject_id: id(proposal),
                        subject_author_id: id(amina),
                        title: "Un jardin".into(),
                        progress: 40,
                        ..Default::default()
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "consultations/c",
                    &events::ConsultationOpened {
                        consultation_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        title: "Le marché".into(),
                        close_time: None,
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "consultations/c",
                    &events::ConsultationClosed {
                        consultation_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        title: "Le marché".into(),
                        created_by: id(agent),
                        response_count: 12,
                    },
                ),
                vec![(agent, "ar")],
                vec![("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "budgets/b",
                    &events::BudgetPhaseChanged {
                        budget_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        title: "Budget 2027".into(),
                        phase: BudgetPhase::Voting as i32,
                        ..Default::default()
                    },
                ),
                both.to_vec(),
                vec![("email", ""), ("email", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "users/a",
                    &events::VerificationCodeIssued {
                        user_id: id(amina),
                        commune_id: id(commune),
                        purpose: events::verification_code_issued::Purpose::ContactVerification
                            as i32,
                        code: "123456".into(),
                        email: "amina@example.ma".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", "amina@example.ma")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "users/a",
                    &events::VerificationCodeIssued {
                        user_id: id(amina),
                        commune_id: id(commune),
                        purpose: events::verification_code_issued::Purpose::PhoneVerification
                            as i32,
                        code: "654321".into(),
                        phone_number: "+212612345678".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("sms", "+212612345678")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "users/a",
                    &events::VerificationCodeIssued {
                        user_id: id(amina),
                        commune_id: id(commune),
                        purpose: events::verification_code_issued::Purpose::PasswordReset as i32,
                        code: "111222".into(),
                        phone_number: "+212612345678".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("sms", "+212612345678")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "users/a",
                    &events::SignUpAttempted {
                        user_id: id(amina),
                        commune_id: id(commune),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", ""), ("sms", "")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "users/a",
                    &events::SignUpAttempted {
                        user_id: id(amina),
                        commune_id: id(commune),
                        email: "amina@example.ma".into(),
                        ..Default::default()
                    },
                ),
                vec![(amina, "fr")],
                vec![("email", "amina@example.ma")],
            ),
            (
                CloudEvent::new(
                    SOURCE,
                    "invitations/i",
                    &events::StaffInvited {
                        invitation_id: id(Uuid::now_v7()),
                        commune_id: id(commune),
                        email: "hind@example.ma".into(),
                        display_name: "Hind".into(),
                        preferred_language: Language::En as i32,
                        token: "tok".into(),
                        expire_time: None,
                    },
                ),
                vec![],
                vec![("email", "hind@example.ma")],
            ),
        ];
        let mut handled = std::collections::HashSet::new();
        for (event, people, channels) in cases {
            handler.handle(&event).await.expect("handled");
            handler.handle(&event).await.expect("handled again");
            handled.insert(event.event_type.clone());
            let mut got: Vec<(Uuid, String)> = notification::Entity::find()
                .filter(notification::Column::EventId.eq(event.id))
                .all(&temp.db)
                .await
                .expect("inbox")
                .into_iter()
                .map(|row| {
                    assert!(
                        !row.title.trim().is_empty() && !row.body.contains("{{"),
                        "{row:?}"
                    );
                    (row.recipient_id, row.language)
                })
                .collect();
            got.sort();
            let mut want: Vec<(Uuid, String)> = people
                .iter()
                .map(|(who, language)| (*who, language.to_string()))
                .collect();
            want.sort();
            assert_eq!(got, want, "{}", event.event_type);
            let mut sent: Vec<(String, String)> = delivery::Entity::find()
                .filter(delivery::Column::EventId.eq(event.id))
                .all(&temp.db)
                .await
                .expect("deliveries")
                .into_iter()
                .map(|row| (row.channel, row.address))
                .collect();
            sent.sort();
            let mut expected: Vec<(String, String)> = channels
                .iter()
                .map(|(channel, address)| (channel.to_string(), address.to_string()))
                .collect();
            expected.sort();
            assert_eq!(sent, expected, "{}", event.event_type);
        }
        // Every type this service consumes is covered here or by the setup above.
        for event_type in handled_event_types() {
            let state_only = [
                "CitizenRegistered",
                "AccountErased",
                "StaffRoleChanged",
                "RequestFollowed",
                "RequestUnfollowed",
                "ProposalFollowed",
                "PetitionSigned",
                "CommuneCreated",
                "CommuneUpdated",
            ];
            assert!(
                handled.contains(&event_type)
                    || state_only.iter().any(|name| event_type.ends_with(name)),
                "{event_type} has no case"
            );
        }
    }

    #[tokio::test]
    async fn a_digest_gathers_the_days_held_emails_into_one() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![EMAIL]);
        let (amina, commune) = (Uuid::now_v7(), Uuid::now_v7());
        handler
            .handle(&registered(amina, commune, Language::Fr))
            .await
            .expect("registered");
        let mut preferences = crate::preferences::Preferences::default();
        preferences.topics.insert(
            routing::Topic::Participation,
            crate::preferences::TopicChoice {
                channels: vec![EMAIL.into()],
                daily_digest: true,
            },
        );
        crate::preferences::save(&temp.db, amina, &preferences)
            .await
            .expect("saved");
        for title in ["Le marché", "La gare"] {
            let opened = CloudEvent::new(
                SOURCE,
                "consultations/c",
                &events::ConsultationOpened {
                    consultation_id: Uuid::now_v7().to_string(),
                    commune_id: commune.to_string(),
                    title: title.into(),
                    close_time: None,
                },
            );
            handler.handle(&opened).await.expect("opened");
        }
        // A request's message is never held.
        let submitted = CloudEvent::new(
            SOURCE,
            "requests/r",
            &events::RequestSubmitted {
                request_id: Uuid::now_v7().to_string(),
                commune_id: commune.to_string(),
                citizen_id: amina.to_string(),
                tracking_code: "CAS-9".into(),
                ..Default::default()
            },
        );
        handler.handle(&submitted).await.expect("submitted");
        let statuses = |db: DatabaseConnection| async move {
            let mut rows: Vec<String> = delivery::Entity::find()
                .all(&db)
                .await
                .expect("rows")
                .into_iter()
                .map(|row| row.status)
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(
            statuses(temp.db.clone()).await,
            ["digest", "digest", "queued"]
        );

        let digest_time = chrono::NaiveTime::from_hms_opt(18, 0, 0).expect("time");
        // Before today's digest time has passed for them, nothing goes.
        let now = Utc::now();
        let sent = crate::digest::send_due(&temp.db, digest_time, now - chrono::Duration::days(2))
            .await
            .expect("a pass");
        assert_eq!(sent, 0);
        let tomorrow = now + chrono::Duration::days(1);
        let sent = crate::digest::send_due(&temp.db, digest_time, tomorrow)
            .await
            .expect("a pass");
        assert_eq!(sent, 1);
        assert_eq!(
            statuses(temp.db.clone()).await,
            ["digested", "digested", "queued", "queued"]
        );
        let digest = delivery::Entity::find()
            .filter(delivery::Column::EventType.eq("jamaa.notification.v1.DailyDigest"))
            .one(&temp.db)
            .await
            .expect("query")
            .expect("the digest");
        assert_eq!(digest.recipient_id, Some(amina));
        assert!(digest.subject.contains("2 messages"), "{}", digest.subject);
        assert!(
            digest.body.contains("Le marché") && digest.body.contains("La gare"),
            "{}",
            digest.body
        );
        // Once.
        let again = crate::digest::send_due(&temp.db, digest_time, tomorrow)
            .await
            .expect("a pass");
        assert_eq!(again, 0);
    }
}
