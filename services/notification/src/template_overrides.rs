//! A commune's own wording of its messages: one override per kind and language, checked against
//! the kind's sample data before it is saved, used before the platform's text in that language
//! (see [`crate::templates::render_for`]).

use chrono::Utc;
use jamaa_proto::r#type::v1::Language;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::storage::template_override;
use crate::templates::{CustomText, Kind};

/// The commune's overrides of `kind`, in every language it overrode.
pub async fn of_kind(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
    kind: Kind,
) -> Result<Vec<CustomText>, DbErr> {
    Ok(template_override::Entity::find()
        .filter(template_override::Column::CommuneId.eq(commune_id))
        .filter(template_override::Column::Kind.eq(kind.code()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|row| {
            Some(CustomText {
                language: Language::from_code(&row.language)?,
                title: row.title,
                body: row.body,
            })
        })
        .collect())
}

/// Every override of the commune.
pub async fn all(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
) -> Result<Vec<template_override::Model>, DbErr> {
    template_override::Entity::find()
        .filter(template_override::Column::CommuneId.eq(commune_id))
        .all(db)
        .await
}

/// Saves the commune's override of `kind` in `language` (already checked).
pub async fn save(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
    kind: Kind,
    text: &CustomText,
    by: Uuid,
) -> Result<(), DbErr> {
    template_override::Entity::insert(template_override::ActiveModel {
        commune_id: Set(commune_id),
        kind: Set(kind.code().to_string()),
        language: Set(text.language.code().to_string()),
        title: Set(text.title.clone()),
        body: Set(text.body.clone()),
        updated_by: Set(by),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            template_override::Column::CommuneId,
            template_override::Column::Kind,
            template_override::Column::Language,
        ])
        .update_columns([
            template_override::Column::Title,
            template_override::Column::Body,
            template_override::Column::UpdatedBy,
            template_override::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Removes the commune's override of `kind` in `language`; false when there was none.
pub async fn delete(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
    kind: Kind,
    language: Language,
) -> Result<bool, DbErr> {
    let deleted = template_override::Entity::delete_many()
        .filter(template_override::Column::CommuneId.eq(commune_id))
        .filter(template_override::Column::Kind.eq(kind.code()))
        .filter(template_override::Column::Language.eq(language.code()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}
