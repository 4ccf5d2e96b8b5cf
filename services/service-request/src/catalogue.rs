//! The catalogue: the services each commune offers, each definition versioned.

use chrono::{DateTime, Utc};
use jamaa_proto::servicerequest::v1::ServiceDefinition;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::LocalizedText;
use jamaa_server::PageRequest;
use jamaa_server::status::FieldViolations;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::definition::parse_definition;
use crate::domain::ServiceCode;
use crate::error::{Error, unique_violation};
use crate::starter::starter_catalogue;
use crate::storage::{service, service_version};

/// A new catalogue entry, parsed: its code and its first definition (from
/// [`parse_definition`]).
pub struct NewService {
    pub commune_id: Uuid,
    pub commune_code: String,
    pub code: ServiceCode,
    pub definition: ServiceDefinition,
}

/// The catalogue operations.
pub struct Catalogue {
    db: DatabaseConnection,
}

impl Catalogue {
    pub fn new(db: DatabaseConnection) -> Self {
        Catalogue { db }
    }

    /// Adds an active service (version 1) to a commune's catalogue; its code must be new in
    /// the commune.
    pub async fn create_service(&self, new: NewService) -> Result<ServiceDefinition, Error> {
        let code = new.code.as_str().to_string();
        let existing = service::Entity::find()
            .filter(service::Column::CommuneId.eq(new.commune_id))
            .filter(service::Column::Code.eq(code.as_str()))
            .one(&self.db)
            .await?;
        if existing.is_some() {
            return Err(Error::ServiceExists(code));
        }
        let now = Utc::now();
        let id = Uuid::now_v7();
        let definition = stamped(new.definition, id, new.commune_id, &code, 1, now, now);
        let json = encode(&definition)?;
        let name = definition.name.clone().unwrap_or_default();
        let description = definition.description.clone().unwrap_or_default();
        let txn = self.db.begin().await?;
        let created = service::ActiveModel {
            id: Set(id),
            commune_id: Set(new.commune_id),
            commune_code: Set(new.commune_code),
            code: Set(code.clone()),
            name_ar: Set(name.ar),
            name_fr: Set(name.fr),
            name_en: Set(name.en),
            name_tzm: Set(name.tzm),
            description_ar: Set(description.ar),
            description_fr: Set(description.fr),
            description_en: Set(description.en),
            description_tzm: Set(description.tzm),
            active: Set(true),
            created_at: Set(now),
            version: Set(1),
            definition: Set(json.clone()),
        }
        .insert(&txn)
        .await
        .map_err(|error| unique_violation(error, Error::ServiceExists(code)))?;
        insert_version(&txn, id, 1, json, now).await?;
        txn.commit().await?;
        definition_of(&created)
    }

    /// Replaces the definition of service `id` of commune `commune_id` with a new version.
    pub async fn update_service(
        &self,
        commune_id: Uuid,
        id: Uuid,
        definition: ServiceDefinition,
    ) -> Result<ServiceDefinition, Error> {
        let current = self.find_of_commune(commune_id, id).await?;
        let previous = definition_of(&current)?;
        let created_at = current.created_at;
        let version = current.version + 1;
        let now = Utc::now();
        let definition = stamped(
            definition,
            id,
            commune_id,
            &current.code,
            version,
            created_at,
            now,
        );
        let json = encode(&definition)?;
        let name = definition.name.clone().unwrap_or_default();
        let description = definition.description.clone().unwrap_or_default();
        let txn = self.db.begin().await?;
        let updated = service::Entity::update_many()
            .col_expr(service::Column::Version, Expr::value(version))
            .col_expr(service::Column::Definition, Expr::value(json.clone()))
            .col_expr(service::Column::NameAr, Expr::value(name.ar))
            .col_expr(service::Column::NameFr, Expr::value(name.fr))
            .col_expr(service::Column::NameEn, Expr::value(name.en))
            .col_expr(service::Column::NameTzm, Expr::value(name.tzm))
            .col_expr(service::Column::DescriptionAr, Expr::value(description.ar))
            .col_expr(service::Column::DescriptionFr, Expr::value(description.fr))
            .col_expr(service::Column::DescriptionEn, Expr::value(description.en))
            .col_expr(
                service::Column::DescriptionTzm,
                Expr::value(description.tzm),
            )
            .filter(service::Column::Id.eq(id))
            .filter(service::Column::Version.eq(current.version))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            txn.rollback().await?;
            return Err(Error::ServiceChanged);
        }
        if previous.version < 1 || current.definition.is_empty() {
            // A service made before versions: keep its first version readable.
            insert_version(&txn, id, current.version, encode(&previous)?, created_at).await?;
        }
        insert_version(&txn, id, version, json, now).await?;
        txn.commit().await?;
        Ok(ServiceDefinition {
            active: current.active,
            ..definition
        })
    }

    /// Service `id` at `version` (`None`: the current one), from any commune (public).
    pub async fn get_service(
        &self,
        id: Uuid,
        version: Option<i32>,
    ) -> Result<ServiceDefinition, Error> {
        let current = service::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("service {id}")))?;
        match version {
            None => definition_of(&current),
            Some(version) if version == current.version => definition_of(&current),
            Some(version) => {
                let row = service_version::Entity::find()
                    .filter(service_version::Column::ServiceId.eq(id))
                    .filter(service_version::Column::Version.eq(version))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("version {version} of service {id}")))?;
                let mut definition = decode(&row.definition)?;
                definition.active = current.active;
                Ok(definition)
            }
        }
    }

    /// The current row of service `id` if it belongs to commune `commune_id`.
    pub async fn find_of_commune(
        &self,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<service::Model, Error> {
        service::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|service| service.commune_id == commune_id)
            .ok_or_else(|| Error::NotFound(format!("service {id}")))
    }

    /// A page of the services of the commune with code `commune_code` (only the active ones
    /// unless `include_inactive`), newest first. Returns the services and the next page token.
    pub async fn list_services(
        &self,
        commune_code: &str,
        include_inactive: bool,
        page: PageRequest,
    ) -> Result<(Vec<ServiceDefinition>, String), Error> {
        let mut query =
            service::Entity::find().filter(service::Column::CommuneCode.eq(commune_code));
        if !include_inactive {
            query = query.filter(service::Column::Active.eq(true));
        }
        if let Some(before) = page.before {
            query = query.filter(service::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(service::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        let services = rows.iter().map(definition_of).collect::<Result<_, _>>()?;
        Ok((services, next_page_token))
    }

    /// Activates or deactivates service `id` of commune `commune_id`.
    pub async fn set_active(
        &self,
        commune_id: Uuid,
        id: Uuid,
        active: bool,
    ) -> Result<ServiceDefinition, Error> {
        let current = self.find_of_commune(commune_id, id).await?;
        service::Entity::update_many()
            .col_expr(service::Column::Active, Expr::value(active))
            .filter(service::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(ServiceDefinition {
            active,
            ..definition_of(&current)?
        })
    }

    /// Adds the starter catalogue's services whose codes commune `commune_id` lacks.
    pub async fn import_starter(
        &self,
        commune_id: Uuid,
        commune_code: &str,
    ) -> Result<Vec<ServiceDefinition>, Error> {
        let starter = starter_catalogue().map_err(|error| {
            Error::Internal(format!("the starter catalogue is unreadable: {error}"))
        })?;
        let mut imported = Vec::new();
        for entry in starter {
            let code = ServiceCode::parse(&entry.code).map_err(|problem| {
                Error::Internal(format!("starter service code {:?} {problem}", entry.code))
            })?;
            let mut violations = FieldViolations::new();
            let Some(definition) = parse_definition(&entry, &mut violations) else {
                return Err(Error::Internal(format!(
                    "starter service {} is invalid",
                    entry.code
                )));
            };
            match self
                .create_service(NewService {
                    commune_id,
                    commune_code: commune_code.to_string(),
                    code,
                    definition,
                })
                .await
            {
                Ok(created) => imported.push(created),
                Err(Error::ServiceExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(imported)
    }
}

/// The definition of a service at a version, by service id, read through `db` (requests read
/// it inside their transaction).
pub async fn version_of(
    db: &impl ConnectionTrait,
    service: &service::Model,
    version: i32,
) -> Result<ServiceDefinition, Error> {
    if version == service.version {
        return definition_of(service);
    }
    let row = service_version::Entity::find()
        .filter(service_version::Column::ServiceId.eq(service.id))
        .filter(service_version::Column::Version.eq(version))
        .one(db)
        .await?
        .ok_or_else(|| {
            Error::Internal(format!("service {} lacks version {version}", service.id))
        })?;
    decode(&row.definition)
}

/// The current definition of a service row.
pub fn definition_of(row: &service::Model) -> Result<ServiceDefinition, Error> {
    if row.definition.is_empty() {
        // Made before versions: only the columns exist.
        return Ok(ServiceDefinition {
            id: row.id.to_string(),
            commune_id: row.commune_id.to_string(),
            code: row.code.clone(),
            name: Some(LocalizedText {
                ar: row.name_ar.clone(),
                fr: row.name_fr.clone(),
                en: row.name_en.clone(),
                tzm: row.name_tzm.clone(),
            }),
            description: Some(LocalizedText {
                ar: row.description_ar.clone(),
                fr: row.description_fr.clone(),
                en: row.description_en.clone(),
                tzm: row.description_tzm.clone(),
            }),
            active: row.active,
            create_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
            version: row.version,
            update_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
            ..Default::default()
        });
    }
    let mut definition = decode(&row.definition)?;
    definition.active = row.active;
    Ok(definition)
}

/// `definition` with the fields the catalogue sets.
fn stamped(
    definition: ServiceDefinition,
    id: Uuid,
    commune_id: Uuid,
    code: &str,
    version: i32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ServiceDefinition {
    ServiceDefinition {
        id: id.to_string(),
        commune_id: commune_id.to_string(),
        code: code.to_string(),
        active: true,
        create_time: Some(timestamp_from_millis(created_at.timestamp_millis())),
        version,
        update_time: Some(timestamp_from_millis(now.timestamp_millis())),
        ..definition
    }
}

async fn insert_version(
    db: &impl ConnectionTrait,
    service_id: Uuid,
    version: i32,
    definition: String,
    created_at: DateTime<Utc>,
) -> Result<(), Error> {
    service_version::ActiveModel {
        id: Set(Uuid::now_v7()),
        service_id: Set(service_id),
        version: Set(version),
        definition: Set(definition),
        created_at: Set(created_at),
    }
    .insert(db)
    .await
    .map_err(|error| unique_violation(error, Error::ServiceChanged))?;
    Ok(())
}

fn encode(definition: &ServiceDefinition) -> Result<String, Error> {
    serde_json::to_string(definition)
        .map_err(|error| Error::Internal(format!("cannot encode a service definition: {error}")))
}

fn decode(json: &str) -> Result<ServiceDefinition, Error> {
    serde_json::from_str(json)
        .map_err(|error| Error::Internal(format!("unreadable service definition: {error}")))
}
