//! The audit log: every authentication event and every change of access rights — who, what,
//! when, from where, with what outcome. Append-only and tamper-evident.
//!
//! Writing ([`record`]) only INSERTs a row, in the caller's transaction when there is one (the
//! change and its entry commit together). No shared row is touched on that path, so audit never
//! serialises sign-ins (the "hot row" trap). A sealer ([`seal_pending`], every second on each
//! replica) then chains the new entries, per chain, in the order it finds them: each sealed entry
//! gets the next `chain_seq`, the previous entry's hash and its own hash, SHA-256 over the
//! previous hash and every field. The chain's head (`audit_chain_heads`) holds the last sequence
//! number and hash; sealers of several replicas take turns on it. [`check`] recomputes a chain
//! from its first entry: an edited, removed or reordered entry, or a missing tail, breaks it.
//!
//! One chain per commune (its staff can check it) and one for the platform (entries without a
//! commune, e.g. a failed sign-in of an unknown e-mail).
//!
//! Personal data. Entries cannot be rewritten (that is what the chain proves), so they never
//! hold personal data in clear and an erasure has nothing to erase here: people are named by
//! their ids (`actor_id`, `target` `users/{id}`), an identifier typed at sign-in or reset by a
//! keyed hash ([`crate::accounts::Identifier::pseudonym`]), and the client's address only by its
//! network ([`network_of`]: IPv4 /24, IPv6 /48), never the host.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::{audit_chain_head, audit_entry};

/// The chain of entries that belong to no commune.
pub const PLATFORM_CHAIN: Uuid = Uuid::nil();

/// The hash a chain's first entry links to.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// Who acts and from where: the caller of an RPC.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The account acting; `None` before sign-in.
    pub user_id: Option<Uuid>,
    /// The client's network address, as the gateway or the connection says.
    pub client_address: Option<String>,
}

impl Actor {
    pub fn user(user_id: Uuid, client_address: Option<String>) -> Actor {
        Actor {
            user_id: Some(user_id),
            client_address,
        }
    }
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The commune whose chain it joins; `None`: the platform's.
    pub commune_id: Option<Uuid>,
    pub actor: Actor,
    /// What happened, e.g. `login`, `role.grant`, `user.disable`.
    pub action: &'static str,
    /// What it happened to, e.g. `users/{id}`.
    pub target: String,
    pub outcome: Outcome,
    /// More facts, as JSON text (never a secret or a national ID).
    pub detail: serde_json::Value,
}

/// Appends `entry` (unsealed) on `db`: a transaction to commit with the change it records, or the
/// pool for attempts that change nothing.
pub async fn record(db: &impl ConnectionTrait, entry: Entry) -> Result<(), Error> {
    audit_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        chain_id: Set(entry.commune_id.unwrap_or(PLATFORM_CHAIN)),
        chain_seq: Set(None),
        actor_id: Set(entry.actor.user_id),
        action: Set(entry.action.to_string()),
        target: Set(entry.target),
        outcome: Set(entry.outcome.as_str().to_string()),
        client_address: Set(entry
            .actor
            .client_address
            .as_deref()
            .map(network_of)
            .unwrap_or_default()),
        detail: Set(entry.detail.to_string()),
        created_at: Set(Utc::now()),
        prev_hash: Set(None),
        hash: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// What the audit log keeps of a client address: its network, not the host — the first three
/// bytes of an IPv4 address (`203.0.113.0/24`), the first 48 bits of an IPv6 one
/// (`2001:db8:1::/48`; an IPv4-mapped one as IPv4). Enough to say where an attack came from,
/// not which household. Anything that is not an IP address is not kept (`?`).
pub fn network_of(address: &str) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let address = address.trim();
    let parsed = address
        .parse::<IpAddr>()
        .ok()
        .or_else(|| address.parse::<SocketAddr>().ok().map(|socket| socket.ip()));
    let v4 = |ip: Ipv4Addr| {
        let [a, b, c, _] = ip.octets();
        format!("{a}.{b}.{c}.0/24")
    };
    match parsed {
        Some(IpAddr::V4(ip)) => v4(ip),
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(mapped) => v4(mapped),
            None => {
                let [a, b, c, ..] = ip.segments();
                format!("{}/48", Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0))
            }
        },
        None if address.is_empty() => String::new(),
        None => "?".into(),
    }
}

/// How many entries a sealer chains per transaction.
const SEAL_BATCH: u64 = 500;

/// Chains every unsealed entry; returns how many it sealed.
pub async fn seal_pending(db: &DatabaseConnection) -> Result<usize, Error> {
    let chains: Vec<Uuid> = audit_entry::Entity::find()
        .select_only()
        .column(audit_entry::Column::ChainId)
        .filter(audit_entry::Column::ChainSeq.is_null())
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut sealed = 0;
    for chain in chains {
        loop {
            let count = seal_batch(db, chain).await?;
            sealed += count;
            if (count as u64) < SEAL_BATCH {
                break;
            }
        }
    }
    Ok(sealed)
}

/// Seals up to [`SEAL_BATCH`] entries of `chain` in one transaction, holding the chain's head.
async fn seal_batch(db: &DatabaseConnection, chain: Uuid) -> Result<usize, Error> {
    let txn = db.begin().await?;
    audit_chain_head::Entity::insert(audit_chain_head::ActiveModel {
        chain_id: Set(chain),
        last_seq: Set(0),
        last_hash: Set(GENESIS.to_string()),
    })
    .on_conflict(
        OnConflict::column(audit_chain_head::Column::ChainId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    // Taking the head's row lock first: another replica's sealer waits here, then finds the
    // entries sealed.
    audit_chain_head::Entity::update_many()
        .col_expr(
            audit_chain_head::Column::LastSeq,
            Expr::col(audit_chain_head::Column::LastSeq).add(0),
        )
        .filter(audit_chain_head::Column::ChainId.eq(chain))
        .exec(&txn)
        .await?;
    let head = audit_chain_head::Entity::find_by_id(chain)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::Internal("the audit chain head vanished".into()))?;
    let pending = audit_entry::Entity::find()
        .filter(audit_entry::Column::ChainId.eq(chain))
        .filter(audit_entry::Column::ChainSeq.is_null())
        .order_by_asc(audit_entry::Column::Id)
        .limit(SEAL_BATCH)
        .all(&txn)
        .await?;
    let (mut seq, mut previous) = (head.last_seq, head.last_hash);
    for entry in &pending {
        seq += 1;
        let hash = entry_hash(&previous, seq, entry);
        audit_entry::Entity::update_many()
            .col_expr(audit_entry::Column::ChainSeq, Expr::value(seq))
            .col_expr(audit_entry::Column::PrevHash, Expr::value(previous.clone()))
            .col_expr(audit_entry::Column::Hash, Expr::value(hash.clone()))
            .filter(audit_entry::Column::Id.eq(entry.id))
            .exec(&txn)
            .await?;
        previous = hash;
    }
    audit_chain_head::Entity::update_many()
        .col_expr(audit_chain_head::Column::LastSeq, Expr::value(seq))
        .col_expr(audit_chain_head::Column::LastHash, Expr::value(previous))
        .filter(audit_chain_head::Column::ChainId.eq(chain))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(pending.len())
}

/// SHA-256 over the previous hash, the sequence number and every field, each length-prefixed.
fn entry_hash(previous: &str, seq: i64, entry: &audit_entry::Model) -> String {
    let mut hasher = Sha256::new();
    let micros = entry.created_at.timestamp_micros().to_string();
    let actor = entry.actor_id.map(|id| id.to_string()).unwrap_or_default();
    for part in [
        previous,
        &seq.to_string(),
        &entry.id.to_string(),
        &entry.chain_id.to_string(),
        &actor,
        &entry.action,
        &entry.target,
        &entry.outcome,
        &entry.client_address,
        &entry.detail,
        &micros,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Sealed entries checked.
    pub checked: i64,
    /// The sequence number of the first entry that does not fit; `None`: the chain is intact.
    pub first_broken_seq: Option<i64>,
    /// Why it does not fit.
    pub problem: String,
    /// Entries not sealed yet (sealed within seconds).
    pub unsealed: i64,
    /// The head's hash: record it elsewhere to detect a rewrite of the whole chain.
    pub head_hash: String,
}

/// Recomputes the chain of `chain` from its first entry.
pub async fn check(db: &DatabaseConnection, chain: Uuid) -> Result<ChainReport, Error> {
    let head = audit_chain_head::Entity::find_by_id(chain).one(db).await?;
    let (head_seq, head_hash) = head
        .map(|head| (head.last_seq, head.last_hash))
        .unwrap_or((0, GENESIS.to_string()));
    let unsealed = audit_entry::Entity::find()
        .filter(audit_entry::Column::ChainId.eq(chain))
        .filter(audit_entry::Column::ChainSeq.is_null())
        .count(db)
        .await? as i64;
    let broken = |seq: i64, checked: i64, problem: &str| ChainReport {
        checked,
        first_broken_seq: Some(seq),
        problem: problem.to_string(),
        unsealed,
        head_hash: head_hash.clone(),
    };
    let mut previous = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut after: Option<i64> = None;
    loop {
        // Up to the head read above: entries a sealer adds meanwhile wait for the next check.
        let mut query = audit_entry::Entity::find()
            .filter(audit_entry::Column::ChainId.eq(chain))
            .filter(audit_entry::Column::ChainSeq.is_not_null())
            .filter(audit_entry::Column::ChainSeq.lte(head_seq))
            .order_by_asc(audit_entry::Column::ChainSeq)
            .limit(1000);
        if let Some(after) = after {
            query = query.filter(audit_entry::Column::ChainSeq.gt(after));
        }
        let page = query.all(db).await?;
        if page.is_empty() {
            break;
        }
        for entry in &page {
            let seq = entry.chain_seq.unwrap_or_default();
            let checked = expected_seq - 1;
            if seq != expected_seq {
                return Ok(broken(expected_seq, checked, "an entry is missing"));
            }
            if entry.prev_hash.as_deref() != Some(previous.as_str()) {
                return Ok(broken(
                    seq,
                    checked,
                    "it does not link to the entry before it",
                ));
            }
            let hash = entry_hash(&previous, seq, entry);
            if entry.hash.as_deref() != Some(hash.as_str()) {
                return Ok(broken(seq, checked, "it was changed after it was written"));
            }
            previous = hash;
            expected_seq += 1;
        }
        after = page.last().and_then(|entry| entry.chain_seq);
    }
    let checked = expected_seq - 1;
    if checked != head_seq || previous != head_hash {
        return Ok(broken(
            checked + 1,
            checked,
            "entries at the end of the chain are missing",
        ));
    }
    Ok(ChainReport {
        checked,
        first_broken_seq: None,
        problem: String::new(),
        unsealed,
        head_hash,
    })
}

/// A page of entries, newest first: of `chain` (or every chain when `None`), before `before`.
pub async fn list(
    db: &DatabaseConnection,
    chain: Option<Uuid>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, Error> {
    let mut query = audit_entry::Entity::find()
        .order_by_desc(audit_entry::Column::Id)
        .limit(limit);
    if let Some(chain) = chain {
        query = query.filter(audit_entry::Column::ChainId.eq(chain));
    }
    if let Some(before) = before {
        query = query.filter(audit_entry::Column::Id.lt(before));
    }
    Ok(query.all(db).await?)
}

/// How often each replica seals new entries.
const SEAL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Seals new entries every [`SEAL_EVERY`] until `shutdown`.
pub fn seal_periodically(db: DatabaseConnection, shutdown: tokio_util::sync::CancellationToken) {
    jamaa_server::run_every(SEAL_EVERY, shutdown, "sealing audit entries", move || {
        let db = db.clone();
        async move { seal_pending(&db).await.map(|_| ()) }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_network_of_a_client_address_is_kept() {
        assert_eq!(network_of("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(network_of(" 127.0.0.1 "), "127.0.0.0/24");
        assert_eq!(network_of("198.51.100.9:4431"), "198.51.100.0/24");
        assert_eq!(network_of("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
        assert_eq!(network_of("[2001:db8:ab::1]:443"), "2001:db8:ab::/48");
        assert_eq!(network_of("::ffff:192.0.2.200"), "192.0.2.0/24");
        assert_eq!(network_of("not an address"), "?");
        assert_eq!(network_of(""), "");
    }
}
