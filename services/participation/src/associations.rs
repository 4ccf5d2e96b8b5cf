//! Associations of the commune. Under organic law 113-14 an association may petition the
//! council through its legal representative; the desk registers it (its declaration receipt,
//! founding date and representative) and a petition it files is refused while it is younger
//! than the commune's minimum age.

use chrono::{Months, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::association;

/// An association to register, parsed.
pub struct NewAssociation {
    pub commune_id: Uuid,
    pub name: String,
    pub registration_number: String,
    pub founding_date: NaiveDate,
    pub representative_id: Uuid,
    pub registered_by: Uuid,
}

/// Parses "YYYY-MM-DD", not after `today`.
pub fn parse_founding_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "must be a date as YYYY-MM-DD".to_string())?;
    if date > today {
        return Err("cannot be in the future".into());
    }
    Ok(date)
}

/// Whether an association founded on `founded` is at least `min_months` old on `today`.
pub fn old_enough(founded: NaiveDate, min_months: i32, today: NaiveDate) -> bool {
    let months = u32::try_from(min_months.max(0)).unwrap_or(0);
    founded
        .checked_add_months(Months::new(months))
        .is_some_and(|coming_of_age| coming_of_age <= today)
}

/// The association operations.
pub struct Associations {
    db: DatabaseConnection,
}

impl Associations {
    pub fn new(db: DatabaseConnection) -> Self {
        Associations { db }
    }

    /// Registers an association; its receipt number is unique in the commune
    /// (ALREADY_EXISTS otherwise).
    pub async fn register(&self, new: NewAssociation) -> Result<association::Model, Error> {
        let taken = association::Entity::find()
            .filter(association::Column::CommuneId.eq(new.commune_id))
            .filter(association::Column::RegistrationNumber.eq(new.registration_number.clone()))
            .one(&self.db)
            .await?;
        if taken.is_some() {
            return Err(Error::AlreadyExists(format!(
                "an association with registration number {} is already registered",
                new.registration_number
            )));
        }
        let row = association::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            name: Set(new.name),
            registration_number: Set(new.registration_number),
            founding_date: Set(new.founding_date),
            representative_id: Set(new.representative_id),
            registered_by: Set(new.registered_by),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(association_id = %row.id, commune_id = %row.commune_id, "association registered");
        Ok(row)
    }

    /// An association of `commune_id`.
    pub async fn get(&self, commune_id: Uuid, id: Uuid) -> Result<association::Model, Error> {
        association::Entity::find_by_id(id)
            .filter(association::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .ok_or(Error::AssociationNotFound(id))
    }

    /// The association `id` of `commune_id`, when `representative_id` represents it and it is at
    /// least `min_months` old on `today`: it may file a petition.
    pub async fn filer(
        &self,
        commune_id: Uuid,
        id: Uuid,
        representative_id: Uuid,
        min_months: i32,
        today: NaiveDate,
    ) -> Result<association::Model, Error> {
        let association = self.get(commune_id, id).await?;
        if association.representative_id != representative_id {
            return Err(Error::PermissionDenied(
                "only the association's legal representative files a petition for it".into(),
            ));
        }
        if !old_enough(association.founding_date, min_months, today) {
            return Err(Error::AssociationTooYoung(format!(
                "an association files a petition here once it is {min_months} months old; {} was founded on {}",
                association.name, association.founding_date
            )));
        }
        Ok(association)
    }

    /// The commune's associations, by name.
    pub async fn list(&self, commune_id: Uuid) -> Result<Vec<association::Model>, Error> {
        Ok(association::Entity::find()
            .filter(association::Column::CommuneId.eq(commune_id))
            .order_by_asc(association::Column::Name)
            .limit(1000)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn an_association_comes_of_age_on_the_day() {
        let founded = date("2023-12-03");
        assert!(!old_enough(founded, 36, date("2026-12-02")));
        assert!(old_enough(founded, 36, date("2026-12-03")));
        assert!(old_enough(founded, 0, founded));
        // The end of a month: 29 February plus 12 months is 28 February.
        assert!(old_enough(date("2024-02-29"), 12, date("2025-02-28")));
    }

    #[test]
    fn founding_dates_parse_and_are_not_in_the_future() {
        let today = date("2026-12-03");
        assert_eq!(
            parse_founding_date(" 2020-01-31 ", today),
            Ok(date("2020-01-31"))
        );
        assert!(parse_founding_date("2026-12-04", today).is_err());
        assert!(parse_founding_date("31/01/2020", today).is_err());
    }
}
