//! The gRPC face of notification: parse requests, check the caller, call the domain modules,
//! map replies. Who may do what:
//!
//! | RPC | Who |
//! |---|---|
//! | inbox, preferences | any signed-in person, on their own only |
//! | ListDeliveries | the person; staff of the person's commune (and platform admins) |
//! | RecordSmsReceipt | the SMS provider, with the receipt token |
//! | templates | commune administrators, for their commune |
//! | Create/CancelAnnouncement | commune administrators and council secretaries |
//! | Get/ListAnnouncements | anyone for published ones; the commune's staff for the others |

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jamaa_auth::{Principal, Role, principal};
use jamaa_proto::notification::v1 as pb;
use jamaa_proto::notification::v1::notification_service_server::NotificationService;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_server::PageRequest;
use jamaa_server::status::{self, FieldViolations, invalid_argument};
use jamaa_settings::{ExposeSecret, SecretString};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::announcements::{self, Audience, NewAnnouncement};
use crate::delivery::{self, Receipt};
use crate::notifications::Notifications;
use crate::preferences::{self, QuietHours, TopicChoice};
use crate::routing::{self, EMAIL, SMS, Topic};
use crate::sms_length;
use crate::storage::{announcement, commune, delivery as delivery_row, notification, recipient};
use crate::template_overrides;
use crate::templates::{self, CustomText, Kind};

/// Who may publish and cancel announcements.
const ANNOUNCERS: &[Role] = &[Role::CommuneAdmin, Role::CouncilSecretary];

pub struct NotificationGrpc {
    db: DatabaseConnection,
    notifications: Arc<Notifications>,
    receipt_token: SecretString,
}

impl NotificationGrpc {
    pub fn new(
        db: DatabaseConnection,
        notifications: Arc<Notifications>,
        receipt_token: SecretString,
    ) -> Self {
        NotificationGrpc {
            db,
            notifications,
            receipt_token,
        }
    }
}

fn db_error(error: sea_orm::DbErr) -> Status {
    status::from_db(error)
}

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let inbox = self
            .notifications
            .list(user_id, page, request.unread_only)
            .await?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: inbox
                .notifications
                .iter()
                .map(notification_to_proto)
                .collect(),
            next_page_token: inbox.next_page_token,
            unread_count: inbox.unread_count,
        }))
    }

    async fn mark_notification_read(
        &self,
        request: Request<pb::MarkNotificationReadRequest>,
    ) -> Result<Response<pb::MarkNotificationReadResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let id = parse_id("id", &request.get_ref().id, "a notification id")?;
        let notification = self.notifications.mark_read(user_id, id).await?;
        Ok(Response::new(pb::MarkNotificationReadResponse {
            notification: Some(notification_to_proto(&notification)),
        }))
    }

    async fn mark_all_notifications_read(
        &self,
        request: Request<pb::MarkAllNotificationsReadRequest>,
    ) -> Result<Response<pb::MarkAllNotificationsReadResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        let marked = self.notifications.mark_all_read(user_id).await?;
        Ok(Response::new(pb::MarkAllNotificationsReadResponse {
            marked_count: i64::try_from(marked).unwrap_or(i64::MAX),
        }))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::GetNotificationPreferencesResponse>, Status> {
        let user_id = principal(&request)?.user_id;
        Ok(Response::new(pb::GetNotificationPreferencesResponse {
            preferences: Some(self.preferences_of(user_id).await?),
        }))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<pb::UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<pb::UpdateNotificationPreferencesResponse>, Status> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let paths: Vec<String> = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            return Err(invalid_argument(
                "update_mask",
                "must name the fields to change: topics, language, quiet_hours, areas, announcement_topics",
            ));
        }
        let new = request.preferences.unwrap_or_default();
        let txn = self.db.begin().await.map_err(db_error)?;
        let mut current = preferences::load(&txn, caller.user_id)
            .await
            .map_err(db_error)?;
        let mut violations = FieldViolations::new();
        let mut language: Option<Language> = None;
        let mut follows: Vec<(&str, Vec<String>)> = Vec::new();
        for path in &paths {
            match path.as_str() {
                "topics" => {
                    for (index, choice) in new.topics.iter().enumerate() {
                        let field = format!("preferences.topics[{index}]");
                        let Some(topic) = pb::Topic::try_from(choice.topic)
                            .ok()
                            .and_then(Topic::from_proto)
                        else {
                            violations.add(format!("{field}.topic"), "must name a topic");
                            continue;
                        };
                        let mut channels = Vec::new();
                        for channel in &choice.channels {
                            match pb::Channel::try_from(*channel) {
                                Ok(pb::Channel::Inbox) => {}
                                Ok(pb::Channel::Email) => channels.push(EMAIL.to_string()),
                                Ok(pb::Channel::Sms) => channels.push(SMS.to_string()),
                                _ => violations.add(
                                    format!("{field}.channels"),
                                    "holds a value that is no channel",
                                ),
                            }
                        }
                        violations.check(
                            &format!("{field}.channels"),
                            preferences::check_channels(&channels),
                        );
                        if choice.daily_digest && !topic.digestible() {
                            violations.add(
                                format!("{field}.daily_digest"),
                                "only participation and announcements can wait for the digest",
                            );
                        }
                        current.topics.insert(
                            topic,
                            TopicChoice {
                                channels,
                                daily_digest: choice.daily_digest,
                            },
                        );
                    }
                }
                "language" => match Language::try_from(new.language) {
                    Ok(Language::Unspecified) | Err(_) => {
                        violations.add("preferences.language", "must name a language")
                    }
                    Ok(chosen) => language = Some(chosen),
                },
                "quiet_hours" | "quiet_hours_start" | "quiet_hours_end" => {
                    if let Some(quiet) = violations.check(
                        "preferences.quiet_hours_start",
                        QuietHours::parse(&new.quiet_hours_start, &new.quiet_hours_end),
                    ) {
                        current.quiet_hours = quiet;
                    }
                }
                "areas" | "announcement_topics" => {
                    let field = format!("preferences.{path}");
                    let values: Vec<String> = if path == "areas" {
                        new.areas.clone()
                    } else {
                        new.announcement_topics.clone()
                    };
                    if values.len() > 20 {
                        violations.add(field.clone(), "at most 20");
                    }
                    let mut parsed = Vec::new();
                    for value in &values {
                        if let Some(code) = violations.check(&field, preferences::parse_code(value))
                            && !parsed.contains(&code)
                        {
                            parsed.push(code);
                        }
                    }
                    if caller.commune_id.is_none() && !values.is_empty() {
                        violations.add(
                            field,
                            "only people of a commune follow its areas and topics",
                        );
                    }
                    follows.push((if path == "areas" { "area" } else { "topic" }, parsed));
                }
                other => violations.add("update_mask", format!("{other} cannot be changed")),
            }
        }
        violations.into_result()?;
        preferences::save(&txn, caller.user_id, &current)
            .await
            .map_err(db_error)?;
        if let Some(commune_id) = caller.commune_id {
            for (kind, values) in &follows {
                preferences::follow(&txn, commune_id, caller.user_id, kind, values)
                    .await
                    .map_err(db_error)?;
            }
        }
        if let Some(language) = language {
            set_language(&txn, &caller, language)
                .await
                .map_err(db_error)?;
        }
        txn.commit().await.map_err(db_error)?;
        Ok(Response::new(pb::UpdateNotificationPreferencesResponse {
            preferences: Some(self.preferences_of(caller.user_id).await?),
        }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let person = if request.user_id.trim().is_empty() {
            caller.user_id
        } else {
            let person = parse_id("user_id", &request.user_id, "a person's id")?;
            if person != caller.user_id && !caller.is_platform_admin() {
                let of = recipient::Entity::find_by_id(person)
                    .one(&self.db)
                    .await
                    .map_err(db_error)?
                    .map(|row| row.commune_id);
                let staff_of_theirs = of.is_some_and(|commune| caller.is_staff_of(commune));
                if !staff_of_theirs {
                    // Whether the person exists elsewhere is not the caller's business.
                    return Err(status::not_found(format!("person {person}")));
                }
            }
            person
        };
        let mut query =
            delivery_row::Entity::find().filter(delivery_row::Column::RecipientId.eq(person));
        if let Some(before) = page.before {
            query = query.filter(delivery_row::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(delivery_row::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: rows.iter().map(delivery_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn record_sms_receipt(
        &self,
        request: Request<pb::RecordSmsReceiptRequest>,
    ) -> Result<Response<pb::RecordSmsReceiptResponse>, Status> {
        let request = request.into_inner();
        let expected = self.receipt_token.expose_secret().as_bytes();
        if expected.is_empty() || !constant_time_eq(expected, request.receipt_token.as_bytes()) {
            return Err(status::permission_denied(
                "the receipt token is not the one this platform gave its SMS provider",
            ));
        }
        let id = request.provider_message_id.trim();
        if id.is_empty() {
            return Err(invalid_argument("provider_message_id", "is required"));
        }
        let receipt = match request.status.trim().to_ascii_lowercase().as_str() {
            "delivered" | "delivrd" => Receipt::Delivered,
            "failed" | "undelivered" | "undeliv" | "rejected" | "expired" => Receipt::Failed,
            _ => {
                return Err(invalid_argument(
                    "status",
                    "must be delivered, failed, undelivered, rejected or expired",
                ));
            }
        };
        let status = delivery::record_sms_receipt(&self.db, id, receipt, &request.error)
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found(format!("SMS {id}")))?;
        Ok(Response::new(pb::RecordSmsReceiptResponse {
            status: status_to_proto(&status) as i32,
        }))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let only = Language::try_from(request.get_ref().language)
            .ok()
            .filter(|language| *language != Language::Unspecified);
        let overrides = template_overrides::all(&self.db, commune_id)
            .await
            .map_err(db_error)?;
        let mut templates = Vec::new();
        for kind in Kind::ALL {
            for language in [Language::Ar, Language::Fr, Language::En, Language::Tzm] {
                if only.is_some_and(|only| only != language) {
                    continue;
                }
                let custom = overrides
                    .iter()
                    .find(|row| row.kind == kind.code() && row.language == language.code());
                let (title, body, overridden) = match custom {
                    Some(row) => (row.title.clone(), row.body.clone(), true),
                    None => match templates::default_text(kind, language) {
                        Some((title, body)) => (title.to_string(), body.to_string(), false),
                        // No platform text in this language: readers get the fallback's.
                        None => continue,
                    },
                };
                templates.push(template_to_proto(kind, language, title, body, overridden));
            }
        }
        Ok(Response::new(pb::ListTemplatesResponse { templates }))
    }

    async fn update_template(
        &self,
        request: Request<pb::UpdateTemplateRequest>,
    ) -> Result<Response<pb::UpdateTemplateResponse>, Status> {
        let caller = principal(&request)?.clone();
        let commune_id = caller.require_staff(&[Role::CommuneAdmin])?;
        let template = request.into_inner().template.unwrap_or_default();
        let (kind, language) = parse_kind_and_language(
            "template.kind",
            &template.kind,
            "template.language",
            template.language,
        )?;
        let mut violations = FieldViolations::new();
        for (field, value, limit) in [
            ("template.title", &template.title, 200),
            ("template.body", &template.body, 2000),
        ] {
            if value.trim().is_empty() {
                violations.add(field, "is required");
            } else if value.chars().count() > limit {
                violations.add(field, format!("must be at most {limit} characters"));
            }
        }
        violations.into_result()?;
        if let Err(error) = templates::render_draft(kind, language, &template.title, &template.body)
        {
            return Err(invalid_argument(
                "template.body",
                format!("does not render with the kind's placeholders: {error}"),
            ));
        }
        let text = CustomText {
            language,
            title: template.title.trim().to_string(),
            body: template.body.trim().to_string(),
        };
        template_overrides::save(&self.db, commune_id, kind, &text, caller.user_id)
            .await
            .map_err(db_error)?;
        Ok(Response::new(pb::UpdateTemplateResponse {
            template: Some(template_to_proto(
                kind, language, text.title, text.body, true,
            )),
        }))
    }

    async fn delete_template_override(
        &self,
        request: Request<pb::DeleteTemplateOverrideRequest>,
    ) -> Result<Response<pb::DeleteTemplateOverrideResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let request = request.into_inner();
        let (kind, language) =
            parse_kind_and_language("kind", &request.kind, "language", request.language)?;
        if !template_overrides::delete(&self.db, commune_id, kind, language)
            .await
            .map_err(db_error)?
        {
            return Err(status::not_found(format!(
                "an override of {} in {}",
                kind.code(),
                language.code()
            )));
        }
        let template = templates::default_text(kind, language).map(|(title, body)| {
            template_to_proto(kind, language, title.to_string(), body.to_string(), false)
        });
        Ok(Response::new(pb::DeleteTemplateOverrideResponse {
            template,
        }))
    }

    async fn preview_template(
        &self,
        request: Request<pb::PreviewTemplateRequest>,
    ) -> Result<Response<pb::PreviewTemplateResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let request = request.into_inner();
        let (kind, language) =
            parse_kind_and_language("kind", &request.kind, "language", request.language)?;
        let rendered = if request.title.trim().is_empty() && request.body.trim().is_empty() {
            let custom = template_overrides::of_kind(&self.db, commune_id, kind)
                .await
                .map_err(db_error)?;
            templates::render_for(&templates::sample(kind), language, &custom)
                .map_err(status::internal)?
        } else {
            let (title, body) = match templates::default_text(kind, language) {
                _ if !request.title.trim().is_empty() && !request.body.trim().is_empty() => {
                    (request.title.clone(), request.body.clone())
                }
                Some((title, body)) => (
                    Some(request.title.clone())
                        .filter(|t| !t.trim().is_empty())
                        .unwrap_or_else(|| title.to_string()),
                    Some(request.body.clone())
                        .filter(|b| !b.trim().is_empty())
                        .unwrap_or_else(|| body.to_string()),
                ),
                None => (request.title.clone(), request.body.clone()),
            };
            templates::render_draft(kind, language, &title, &body).map_err(|error| {
                invalid_argument(
                    "body",
                    format!("does not render with the kind's placeholders: {error}"),
                )
            })?
        };
        let email_html =
            crate::email_html::render(&rendered.title, &rendered.body, rendered.language)
                .map_err(status::internal)?;
        let sms_text = format!("{}\n{}", rendered.title, rendered.body);
        Ok(Response::new(pb::PreviewTemplateResponse {
            sms_length: Some(sms_length_to_proto(sms_length::measure(&sms_text))),
            title: rendered.title,
            body: rendered.body,
            email_html,
            sms_text,
            rendered_language: rendered.language as i32,
        }))
    }

    async fn create_announcement(
        &self,
        request: Request<pb::CreateAnnouncementRequest>,
    ) -> Result<Response<pb::CreateAnnouncementResponse>, Status> {
        let caller = principal(&request)?.clone();
        let commune_id = caller.require_staff(ANNOUNCERS)?;
        let request = request.into_inner();
        let new = request.announcement.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let title = new.title.unwrap_or_default();
        let body = new.body.unwrap_or_default();
        check_localized(&mut violations, "announcement.title", &title, 200);
        check_localized(&mut violations, "announcement.body", &body, 5000);
        for (language, has_title, has_body) in [
            (
                "ar",
                !title.ar.trim().is_empty(),
                !body.ar.trim().is_empty(),
            ),
            (
                "fr",
                !title.fr.trim().is_empty(),
                !body.fr.trim().is_empty(),
            ),
            (
                "en",
                !title.en.trim().is_empty(),
                !body.en.trim().is_empty(),
            ),
            (
                "tzm",
                !title.tzm.trim().is_empty(),
                !body.tzm.trim().is_empty(),
            ),
        ] {
            if has_title != has_body {
                violations.add(
                    format!("announcement.body.{language}"),
                    "the title and the text must be given in the same languages",
                );
            }
        }
        let audience = match pb::AudienceKind::try_from(new.audience_kind) {
            Ok(pb::AudienceKind::AllResidents) => Some(Audience::AllResidents),
            Ok(pb::AudienceKind::Area) => violations
                .check(
                    "announcement.audience_value",
                    preferences::parse_code(&new.audience_value),
                )
                .map(Audience::Area),
            Ok(pb::AudienceKind::Topic) => violations
                .check(
                    "announcement.audience_value",
                    preferences::parse_code(&new.audience_value),
                )
                .map(Audience::Topic),
            _ => {
                violations.add(
                    "announcement.audience_kind",
                    "must be AUDIENCE_KIND_ALL_RESIDENTS, _AREA or _TOPIC",
                );
                None
            }
        };
        let mut channels = Vec::new();
        for channel in &new.channels {
            match pb::Channel::try_from(*channel) {
                Ok(pb::Channel::Inbox) => {}
                Ok(pb::Channel::Email) if !channels.contains(&EMAIL) => channels.push(EMAIL),
                Ok(pb::Channel::Sms) if !channels.contains(&SMS) => channels.push(SMS),
                Ok(pb::Channel::Email | pb::Channel::Sms) => {}
                _ => violations.add("announcement.channels", "holds a value that is no channel"),
            }
        }
        let now = Utc::now();
        let publish_at = match new.publish_time {
            None => now,
            Some(at) => match DateTime::from_timestamp(at.seconds, at.nanos.max(0) as u32) {
                Some(at) if at > now + chrono::Duration::days(366) => {
                    violations.add("announcement.publish_time", "must be within a year");
                    now
                }
                Some(at) => at.max(now),
                None => {
                    violations.add("announcement.publish_time", "is not a time");
                    now
                }
            },
        };
        let request_id = if request.request_id.trim().is_empty() {
            None
        } else {
            violations.check(
                "request_id",
                Uuid::parse_str(request.request_id.trim())
                    .map_err(|_| "must be a UUID".to_string()),
            )
        };
        violations.into_result()?;
        let Some(audience) = audience else {
            return Err(invalid_argument(
                "announcement.audience_kind",
                "is required",
            ));
        };
        let saved = announcements::create(
            &self.db,
            NewAnnouncement {
                commune_id,
                title,
                body,
                audience,
                channels,
                publish_at,
                created_by: caller.user_id,
                request_id,
            },
        )
        .await
        .map_err(db_error)?;
        Ok(Response::new(pb::CreateAnnouncementResponse {
            announcement: Some(self.announcement_to_proto(&saved).await?),
        }))
    }

    async fn get_announcement(
        &self,
        request: Request<pb::GetAnnouncementRequest>,
    ) -> Result<Response<pb::GetAnnouncementResponse>, Status> {
        let caller = request.extensions().get::<Principal>().cloned();
        let id = parse_id("id", &request.get_ref().id, "an announcement id")?;
        let row = announcements::get(&self.db, id)
            .await
            .map_err(db_error)?
            .filter(|row| {
                row.state == "published"
                    || caller
                        .as_ref()
                        .is_some_and(|caller| caller.is_staff_of(row.commune_id))
            })
            .ok_or_else(|| status::not_found(format!("announcement {id}")))?;
        Ok(Response::new(pb::GetAnnouncementResponse {
            announcement: Some(self.announcement_to_proto(&row).await?),
        }))
    }

    async fn list_announcements(
        &self,
        request: Request<pb::ListAnnouncementsRequest>,
    ) -> Result<Response<pb::ListAnnouncementsResponse>, Status> {
        let caller = request.extensions().get::<Principal>().cloned();
        let request = request.into_inner();
        let code = request.commune_code.trim().to_uppercase();
        if code.is_empty() {
            return Err(invalid_argument("commune_code", "is required"));
        }
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let commune = commune::Entity::find()
            .filter(commune::Column::Code.eq(code.clone()))
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found(format!("commune {code}")))?;
        let staff = caller
            .as_ref()
            .is_some_and(|caller| caller.is_staff_of(commune.commune_id));
        let (rows, next_page_token) =
            announcements::list(&self.db, commune.commune_id, page, staff)
                .await
                .map_err(db_error)?;
        let mut announcements = Vec::with_capacity(rows.len());
        for row in &rows {
            announcements.push(self.announcement_to_proto(row).await?);
        }
        Ok(Response::new(pb::ListAnnouncementsResponse {
            announcements,
            next_page_token,
        }))
    }

    async fn cancel_announcement(
        &self,
        request: Request<pb::CancelAnnouncementRequest>,
    ) -> Result<Response<pb::CancelAnnouncementResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(ANNOUNCERS)?;
        let id = parse_id("id", &request.get_ref().id, "an announcement id")?;
        let existing = announcements::get(&self.db, id)
            .await
            .map_err(db_error)?
            .filter(|row| row.commune_id == commune_id)
            .ok_or_else(|| status::not_found(format!("announcement {id}")))?;
        if existing.state != "scheduled" {
            return Err(status::failed_precondition(
                "ANNOUNCEMENT_NOT_SCHEDULED",
                format!(
                    "announcement {id} is {}: only a scheduled announcement can be cancelled",
                    existing.state
                ),
            ));
        }
        let row = announcements::cancel(&self.db, id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found(format!("announcement {id}")))?;
        if row.state != "cancelled" {
            return Err(status::failed_precondition(
                "ANNOUNCEMENT_NOT_SCHEDULED",
                format!("announcement {id} was published before it could be cancelled"),
            ));
        }
        Ok(Response::new(pb::CancelAnnouncementResponse {
            announcement: Some(self.announcement_to_proto(&row).await?),
        }))
    }
}

impl NotificationGrpc {
    async fn preferences_of(&self, user_id: Uuid) -> Result<pb::NotificationPreferences, Status> {
        let stored = preferences::load(&self.db, user_id)
            .await
            .map_err(db_error)?;
        let language = recipient::Entity::find_by_id(user_id)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .and_then(|row| Language::from_code(&row.language))
            .unwrap_or(Language::Unspecified);
        let areas = preferences::followed(&self.db, user_id, "area")
            .await
            .map_err(db_error)?;
        let topics = preferences::followed(&self.db, user_id, "topic")
            .await
            .map_err(db_error)?;
        let by_topic: BTreeMap<_, _> = stored.topics.iter().collect();
        Ok(pb::NotificationPreferences {
            topics: by_topic
                .into_iter()
                .map(|(topic, choice)| pb::TopicPreference {
                    topic: topic.to_proto() as i32,
                    channels: choice
                        .channels
                        .iter()
                        .map(|channel| routing::channel_to_proto(channel) as i32)
                        .collect(),
                    daily_digest: choice.daily_digest,
                })
                .collect(),
            language: language as i32,
            quiet_hours_start: stored
                .quiet_hours
                .map(|quiet| QuietHours::format(quiet.start))
                .unwrap_or_default(),
            quiet_hours_end: stored
                .quiet_hours
                .map(|quiet| QuietHours::format(quiet.end))
                .unwrap_or_default(),
            areas,
            announcement_topics: topics,
            update_time: stored.updated_at.map(timestamp),
        })
    }

    async fn announcement_to_proto(
        &self,
        row: &announcement::Model,
    ) -> Result<pb::Announcement, Status> {
        let code = commune::Entity::find_by_id(row.commune_id)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(|commune| commune.code)
            .unwrap_or_default();
        let (kind, value) = match Audience::of_row(row) {
            Audience::AllResidents => (pb::AudienceKind::AllResidents, String::new()),
            Audience::Area(area) => (pb::AudienceKind::Area, area),
            Audience::Topic(topic) => (pb::AudienceKind::Topic, topic),
        };
        let state = match row.state.as_str() {
            "published" => pb::AnnouncementState::Published,
            "cancelled" => pb::AnnouncementState::Cancelled,
            _ => pb::AnnouncementState::Scheduled,
        };
        Ok(pb::Announcement {
            id: row.id.to_string(),
            commune_code: code,
            title: serde_json::from_str::<LocalizedText>(&row.title).ok(),
            body: serde_json::from_str::<LocalizedText>(&row.body).ok(),
            audience_kind: kind as i32,
            audience_value: value,
            channels: row
                .channels
                .split(',')
                .filter(|c| !c.is_empty())
                .map(|c| routing::channel_to_proto(c) as i32)
                .collect(),
            publish_time: Some(timestamp(row.publish_at)),
            state: state as i32,
            recipient_count: row.recipient_count,
            created_by: row.created_by.to_string(),
            create_time: Some(timestamp(row.created_at)),
        })
    }
}

/// Remembers the caller's language (the one messages to them are written in). A caller notification
/// did not know as a resident is recorded as one only if they are a citizen: a staff member's
/// choice of language does not put them in their commune's announcement audience.
async fn set_language(
    txn: &sea_orm::DatabaseTransaction,
    caller: &Principal,
    language: Language,
) -> Result<(), sea_orm::DbErr> {
    let existing = recipient::Entity::find_by_id(caller.user_id)
        .one(txn)
        .await?;
    let Some(commune_id) = existing.map(|row| row.commune_id).or(caller.commune_id) else {
        return Ok(());
    };
    recipient::Entity::insert(recipient::ActiveModel {
        user_id: Set(caller.user_id),
        commune_id: Set(commune_id),
        language: Set(language.code().to_string()),
        resident: Set(caller.has_role(Role::Citizen)),
    })
    .on_conflict(
        OnConflict::column(recipient::Column::UserId)
            .update_column(recipient::Column::Language)
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn check_localized(
    violations: &mut FieldViolations,
    field: &str,
    text: &LocalizedText,
    limit: usize,
) {
    let values = [
        ("ar", &text.ar),
        ("fr", &text.fr),
        ("en", &text.en),
        ("tzm", &text.tzm),
    ];
    if values.iter().all(|(_, value)| value.trim().is_empty()) {
        violations.add(field, "is required in at least one language");
    }
    for (language, value) in values {
        if value.chars().count() > limit {
            violations.add(
                format!("{field}.{language}"),
                format!("must be at most {limit} characters"),
            );
        }
    }
}

fn parse_kind_and_language(
    kind_field: &str,
    kind: &str,
    language_field: &str,
    language: i32,
) -> Result<(Kind, Language), Status> {
    let mut violations = FieldViolations::new();
    let kind = Kind::parse(kind);
    if kind.is_none() {
        violations.add(
            kind_field,
            "must be a kind ListTemplates names, e.g. request_status_changed",
        );
    }
    let language = Language::try_from(language)
        .ok()
        .filter(|language| *language != Language::Unspecified);
    if language.is_none() {
        violations.add(language_field, "must name a language");
    }
    violations.into_result()?;
    match (kind, language) {
        (Some(kind), Some(language)) => Ok((kind, language)),
        _ => Err(invalid_argument(kind_field, "is required")),
    }
}

/// An id: required, a UUID.
fn parse_id(field: &str, raw: &str, what: &str) -> Result<Uuid, Status> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(invalid_argument(field, "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| invalid_argument(field, format!("must be {what} (a UUID)")))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn timestamp(at: DateTime<Utc>) -> jamaa_proto::Timestamp {
    timestamp_from_millis(at.timestamp_millis())
}

fn template_to_proto(
    kind: Kind,
    language: Language,
    title: String,
    body: String,
    overridden: bool,
) -> pb::Template {
    let route = routing::route(kind);
    let sms_length = templates::render_draft(kind, language, &title, &body)
        .ok()
        .map(|rendered| {
            sms_length_to_proto(sms_length::measure(&format!(
                "{}\n{}",
                rendered.title, rendered.body
            )))
        });
    pb::Template {
        kind: kind.code().to_string(),
        language: language as i32,
        title,
        body,
        overridden,
        placeholders: templates::placeholders(kind),
        sms_length,
        critical: route.critical,
        topic: route.topic.to_proto() as i32,
    }
}

fn sms_length_to_proto(length: sms_length::SmsLength) -> pb::SmsLength {
    pb::SmsLength {
        encoding: match length.encoding {
            sms_length::Encoding::Gsm7 => pb::SmsEncoding::Gsm7,
            sms_length::Encoding::Ucs2 => pb::SmsEncoding::Ucs2,
        } as i32,
        units: i32::try_from(length.units).unwrap_or(i32::MAX),
        segments: i32::try_from(length.segments).unwrap_or(i32::MAX),
    }
}

fn status_to_proto(status: &str) -> pb::DeliveryStatus {
    match status {
        "queued" => pb::DeliveryStatus::Queued,
        "sent" => pb::DeliveryStatus::Sent,
        "delivered" => pb::DeliveryStatus::Delivered,
        "retrying" => pb::DeliveryStatus::TemporaryFailure,
        "failed" => pb::DeliveryStatus::PermanentFailure,
        "digest" => pb::DeliveryStatus::HeldForDigest,
        "digested" => pb::DeliveryStatus::Digested,
        _ => pb::DeliveryStatus::Unspecified,
    }
}

fn delivery_to_proto(row: &delivery_row::Model) -> pb::Delivery {
    let pending = matches!(row.status.as_str(), "queued" | "retrying");
    pb::Delivery {
        id: row.id.to_string(),
        channel: routing::channel_to_proto(&row.channel) as i32,
        masked_address: row
            .sent_to
            .clone()
            .or_else(|| (!row.address.is_empty()).then(|| delivery::mask(&row.address)))
            .unwrap_or_default(),
        subject: row.subject.clone(),
        status: status_to_proto(&row.status) as i32,
        attempts: row.attempts,
        last_error: row.last_error.clone().unwrap_or_default(),
        event_type: row.event_type.clone().unwrap_or_default(),
        critical: row.critical,
        create_time: Some(timestamp(row.created_at)),
        send_time: row.sent_at.map(timestamp),
        deliver_time: row.delivered_at.map(timestamp),
        next_attempt_time: pending.then(|| timestamp(row.next_attempt_at)),
    }
}

fn notification_to_proto(row: &notification::Model) -> pb::Notification {
    pb::Notification {
        id: row.id.to_string(),
        title: row.title.clone(),
        body: row.body.clone(),
        language: Language::from_code(&row.language).unwrap_or(Language::Ar) as i32,
        event_type: row.event_type.clone(),
        subject: row.subject.clone(),
        create_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
        read_time: row
            .read_at
            .map(|read_at| timestamp_from_millis(read_at.timestamp_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_required_uuids() {
        let missing = parse_id("id", "  ", "x").expect_err("missing");
        assert_eq!(missing.code(), tonic::Code::InvalidArgument);
        assert!(missing.message().contains("id"));
        let bad = parse_id("id", "42", "x").expect_err("bad");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let id = Uuid::now_v7();
        assert_eq!(parse_id("id", &id.to_string(), "x").ok(), Some(id));
    }

    #[test]
    fn receipt_tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
    }
}
