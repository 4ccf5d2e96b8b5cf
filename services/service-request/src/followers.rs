//! Duplicates and followers: before filing a located request, a citizen sees the open requests
//! of the same service nearby and may follow one instead; followers hear of its changes (the
//! notification service keeps its own copy of who follows what, from `RequestFollowed` and
//! `RequestUnfollowed`).

use chrono::Utc;
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::{self, OPEN_STATUSES};
use crate::error::Error;
use crate::requests::{Location, account_of, subject};
use crate::storage::{request_follower, service_request};

/// The widest search for nearby requests, in metres.
pub const MAX_RADIUS_METERS: u32 = 2000;
/// The most nearby requests suggested.
const MAX_NEARBY: usize = 20;
/// Metres per degree of latitude.
const METERS_PER_DEGREE: f64 = 111_320.0;

/// An open request near a point.
#[derive(Debug, Clone)]
pub struct Nearby {
    pub request: service_request::Model,
    pub distance_meters: f64,
    pub followers: u64,
}

/// The great-circle distance between two points, in metres (haversine, mean earth radius).
pub fn distance_meters(a: Location, b: Location) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.longitude - a.longitude).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

/// The follower operations.
pub struct Followers {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl Followers {
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Followers { db, outbox }
    }

    /// The open requests of `service_id` within `radius_meters` of `at`, nearest first.
    pub async fn nearby(
        &self,
        service_id: Uuid,
        at: Location,
        radius_meters: u32,
    ) -> Result<Vec<Nearby>, Error> {
        let radius = f64::from(radius_meters);
        let d_lat = radius / METERS_PER_DEGREE;
        let d_lon = radius / (METERS_PER_DEGREE * at.latitude.to_radians().cos().abs().max(0.01));
        let open: Vec<&str> = OPEN_STATUSES
            .iter()
            .map(|status| domain::status_to_db(*status))
            .collect();
        let candidates = service_request::Entity::find()
            .filter(service_request::Column::ServiceId.eq(service_id))
            .filter(service_request::Column::Status.is_in(open))
            .filter(
                service_request::Column::Latitude.between(at.latitude - d_lat, at.latitude + d_lat),
            )
            .filter(
                service_request::Column::Longitude
                    .between(at.longitude - d_lon, at.longitude + d_lon),
            )
            .limit(500)
            .all(&self.db)
            .await?;
        let mut nearby: Vec<Nearby> = candidates
            .into_iter()
            .filter_map(|request| {
                let location = Location {
                    latitude: request.latitude?,
                    longitude: request.longitude?,
                };
                let distance = distance_meters(at, location);
                (distance <= radius).then_some(Nearby {
                    request,
                    distance_meters: distance,
                    followers: 0,
                })
            })
            .collect();
        nearby.sort_by(|a, b| a.distance_meters.total_cmp(&b.distance_meters));
        nearby.truncate(MAX_NEARBY);
        for entry in &mut nearby {
            entry.followers = request_follower::Entity::find()
                .filter(request_follower::Column::RequestId.eq(entry.request.id))
                .count(&self.db)
                .await?;
        }
        Ok(nearby)
    }

    /// The citizen follows a request of their commune (idempotent); `RequestFollowed` commits
    /// with it. Following one's own request is pointless and refused.
    pub async fn follow(
        &self,
        request_id: Uuid,
        user_id: Uuid,
        commune_id: Uuid,
    ) -> Result<service_request::Model, Error> {
        let request = self.request_of_commune(request_id, commune_id).await?;
        if account_of(&request) == Some(user_id) {
            return Err(Error::precondition(
                "OWN_REQUEST",
                "you hear of your own request already",
            ));
        }
        let txn = self.db.begin().await?;
        let existing = request_follower::Entity::find()
            .filter(request_follower::Column::RequestId.eq(request_id))
            .filter(request_follower::Column::UserId.eq(user_id))
            .one(&txn)
            .await?;
        if existing.is_some() {
            txn.rollback().await?;
            return Ok(request);
        }
        let inserted = request_follower::ActiveModel {
            id: Set(Uuid::now_v7()),
            request_id: Set(request_id),
            user_id: Set(user_id),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                // Followed concurrently: once is enough.
                txn.rollback().await?;
                return Ok(request);
            }
            Err(error) => return Err(error.into()),
        }
        self.outbox
            .add(
                &txn,
                subject(request.id),
                &events::RequestFollowed {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    user_id: user_id.to_string(),
                    tracking_code: request.tracking_code.clone(),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok(request)
    }

    /// The citizen stops following a request (idempotent).
    pub async fn unfollow(
        &self,
        request_id: Uuid,
        user_id: Uuid,
        commune_id: Uuid,
    ) -> Result<service_request::Model, Error> {
        let request = self.request_of_commune(request_id, commune_id).await?;
        let txn = self.db.begin().await?;
        let deleted = request_follower::Entity::delete_many()
            .filter(request_follower::Column::RequestId.eq(request_id))
            .filter(request_follower::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(request);
        }
        self.outbox
            .add(
                &txn,
                subject(request.id),
                &events::RequestUnfollowed {
                    request_id: request.id.to_string(),
                    user_id: user_id.to_string(),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok(request)
    }

    async fn request_of_commune(
        &self,
        request_id: Uuid,
        commune_id: Uuid,
    ) -> Result<service_request::Model, Error> {
        service_request::Entity::find_by_id(request_id)
            .one(&self.db)
            .await?
            .filter(|request| request.commune_id == commune_id)
            .ok_or_else(|| Error::NotFound(format!("request {request_id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle_metres() {
        let rabat = Location {
            latitude: 34.0209,
            longitude: -6.8416,
        };
        let casablanca = Location {
            latitude: 33.5731,
            longitude: -7.5898,
        };
        let km = distance_meters(rabat, casablanca) / 1000.0;
        assert!((85.0..88.0).contains(&km), "{km}");
        assert!(distance_meters(rabat, rabat).abs() < 1e-6);
        let north = Location {
            latitude: 34.0209 + 100.0 / METERS_PER_DEGREE,
            longitude: -6.8416,
        };
        let metres = distance_meters(rabat, north);
        assert!((99.0..101.0).contains(&metres), "{metres}");
    }
}
