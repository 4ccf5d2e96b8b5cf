//! The catalogue: the services each commune offers.

use chrono::Utc;
use jamaa_proto::r#type::v1::LocalizedText;
use jamaa_server::PageRequest;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::ServiceCode;
use crate::error::{Error, unique_violation};
use crate::storage::service;

/// A new catalogue entry, parsed.
pub struct NewService {
    pub commune_id: Uuid,
    pub commune_code: String,
    pub code: ServiceCode,
    pub name: LocalizedText,
    pub description: LocalizedText,
}

/// The catalogue operations.
pub struct Catalogue {
    db: DatabaseConnection,
}

impl Catalogue {
    pub fn new(db: DatabaseConnection) -> Self {
        Catalogue { db }
    }

    /// Adds an active service to a commune's catalogue; its code must be new in the commune.
    pub async fn create_service(&self, new: NewService) -> Result<service::Model, Error> {
        let code = new.code.as_str().to_string();
        let existing = service::Entity::find()
            .filter(service::Column::CommuneId.eq(new.commune_id))
            .filter(service::Column::Code.eq(code.as_str()))
            .one(&self.db)
            .await?;
        if existing.is_some() {
            return Err(Error::ServiceExists(code));
        }
        let created = service::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            commune_code: Set(new.commune_code),
            code: Set(code.clone()),
            name_ar: Set(new.name.ar),
            name_fr: Set(new.name.fr),
            name_en: Set(new.name.en),
            name_tzm: Set(new.name.tzm),
            description_ar: Set(new.description.ar),
            description_fr: Set(new.description.fr),
            description_en: Set(new.description.en),
            description_tzm: Set(new.description.tzm),
            active: Set(true),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(|error| unique_violation(error, Error::ServiceExists(code)))?;
        Ok(created)
    }

    /// A page of the active services of the commune with code `commune_code`, newest first.
    /// Returns the services and the next page token.
    pub async fn list_active_services(
        &self,
        commune_code: &str,
        page: PageRequest,
    ) -> Result<(Vec<service::Model>, String), Error> {
        let mut query = service::Entity::find()
            .filter(service::Column::CommuneCode.eq(commune_code))
            .filter(service::Column::Active.eq(true));
        if let Some(before) = page.before {
            query = query.filter(service::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(service::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        Ok((rows, next_page_token))
    }
}
