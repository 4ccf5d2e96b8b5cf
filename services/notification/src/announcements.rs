//! The commune's announcements: staff write one (title and text per language, an audience, the
//! channels besides the inbox, a publish time); the publisher fans it out when its time comes.
//!
//! Fan-out: the audience is read in pages of [`fanout::BATCH`] people by user id (all residents
//! from `recipients`, an area's or a topic's followers from `audience_members`), and each page
//! is written with one multi-row insert of inbox rows and one of deliveries, each page in its
//! own transaction — so memory stays bounded by one page, and 100,000 residents are 100 pages.
//! The publisher claims an announcement with a lease (`publishing`, `publish_lease_until` in
//! `published_at`); a replica that dies mid-way leaves the lease to expire and another goes on:
//! pages already written are skipped (one inbox row per announcement and person).

use chrono::{DateTime, Utc};
use jamaa_proto::r#type::v1::LocalizedText;
use jamaa_server::PageRequest;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::fanout::{self, FanoutError};
use crate::routing::{Route, Topic};
use crate::storage::{announcement, audience_member, notification};

/// The event type an announcement's inbox rows carry.
pub const EVENT_TYPE: &str = "jamaa.notification.v1.Announcement";
/// How long a publisher holds an announcement it is fanning out.
const LEASE_SECONDS: i64 = 300;
/// How often the publisher looks for due announcements.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Who an announcement is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    AllResidents,
    Area(String),
    Topic(String),
}

impl Audience {
    fn columns(&self) -> (&'static str, &str) {
        match self {
            Audience::AllResidents => ("all_residents", ""),
            Audience::Area(area) => ("area", area),
            Audience::Topic(topic) => ("topic", topic),
        }
    }

    pub fn of_row(row: &announcement::Model) -> Audience {
        match row.audience_kind.as_str() {
            "area" => Audience::Area(row.audience_value.clone()),
            "topic" => Audience::Topic(row.audience_value.clone()),
            _ => Audience::AllResidents,
        }
    }
}

/// A new announcement, parsed.
pub struct NewAnnouncement {
    pub commune_id: Uuid,
    pub title: LocalizedText,
    pub body: LocalizedText,
    pub audience: Audience,
    pub channels: Vec<&'static str>,
    pub publish_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub request_id: Option<Uuid>,
}

/// Saves `new` as scheduled (the publisher takes it at `publish_at`); the same `request_id`
/// again returns the first one.
pub async fn create(
    db: &DatabaseConnection,
    new: NewAnnouncement,
) -> Result<announcement::Model, DbErr> {
    if let Some(request_id) = new.request_id
        && let Some(existing) = announcement::Entity::find()
            .filter(announcement::Column::RequestId.eq(request_id))
            .filter(announcement::Column::CommuneId.eq(new.commune_id))
            .one(db)
            .await?
    {
        return Ok(existing);
    }
    let (kind, value) = new.audience.columns();
    let id = Uuid::now_v7();
    let row = announcement::ActiveModel {
        id: Set(id),
        commune_id: Set(new.commune_id),
        title: Set(serde_json::to_string(&new.title).unwrap_or_default()),
        body: Set(serde_json::to_string(&new.body).unwrap_or_default()),
        audience_kind: Set(kind.to_string()),
        audience_value: Set(value.to_string()),
        channels: Set(new.channels.join(",")),
        publish_at: Set(new.publish_at),
        state: Set("scheduled".into()),
        recipient_count: Set(0),
        created_by: Set(new.created_by),
        created_at: Set(Utc::now()),
        published_at: Set(None),
        request_id: Set(new.request_id),
    };
    announcement::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    announcement::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("announcement {id}")))
}

pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Option<announcement::Model>, DbErr> {
    announcement::Entity::find_by_id(id).one(db).await
}

/// A page of `commune_id`'s announcements, newest first; only published ones unless
/// `everything`.
pub async fn list(
    db: &DatabaseConnection,
    commune_id: Uuid,
    page: PageRequest,
    everything: bool,
) -> Result<(Vec<announcement::Model>, String), DbErr> {
    let mut query =
        announcement::Entity::find().filter(announcement::Column::CommuneId.eq(commune_id));
    if !everything {
        query = query.filter(announcement::Column::State.eq("published"));
    }
    if let Some(before) = page.before {
        query = query.filter(announcement::Column::Id.lt(before));
    }
    let mut rows = query
        .order_by_desc(announcement::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?;
    let token = page.finish(&mut rows, |row| row.id);
    Ok((rows, token))
}

/// Cancels announcement `id` if it is still scheduled; returns it as it is after.
pub async fn cancel(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<announcement::Model>, DbErr> {
    announcement::Entity::update_many()
        .col_expr(announcement::Column::State, Expr::value("cancelled"))
        .filter(announcement::Column::Id.eq(id))
        .filter(announcement::Column::State.eq("scheduled"))
        .exec(db)
        .await?;
    get(db, id).await
}

/// Publishes due announcements until `shutdown`.
pub fn publish_periodically(
    db: DatabaseConnection,
    channels: Vec<&'static str>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    jamaa_server::run_every(
        POLL_EVERY,
        shutdown,
        "publishing announcements",
        move || {
            let (db, channels) = (db.clone(), channels.clone());
            async move { publish_due(&db, &channels).await.map(|_| ()) }
        },
    );
}

/// One pass: claims and fans out each due announcement; returns how many were published.
pub async fn publish_due(
    db: &DatabaseConnection,
    channels: &[&'static str],
) -> Result<usize, FanoutError> {
    let now = Utc::now();
    let due = announcement::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(announcement::Column::State.eq("scheduled"))
                        .add(announcement::Column::PublishAt.lte(now)),
                )
                .add(
                    // A publisher's lease ran out: it died mid-way.
                    Condition::all()
                        .add(announcement::Column::State.eq("publishing"))
                        .add(announcement::Column::PublishedAt.lt(now)),
                ),
        )
        .limit(10)
        .all(db)
        .await?;
    let mut published = 0;
    for row in due {
        let lease_until = now + chrono::Duration::seconds(LEASE_SECONDS);
        let claimed = announcement::Entity::update_many()
            .col_expr(announcement::Column::State, Expr::value("publishing"))
            .col_expr(announcement::Column::PublishedAt, Expr::value(lease_until))
            .filter(announcement::Column::Id.eq(row.id))
            .filter(announcement::Column::State.eq(row.state.clone()))
            .filter(match row.published_at {
                Some(at) => announcement::Column::PublishedAt.eq(at),
                None => announcement::Column::PublishedAt.is_null(),
            })
            .exec(db)
            .await?;
        if claimed.rows_affected != 1 {
            continue;
        }
        fan_out(db, &row, channels).await?;
        published += 1;
    }
    Ok(published)
}

/// Writes `row` to its whole audience, a page per transaction, then marks it published.
async fn fan_out(
    db: &DatabaseConnection,
    row: &announcement::Model,
    configured: &[&'static str],
) -> Result<(), FanoutError> {
    let started = std::time::Instant::now();
    let title: LocalizedText = serde_json::from_str(&row.title).unwrap_or_default();
    let body: LocalizedText = serde_json::from_str(&row.body).unwrap_or_default();
    let chosen: Vec<&'static str> = configured
        .iter()
        .copied()
        .filter(|channel| row.channels.split(',').any(|c| c == *channel))
        .collect();
    let subject = format!("announcements/{}", row.id);
    let message = fanout::Message {
        event_id: row.id,
        event_type: EVENT_TYPE,
        subject: &subject,
        commune_id: Some(row.commune_id),
        route: Route {
            topic: Topic::Announcements,
            critical: false,
        },
        content: fanout::Content::Texts {
            title: &title,
            body: &body,
        },
        channels: &chosen,
        language: None,
        address: None,
    };
    let audience = Audience::of_row(row);
    let mut after: Option<Uuid> = None;
    loop {
        let txn = db.begin().await?;
        let page = match &audience {
            Audience::AllResidents => {
                crate::handler::residents_page(&txn, row.commune_id, after).await?
            }
            Audience::Area(value) => {
                followers_page(&txn, row.commune_id, "area", value, after).await?
            }
            Audience::Topic(value) => {
                followers_page(&txn, row.commune_id, "topic", value, after).await?
            }
        };
        let Some(last) = page.last().copied() else {
            txn.commit().await?;
            break;
        };
        fanout::write(&txn, &message, &page).await?;
        txn.commit().await?;
        after = Some(last);
        if page.len() < fanout::BATCH {
            break;
        }
    }
    let reached = notification::Entity::find()
        .filter(notification::Column::EventId.eq(row.id))
        .count(db)
        .await?;
    announcement::Entity::update_many()
        .col_expr(announcement::Column::State, Expr::value("published"))
        .col_expr(announcement::Column::PublishedAt, Expr::value(Utc::now()))
        .col_expr(
            announcement::Column::RecipientCount,
            Expr::value(i64::try_from(reached).unwrap_or(i64::MAX)),
        )
        .filter(announcement::Column::Id.eq(row.id))
        .exec(db)
        .await?;
    tracing::info!(announcement = %row.id, recipients = reached, elapsed_ms = started.elapsed().as_millis() as u64, "announcement published");
    Ok(())
}

/// One page of the people following `value` (an area or a topic) in `commune_id`.
async fn followers_page(
    txn: &sea_orm::DatabaseTransaction,
    commune_id: Uuid,
    kind: &str,
    value: &str,
    after: Option<Uuid>,
) -> Result<Vec<Uuid>, DbErr> {
    let mut query = audience_member::Entity::find()
        .select_only()
        .column(audience_member::Column::UserId)
        .filter(audience_member::Column::CommuneId.eq(commune_id))
        .filter(audience_member::Column::Kind.eq(kind))
        .filter(audience_member::Column::Value.eq(value));
    if let Some(after) = after {
        query = query.filter(audience_member::Column::UserId.gt(after));
    }
    query
        .order_by_asc(audience_member::Column::UserId)
        .limit(fanout::BATCH as u64)
        .into_tuple::<Uuid>()
        .all(txn)
        .await
}
