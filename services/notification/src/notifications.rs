//! Reading and marking a person's own notifications. Every query is filtered by the recipient:
//! nobody reaches another person's inbox.

use chrono::Utc;
use jamaa_server::PageRequest;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::notification;

/// One page of a person's inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    /// Newest first.
    pub notifications: Vec<notification::Model>,
    /// Empty when there are no more.
    pub next_page_token: String,
    /// How many of the person's notifications are unread (all of them, not just this page's).
    pub unread_count: i64,
}

pub struct Notifications {
    db: DatabaseConnection,
}

impl Notifications {
    pub fn new(db: DatabaseConnection) -> Self {
        Notifications { db }
    }

    /// A page of `recipient_id`'s notifications, newest first; only unread ones when
    /// `unread_only`. The unread count is counted, not stored.
    pub async fn list(
        &self,
        recipient_id: Uuid,
        page: PageRequest,
        unread_only: bool,
    ) -> Result<InboxPage, Error> {
        let mut query =
            notification::Entity::find().filter(notification::Column::RecipientId.eq(recipient_id));
        if unread_only {
            query = query.filter(notification::Column::ReadAt.is_null());
        }
        if let Some(before) = page.before {
            query = query.filter(notification::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(notification::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        let unread = notification::Entity::find()
            .filter(notification::Column::RecipientId.eq(recipient_id))
            .filter(notification::Column::ReadAt.is_null())
            .count(&self.db)
            .await?;
        Ok(InboxPage {
            notifications: rows,
            next_page_token,
            unread_count: i64::try_from(unread).unwrap_or(i64::MAX),
        })
    }

    /// Marks `recipient_id`'s notification `id` read, keeping the first read time when it was
    /// read already. Someone else's notification, or an unknown one, is not found.
    pub async fn mark_read(
        &self,
        recipient_id: Uuid,
        id: Uuid,
    ) -> Result<notification::Model, Error> {
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
            .filter(notification::Column::Id.eq(id))
            .filter(notification::Column::RecipientId.eq(recipient_id))
            .filter(notification::Column::ReadAt.is_null())
            .exec(&self.db)
            .await?;
        notification::Entity::find_by_id(id)
            .filter(notification::Column::RecipientId.eq(recipient_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotificationNotFound(id.to_string()))
    }

    /// Marks every unread notification of `recipient_id` read; returns how many.
    pub async fn mark_all_read(&self, recipient_id: Uuid) -> Result<u64, Error> {
        let marked = notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
            .filter(notification::Column::RecipientId.eq(recipient_id))
            .filter(notification::Column::ReadAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(marked.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use jamaa_events::{CloudEvent, EventHandler};
    use jamaa_proto::events::v1 as events;

    use super::*;
    use crate::NotificationHandler;
    use crate::test_support::TempDatabase;

    /// Writes one notification to `citizen` through the event handler.
    async fn notify(handler: &NotificationHandler, citizen: Uuid, tracking_code: &str) {
        let event = CloudEvent::new(
            "jamaa/test",
            format!("requests/{}", Uuid::now_v7()),
            &events::RequestSubmitted {
                request_id: Uuid::now_v7().to_string(),
                commune_id: Uuid::now_v7().to_string(),
                citizen_id: citizen.to_string(),
                tracking_code: tracking_code.into(),
                service_code: "x".into(),
                submit_time: None,
                ..Default::default()
            },
        );
        handler.handle(&event).await.expect("handled");
    }

    fn page(size: i32, token: &str) -> PageRequest {
        PageRequest::parse(size, token).expect("page")
    }

    #[tokio::test]
    async fn lists_own_notifications_newest_first_in_pages() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![]);
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        for code in ["A-1", "A-2", "A-3"] {
            notify(&handler, me, code).await;
        }
        notify(&handler, other, "B-1").await;
        let notifications = Notifications::new(temp.db.clone());

        let first = notifications
            .list(me, page(2, ""), false)
            .await
            .expect("first page");
        assert_eq!(first.unread_count, 3);
        let bodies: Vec<&str> = first
            .notifications
            .iter()
            .map(|n| n.body.as_str())
            .collect();
        assert_eq!(bodies.len(), 2);
        assert!(
            bodies[0].contains("A-3") && bodies[1].contains("A-2"),
            "{bodies:?}"
        );
        assert!(!first.next_page_token.is_empty());

        let second = notifications
            .list(me, page(2, &first.next_page_token), false)
            .await
            .expect("second page");
        assert_eq!(second.notifications.len(), 1);
        assert!(second.notifications[0].body.contains("A-1"));
        assert!(second.next_page_token.is_empty());
    }

    #[tokio::test]
    async fn marks_own_notifications_read_once() {
        let temp = TempDatabase::new().await;
        let handler = NotificationHandler::new(temp.db.clone(), vec![]);
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        notify(&handler, me, "A-1").await;
        notify(&handler, me, "A-2").await;
        let notifications = Notifications::new(temp.db.clone());
        let all = notifications
            .list(me, page(0, ""), false)
            .await
            .expect("list");
        let target = all.notifications[1].id;

        let read = notifications.mark_read(me, target).await.expect("marked");
        let first_read_at = read.read_at.expect("read");
        let again = notifications
            .mark_read(me, target)
            .await
            .expect("marked again");
        assert_eq!(again.read_at, Some(first_read_at));

        let unread = notifications
            .list(me, page(0, ""), true)
            .await
            .expect("unread");
        assert_eq!(unread.unread_count, 1);
        assert_eq!(unread.notifications.len(), 1);
        assert_ne!(unread.notifications[0].id, target);

        let someone_else = notifications.mark_read(other, target).await;
        assert!(matches!(someone_else, Err(Error::NotificationNotFound(_))));
        let unknown = notifications.mark_read(me, Uuid::now_v7()).await;
        assert!(matches!(unknown, Err(Error::NotificationNotFound(_))));
    }
}
