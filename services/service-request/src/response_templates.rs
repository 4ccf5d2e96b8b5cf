//! Response templates: a commune's standard public notes for a status (optionally for one
//! service), in its languages; an agent moving a request picks one, and the citizen reads it in
//! their language.

use chrono::Utc;
use jamaa_proto::servicerequest::v1::RequestStatus;
use jamaa_proto::r#type::v1::LocalizedText;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::domain;
use crate::error::Error;
use crate::storage::response_template;

/// The longest template name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A new template, parsed.
pub struct NewTemplate {
    pub commune_id: Uuid,
    pub status: RequestStatus,
    pub service_id: Option<Uuid>,
    pub name: String,
    pub text: LocalizedText,
}

/// The template operations.
pub struct ResponseTemplates {
    db: DatabaseConnection,
}

impl ResponseTemplates {
    pub fn new(db: DatabaseConnection) -> Self {
        ResponseTemplates { db }
    }

    pub async fn create(&self, new: NewTemplate) -> Result<response_template::Model, Error> {
        Ok(response_template::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            status: Set(domain::status_to_db(new.status).to_string()),
            service_id: Set(new.service_id),
            name: Set(new.name),
            text_ar: Set(new.text.ar),
            text_fr: Set(new.text.fr),
            text_en: Set(new.text.en),
            text_tzm: Set(new.text.tzm),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?)
    }

    /// A commune's templates, optionally only for `status`, oldest first.
    pub async fn list(
        &self,
        commune_id: Uuid,
        status: Option<RequestStatus>,
    ) -> Result<Vec<response_template::Model>, Error> {
        let mut query = response_template::Entity::find()
            .filter(response_template::Column::CommuneId.eq(commune_id));
        if let Some(status) = status {
            query =
                query.filter(response_template::Column::Status.eq(domain::status_to_db(status)));
        }
        Ok(query
            .order_by_asc(response_template::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Template `id` of commune `commune_id`.
    pub async fn find(
        &self,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<response_template::Model, Error> {
        response_template::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|template| template.commune_id == commune_id)
            .ok_or_else(|| Error::NotFound(format!("response template {id}")))
    }

    pub async fn delete(&self, commune_id: Uuid, id: Uuid) -> Result<(), Error> {
        self.find(commune_id, id).await?;
        response_template::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// A template's text.
pub fn text_of(template: &response_template::Model) -> LocalizedText {
    LocalizedText {
        ar: template.text_ar.clone(),
        fr: template.text_fr.clone(),
        en: template.text_en.clone(),
        tzm: template.text_tzm.clone(),
    }
}

/// `text` in the language with code `language` (`ar`, `fr`, `en`, `tzm`), else Arabic, else
/// French, else any language it has.
pub fn in_language(text: &LocalizedText, language: &str) -> String {
    let wanted = match language {
        "fr" => &text.fr,
        "en" => &text.en,
        "tzm" => &text.tzm,
        _ => &text.ar,
    };
    [wanted, &text.ar, &text.fr, &text.en, &text.tzm]
        .into_iter()
        .map(|text| text.trim())
        .find(|text| !text.is_empty())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_speaks_the_citizens_language_or_falls_back() {
        let text = LocalizedText {
            ar: "تمت المعالجة".into(),
            fr: "Traité".into(),
            en: String::new(),
            tzm: String::new(),
        };
        assert_eq!(in_language(&text, "fr"), "Traité");
        assert_eq!(in_language(&text, "en"), "تمت المعالجة");
        assert_eq!(in_language(&text, "ar"), "تمت المعالجة");
        let french_only = LocalizedText {
            fr: "Traité".into(),
            ..Default::default()
        };
        assert_eq!(in_language(&french_only, "tzm"), "Traité");
    }
}
