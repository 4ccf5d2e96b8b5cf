//! Participation's operations: open, read, list and sign petitions. A petition reaching its
//! threshold and its `PetitionThresholdReached` event commit in one transaction.

use std::collections::HashMap;

use chrono::Utc;
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::timestamp_from_millis;
use jamaa_server::PageRequest;
use sea_orm::sea_query::{Expr, Func, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::commune_settings::CommuneSettingsStore;
use crate::communes::CommuneDirectory;
use crate::domain::{self, PetitionBody, PetitionStatus, PetitionTitle};
use crate::error::Error;
use crate::storage::{association, petition, petition_signature};

/// A petition as read: its row and its signatures so far.
#[derive(Debug, Clone)]
pub struct PetitionView {
    pub petition: petition::Model,
    /// `COUNT(*)` of its signatures when it was read.
    pub signature_count: i64,
    /// The filing association's name, for a petition of an association.
    pub association_name: Option<String>,
}

/// A petition to open.
pub struct NewPetition {
    /// The author's idempotency key.
    pub request_id: Uuid,
    pub title: PetitionTitle,
    pub body: PetitionBody,
    /// Keep it a draft (published later) instead of opening it for signatures.
    pub draft: bool,
    /// The association filing it (checked: the author represents it and it is old enough).
    pub association: Option<association::Model>,
}

/// Who opens a petition: a citizen of a commune.
pub struct Author<'a> {
    pub user_id: Uuid,
    pub commune_id: Uuid,
    /// The commune's code, to ask identity for its threshold.
    pub commune_code: &'a str,
}

/// The outcome of signing.
pub struct Signed {
    pub petition: PetitionView,
    /// False when the citizen had signed already.
    pub newly_signed: bool,
}

/// One page of petitions.
pub struct PetitionPage {
    pub petitions: Vec<PetitionView>,
    pub next_page_token: String,
}

pub struct Petitions {
    pub(crate) db: DatabaseConnection,
    pub(crate) outbox: Outbox,
    communes: CommuneDirectory,
    /// Each commune's rules: how long a published petition collects signatures.
    pub(crate) settings: std::sync::Arc<CommuneSettingsStore>,
}

impl Petitions {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        communes: CommuneDirectory,
        settings: std::sync::Arc<CommuneSettingsStore>,
    ) -> Self {
        Petitions {
            db,
            outbox,
            communes,
            settings,
        }
    }

    /// How long a petition published now in `commune_id` collects signatures.
    pub(crate) async fn collecting_window(
        &self,
        commune_id: Uuid,
    ) -> Result<chrono::Duration, Error> {
        let days = self
            .settings
            .get(commune_id)
            .await?
            .petition_collecting_days;
        Ok(chrono::Duration::days(i64::from(days.max(1))))
    }

    /// Opens a petition in the author's commune, with the commune's current threshold. The same
    /// author and `request_id` give back the petition opened the first time.
    pub async fn create(
        &self,
        author: Author<'_>,
        new: NewPetition,
    ) -> Result<PetitionView, Error> {
        if let Some(existing) = find_by_request(&self.db, author.user_id, new.request_id).await? {
            return view(&self.db, existing).await;
        }
        let threshold = self
            .communes
            .petition_threshold(author.commune_id, author.commune_code)
            .await?;
        let window = self.collecting_window(author.commune_id).await?;
        let association_name = new.association.as_ref().map(|a| a.name.clone());
        let inserted = petition::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(author.commune_id),
            author_id: Set(author.user_id),
            client_request_id: Set(new.request_id),
            title: Set(new.title.as_str().to_string()),
            body: Set(new.body.as_str().to_string()),
            signature_threshold: Set(threshold.get()),
            status: Set(if new.draft {
                PetitionStatus::Draft
            } else {
                PetitionStatus::Collecting
            }
            .as_str()
            .to_string()),
            created_at: Set(Utc::now()),
            threshold_reached_at: Set(None),
            collect_until: Set((!new.draft).then(|| Utc::now() + window)),
            submitted_at: Set(None),
            decision_due_at: Set(None),
            session: Set(None),
            inadmissible_reasons: Set(None),
            decision: Set(None),
            decided_at: Set(None),
            overdue_notified: Set(false),
            association_id: Set(new.association.as_ref().map(|a| a.id)),
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(petition) => {
                tracing::info!(petition_id = %petition.id, commune_id = %petition.commune_id, "petition opened");
                Ok(PetitionView {
                    petition,
                    signature_count: 0,
                    association_name,
                })
            }
            // The same request ran concurrently and won the insert: answer with its petition.
            Err(error) if is_unique_violation(&error) => {
                let existing = find_by_request(&self.db, author.user_id, new.request_id)
                    .await?
                    .ok_or(Error::Database(error))?;
                view(&self.db, existing).await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A petition of `commune_id`; NOT_FOUND when unknown or of another commune.
    /// The commune petition `petition_id` is addressed to.
    pub async fn commune_of(&self, petition_id: Uuid) -> Result<Uuid, Error> {
        petition::Entity::find_by_id(petition_id)
            .one(&self.db)
            .await?
            .map(|petition| petition.commune_id)
            .ok_or(Error::PetitionNotFound(petition_id))
    }

    pub async fn get(&self, commune_id: Uuid, petition_id: Uuid) -> Result<PetitionView, Error> {
        let petition = find_in_commune(&self.db, commune_id, petition_id).await?;
        view(&self.db, petition).await
    }

    /// The petitions of `commune_id`, newest first.
    pub async fn list(&self, commune_id: Uuid, page: PageRequest) -> Result<PetitionPage, Error> {
        let mut query = petition::Entity::find().filter(petition::Column::CommuneId.eq(commune_id));
        if let Some(before) = page.before {
            query = query.filter(petition::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(petition::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let counts = count_signatures_of(&self.db, ids).await?;
        let association_ids: Vec<Uuid> = rows.iter().filter_map(|row| row.association_id).collect();
        let names: HashMap<Uuid, String> = if association_ids.is_empty() {
            HashMap::new()
        } else {
            association::Entity::find()
                .filter(association::Column::Id.is_in(association_ids))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect()
        };
        let petitions = rows
            .into_iter()
            .map(|petition| PetitionView {
                signature_count: counts.get(&petition.id).copied().unwrap_or(0),
                association_name: petition
                    .association_id
                    .and_then(|id| names.get(&id).cloned()),
                petition,
            })
            .collect();
        Ok(PetitionPage {
            petitions,
            next_page_token,
        })
    }

    /// Signs a petition of the citizen's commune, once per citizen. The signature that brings
    /// the count to the threshold marks the petition and adds `PetitionThresholdReached` to the
    /// outbox, in the signature's transaction (or, when a concurrent signature was invisible to
    /// it, in a second one right after the commit); the conditional update makes that happen
    /// exactly once.
    pub async fn sign(
        &self,
        citizen_id: Uuid,
        commune_id: Uuid,
        petition_id: Uuid,
    ) -> Result<Signed, Error> {
        let txn = self.db.begin().await?;
        let petition = find_in_commune(&txn, commune_id, petition_id).await?;
        let collecting = matches!(
            PetitionStatus::parse(&petition.status),
            Some(PetitionStatus::Collecting | PetitionStatus::ThresholdReached)
        ) && petition
            .collect_until
            .is_none_or(|until| Utc::now() <= until);
        if !collecting {
            return Err(Error::NotCollecting(
                "this petition does not take signatures now (a draft, submitted, or its window has ended)".into(),
            ));
        }
        let inserted = petition_signature::Entity::insert(petition_signature::ActiveModel {
            petition_id: Set(petition.id),
            citizen_id: Set(citizen_id),
            signed_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([
                petition_signature::Column::PetitionId,
                petition_signature::Column::CitizenId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        let newly_signed = inserted == 1;
        if newly_signed {
            // Notification keeps the signatories, to tell them of the council's decision.
            self.outbox
                .add(
                    &txn,
                    format!("petitions/{}", petition.id),
                    &events::PetitionSigned {
                        petition_id: petition.id.to_string(),
                        commune_id: petition.commune_id.to_string(),
                        citizen_id: citizen_id.to_string(),
                    },
                )
                .await?;
        }
        if newly_signed && petition.threshold_reached_at.is_none() {
            self.record_threshold_if_reached(&txn, &petition).await?;
        }
        self.outbox.commit(txn).await?;

        let mut signed = self.get(commune_id, petition_id).await?;
        // On PostgreSQL (READ COMMITTED) the count above did not see signatures of transactions
        // still open beside ours: when the last two signers commit together, each may have
        // counted one short. Counting again after our commit sees them, so the last committer
        // catches it; the conditional update still lets only one of them record it.
        if domain::threshold_newly_reached(
            signed.petition.threshold_reached_at.is_some(),
            signed.signature_count,
            signed.petition.signature_threshold,
        ) {
            let txn = self.db.begin().await?;
            self.record_threshold_if_reached(&txn, &signed.petition)
                .await?;
            self.outbox.commit(txn).await?;
            signed = self.get(commune_id, petition_id).await?;
        }
        Ok(Signed {
            petition: signed,
            newly_signed,
        })
    }

    /// Inside `txn`: when `petition` has not reached its threshold yet and its signatures (as
    /// `txn` sees them) are enough, marks it reached and adds `PetitionThresholdReached`. Only the
    /// transaction whose update changes the row adds the event.
    async fn record_threshold_if_reached<C: ConnectionTrait>(
        &self,
        txn: &C,
        petition: &petition::Model,
    ) -> Result<(), Error> {
        let signature_count = count_signatures(txn, petition.id).await?;
        if !domain::threshold_newly_reached(
            petition.threshold_reached_at.is_some(),
            signature_count,
            petition.signature_threshold,
        ) {
            return Ok(());
        }
        let reached_at = Utc::now();
        let updated = petition::Entity::update_many()
            .col_expr(
                petition::Column::Status,
                Expr::value(PetitionStatus::ThresholdReached.as_str()),
            )
            .col_expr(
                petition::Column::ThresholdReachedAt,
                Expr::value(reached_at),
            )
            .filter(petition::Column::Id.eq(petition.id))
            .filter(petition::Column::ThresholdReachedAt.is_null())
            .exec(txn)
            .await?;
        if updated.rows_affected != 1 {
            return Ok(());
        }
        self.outbox
            .add(
                txn,
                format!("petitions/{}", petition.id),
                &events::PetitionThresholdReached {
                    petition_id: petition.id.to_string(),
                    commune_id: petition.commune_id.to_string(),
                    author_id: petition.author_id.to_string(),
                    title: petition.title.clone(),
                    signature_count,
                    signature_threshold: petition.signature_threshold,
                    reach_time: Some(timestamp_from_millis(reached_at.timestamp_millis())),
                },
            )
            .await?;
        tracing::info!(
            petition_id = %petition.id,
            signature_count,
            signature_threshold = petition.signature_threshold,
            "petition reached its signature threshold"
        );
        Ok(())
    }
}

async fn find_by_request<C: ConnectionTrait>(
    db: &C,
    author_id: Uuid,
    request_id: Uuid,
) -> Result<Option<petition::Model>, Error> {
    Ok(petition::Entity::find()
        .filter(petition::Column::AuthorId.eq(author_id))
        .filter(petition::Column::ClientRequestId.eq(request_id))
        .one(db)
        .await?)
}

async fn find_in_commune<C: ConnectionTrait>(
    db: &C,
    commune_id: Uuid,
    petition_id: Uuid,
) -> Result<petition::Model, Error> {
    petition::Entity::find_by_id(petition_id)
        .filter(petition::Column::CommuneId.eq(commune_id))
        .one(db)
        .await?
        .ok_or(Error::PetitionNotFound(petition_id))
}

async fn view<C: ConnectionTrait>(
    db: &C,
    petition: petition::Model,
) -> Result<PetitionView, Error> {
    let signature_count = count_signatures(db, petition.id).await?;
    let association_name = match petition.association_id {
        Some(id) => association::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|a| a.name),
        None => None,
    };
    Ok(PetitionView {
        petition,
        signature_count,
        association_name,
    })
}

/// `COUNT(*)` of a petition's signatures.
async fn count_signatures<C: ConnectionTrait>(db: &C, petition_id: Uuid) -> Result<i64, Error> {
    let count = petition_signature::Entity::find()
        .filter(petition_signature::Column::PetitionId.eq(petition_id))
        .count(db)
        .await?;
    i64::try_from(count).map_err(|_| Error::Internal(format!("signature count {count} overflows")))
}

/// The signature counts of `petition_ids`, in one grouped query (petitions without signatures
/// are absent).
async fn count_signatures_of<C: ConnectionTrait>(
    db: &C,
    petition_ids: Vec<Uuid>,
) -> Result<HashMap<Uuid, i64>, Error> {
    if petition_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64)> = petition_signature::Entity::find()
        .select_only()
        .column(petition_signature::Column::PetitionId)
        .column_as(
            SimpleExpr::from(Func::count(Expr::col(
                petition_signature::Column::CitizenId,
            ))),
            "signature_count",
        )
        .filter(petition_signature::Column::PetitionId.is_in(petition_ids))
        .group_by(petition_signature::Column::PetitionId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
