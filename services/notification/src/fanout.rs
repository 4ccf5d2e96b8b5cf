//! Writing one message to many people: the ONE way inbox rows and deliveries are written, used
//! by the event consumer (one person, a request's audience, a commune's residents) and by
//! announcements (100,000 residents). Per batch of people it reads their languages and
//! preferences with one query each, renders the message once per language, and writes the
//! inbox rows and the deliveries with one multi-row insert each — never a query per person.
//!
//! Deliveries carry no address unless the message names one (a code sent to the address it
//! proves): the sender looks the person's proven address up when it sends
//! ([`crate::delivery`]).

use std::collections::HashMap;

use chrono::Utc;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::preferences::{self, Preferences};
use crate::routing::{EMAIL, Route};
use crate::storage::{delivery, notification, recipient};
use crate::templates::{self, CustomText, Notice, Rendered};

/// How many people one batch reads and writes.
pub const BATCH: usize = 1000;

/// Why a message could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("cannot render the message: {0}")]
    Template(String),
}

impl From<FanoutError> for jamaa_events::HandlerError {
    fn from(error: FanoutError) -> Self {
        jamaa_events::HandlerError(error.to_string())
    }
}

/// What the message says.
pub enum Content<'a> {
    /// A template's notice, with the commune's overrides of its kind.
    Notice {
        notice: &'a Notice,
        custom: Vec<CustomText>,
    },
    /// Texts given per language (an announcement).
    Texts {
        title: &'a LocalizedText,
        body: &'a LocalizedText,
    },
}

/// One message, to be written to many people.
pub struct Message<'a> {
    /// The event (or announcement) it comes from: one inbox row per person and one delivery
    /// per person and channel, whatever is redelivered.
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub subject: &'a str,
    pub commune_id: Option<Uuid>,
    pub route: Route,
    pub content: Content<'a>,
    /// The channels it may go out on besides the inbox (those configured, and for an
    /// announcement those it names).
    pub channels: &'a [&'static str],
    /// The language the event names, over the person's.
    pub language: Option<Language>,
    /// An address the message must go to (the one a code proves), instead of the person's.
    pub address: Option<(&'static str, String)>,
}

/// Writes `message` to each of `people` (any number; batched). Returns how many inbox rows it
/// wrote (already written ones are skipped).
pub async fn write(
    txn: &DatabaseTransaction,
    message: &Message<'_>,
    people: &[Uuid],
) -> Result<u64, FanoutError> {
    let mut words: HashMap<Language, Rendered> = HashMap::new();
    let mut written = 0;
    for batch in people.chunks(BATCH) {
        written += write_batch(txn, message, batch, &mut words).await?;
    }
    Ok(written)
}

async fn write_batch(
    txn: &DatabaseTransaction,
    message: &Message<'_>,
    people: &[Uuid],
    words: &mut HashMap<Language, Rendered>,
) -> Result<u64, FanoutError> {
    if people.is_empty() {
        return Ok(0);
    }
    let languages: HashMap<Uuid, String> = recipient::Entity::find()
        .filter(recipient::Column::UserId.is_in(people.iter().copied()))
        .all(txn)
        .await?
        .into_iter()
        .map(|row| (row.user_id, row.language))
        .collect();
    let preferences = preferences::load_many(txn, people).await?;
    let defaults = Preferences::default();
    let now = Utc::now();
    let mut inbox = Vec::with_capacity(people.len());
    let mut deliveries = Vec::new();
    for person in people {
        let language = message.language.unwrap_or_else(|| {
            languages
                .get(person)
                .and_then(|code| Language::from_code(code))
                .unwrap_or(Language::Ar)
        });
        let rendered = match words.entry(language) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(render(&message.content, language)?)
            }
        };
        let rendered: &Rendered = rendered;
        inbox.push(notification::ActiveModel {
            id: Set(Uuid::now_v7()),
            recipient_id: Set(*person),
            commune_id: Set(message.commune_id),
            event_id: Set(message.event_id),
            event_type: Set(message.event_type.to_string()),
            subject: Set(message.subject.to_string()),
            title: Set(rendered.title.clone()),
            body: Set(rendered.body.clone()),
            language: Set(rendered.language.code().to_string()),
            created_at: Set(now),
            read_at: Set(None),
        });
        let queue = |channel: &'static str, address: String, status: &str| delivery::ActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(message.event_id),
            channel: Set(channel.to_string()),
            recipient_id: Set(Some(*person)),
            address: Set(address),
            subject: Set(rendered.title.clone()),
            body: Set(rendered.body.clone()),
            status: Set(status.to_string()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            critical: Set(message.route.critical),
            topic: Set(Some(message.route.topic.code().to_string())),
            language: Set(Some(rendered.language.code().to_string())),
            event_type: Set(Some(message.event_type.to_string())),
            commune_id: Set(message.commune_id),
            provider_message_id: Set(None),
            delivered_at: Set(None),
            sent_to: Set(None),
        };
        match &message.address {
            Some((channel, address)) => {
                if message.channels.contains(channel) {
                    deliveries.push(queue(channel, address.clone(), "queued"));
                }
            }
            None => {
                let chosen = preferences.get(person).unwrap_or(&defaults);
                let topic = message.route.topic;
                for channel in chosen.channels_for(topic, message.route.critical) {
                    let Some(channel) = message.channels.iter().find(|c| **c == channel) else {
                        continue;
                    };
                    let held =
                        !message.route.critical && *channel == EMAIL && chosen.digests(topic);
                    let status = if held { "digest" } else { "queued" };
                    deliveries.push(queue(channel, String::new(), status));
                }
            }
        }
    }
    let written = notification::Entity::insert_many(inbox)
        .on_conflict(
            OnConflict::columns([
                notification::Column::EventId,
                notification::Column::RecipientId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if !deliveries.is_empty() {
        queue_deliveries(txn, deliveries).await?;
    }
    Ok(written)
}

/// Inserts deliveries, skipping any already queued for the same event, channel, address and
/// person.
pub async fn queue_deliveries(
    txn: &DatabaseTransaction,
    rows: Vec<delivery::ActiveModel>,
) -> Result<(), DbErr> {
    delivery::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                delivery::Column::EventId,
                delivery::Column::Channel,
                delivery::Column::Address,
                delivery::Column::RecipientId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

fn render(content: &Content<'_>, language: Language) -> Result<Rendered, FanoutError> {
    match content {
        Content::Notice { notice, custom } => templates::render_for(notice, language, custom)
            .map_err(|error| FanoutError::Template(error.to_string())),
        Content::Texts { title, body } => {
            let (language, title) = templates::localized(title, language);
            let body = templates::in_language_exact(body, language)
                .unwrap_or_else(|| templates::localized(body, language).1);
            Ok(Rendered {
                title,
                body,
                language,
            })
        }
    }
}
