//! The gRPC face of notification: parse requests, check the caller, call [`Notifications`], map
//! replies. Every RPC needs a signed-in caller and works on the caller's own notifications only.

use std::sync::Arc;

use jamaa_auth::principal;
use jamaa_proto::notification::v1 as pb;
use jamaa_proto::notification::v1::notification_service_server::NotificationService;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::Language;
use jamaa_server::PageRequest;
use jamaa_server::status::invalid_argument;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::notifications::Notifications;
use crate::storage::notification;

pub struct NotificationGrpc {
    notifications: Arc<Notifications>,
}

impl NotificationGrpc {
    pub fn new(notifications: Arc<Notifications>) -> Self {
        NotificationGrpc { notifications }
    }
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
        let id = parse_id(&request.get_ref().id)?;
        let notification = self.notifications.mark_read(user_id, id).await?;
        Ok(Response::new(pb::MarkNotificationReadResponse {
            notification: Some(notification_to_proto(&notification)),
        }))
    }
}

/// A notification id: required, a UUID.
fn parse_id(raw: &str) -> Result<Uuid, Status> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(invalid_argument("id", "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| invalid_argument("id", "must be a notification id (a UUID)"))
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
        let missing = parse_id("  ").expect_err("missing");
        assert_eq!(missing.code(), tonic::Code::InvalidArgument);
        assert!(missing.message().contains("id"));
        let bad = parse_id("42").expect_err("bad");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let id = Uuid::now_v7();
        assert_eq!(parse_id(&id.to_string()).ok(), Some(id));
    }
}
