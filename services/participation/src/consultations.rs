//! Consultations and surveys: staff ask the commune's residents questions (single choice,
//! multiple choice, free text, rating 1–5) during an opening window, to an audience (residents
//! at or above an assurance level); one response per citizen; choice and rating results are
//! aggregated live; free-text answers are for staff unless the consultation makes them public;
//! staff export every response as CSV.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use jamaa_proto::participation::v1::{self as pb, QuestionKind};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use std::time::Duration;

use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::timestamp_from_millis;
use sea_orm::TransactionTrait;
use sea_orm::sea_query::Expr;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::storage::{consultation, consultation_response};

/// The most questions a consultation asks.
pub const MAX_QUESTIONS: usize = 50;
/// The most options a choice question offers.
pub const MAX_OPTIONS: usize = 30;
/// The longest free-text answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 5000;

/// A consultation to create, parsed.
pub struct NewConsultation {
    pub commune_id: Uuid,
    pub title: String,
    pub description: String,
    pub questions: Vec<pb::Question>,
    pub open_at: DateTime<Utc>,
    pub close_at: DateTime<Utc>,
    /// The lowest assurance level that may respond (as stored, e.g. `verified_in_person`).
    pub min_assurance: String,
    pub free_text_public: bool,
    pub created_by: Uuid,
}

/// Results of one question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuestionResult {
    /// Per option index, how many chose it (choice questions).
    pub option_counts: Vec<i64>,
    /// Ratings 1..=5, how many gave each (rating questions).
    pub rating_counts: [i64; 5],
    /// Free-text answers (only when the reader may see them).
    pub texts: Vec<String>,
    /// How many answered the question.
    pub answered: i64,
}

impl QuestionResult {
    pub fn rating_mean(&self) -> Option<f64> {
        let count: i64 = self.rating_counts.iter().sum();
        let sum: i64 = self
            .rating_counts
            .iter()
            .enumerate()
            .map(|(index, n)| (index as i64 + 1) * n)
            .sum();
        (count > 0).then(|| sum as f64 / count as f64)
    }
}

/// Checks a consultation's questions, recording each problem under `questions[i]`.
pub fn check_questions(
    questions: &[pb::Question],
    violations: &mut jamaa_server::status::FieldViolations,
) -> Vec<pb::Question> {
    if questions.is_empty() || questions.len() > MAX_QUESTIONS {
        violations.add("questions", format!("needs 1 to {MAX_QUESTIONS} questions"));
        return Vec::new();
    }
    let mut checked = Vec::new();
    for (index, question) in questions.iter().enumerate() {
        let field = |name: &str| format!("questions[{index}].{name}");
        let text = question.text.trim();
        if text.is_empty() || text.chars().count() > 500 {
            violations.add(field("text"), "must have 1 to 500 characters");
        }
        let kind = QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified);
        let choice = matches!(
            kind,
            QuestionKind::SingleChoice | QuestionKind::MultipleChoice
        );
        match kind {
            QuestionKind::Unspecified => violations.add(field("kind"), "is required"),
            _ if choice && (question.options.len() < 2 || question.options.len() > MAX_OPTIONS) => {
                violations.add(
                    field("options"),
                    format!("a choice needs 2 to {MAX_OPTIONS} options"),
                );
            }
            _ if !choice && !question.options.is_empty() => {
                violations.add(field("options"), "only choice questions have options");
            }
            _ => {}
        }
        if question.options.iter().any(|option| {
            let option = option.trim();
            option.is_empty() || option.chars().count() > 200
        }) {
            violations.add(
                field("options"),
                "each option must have 1 to 200 characters",
            );
        }
        checked.push(pb::Question {
            text: text.to_string(),
            kind: question.kind,
            options: question
                .options
                .iter()
                .map(|o| o.trim().to_string())
                .collect(),
            required: question.required,
        });
    }
    checked
}

/// Checks one response against the questions, recording problems under `answers[i]`. Returns
/// the answers to store, by question index.
pub fn check_answers(
    questions: &[pb::Question],
    answers: &[pb::Answer],
    violations: &mut jamaa_server::status::FieldViolations,
) -> BTreeMap<usize, pb::Answer> {
    let mut stored = BTreeMap::new();
    let by_question: HashMap<i32, &pb::Answer> = answers
        .iter()
        .map(|answer| (answer.question_index, answer))
        .collect();
    if by_question.len() != answers.len() {
        violations.add("answers", "answer each question at most once");
    }
    for answer in answers {
        if usize::try_from(answer.question_index)
            .ok()
            .filter(|index| *index < questions.len())
            .is_none()
        {
            violations.add(
                "answers",
                format!("question {} does not exist", answer.question_index),
            );
        }
    }
    for (index, question) in questions.iter().enumerate() {
        let field = format!("answers[{index}]");
        let Some(answer) = by_question.get(&(index as i32)) else {
            if question.required {
                violations.add(field, "is required");
            }
            continue;
        };
        let options = question.options.len();
        let valid_choice = |choice: &i32| usize::try_from(*choice).is_ok_and(|c| c < options);
        let problem = match QuestionKind::try_from(question.kind)
            .unwrap_or(QuestionKind::Unspecified)
        {
            QuestionKind::SingleChoice => (answer.choices.len() != 1
                || !answer.choices.iter().all(valid_choice))
            .then_some("choose exactly one of the options"),
            QuestionKind::MultipleChoice => {
                let mut unique = answer.choices.clone();
                unique.sort_unstable();
                unique.dedup();
                (answer.choices.is_empty()
                    || unique.len() != answer.choices.len()
                    || !answer.choices.iter().all(valid_choice))
                .then_some("choose one or more different options")
            }
            QuestionKind::Rating => (!(1..=5).contains(&answer.rating)).then_some("rate 1 to 5"),
            QuestionKind::FreeText => {
                let text = answer.text.trim();
                (text.is_empty() || text.chars().count() > MAX_ANSWER_CHARS)
                    .then_some("write 1 to 5,000 characters")
            }
            QuestionKind::Unspecified => Some("this question cannot be answered"),
        };
        match problem {
            Some(problem) => violations.add(field, problem),
            None => {
                stored.insert(
                    index,
                    pb::Answer {
                        question_index: index as i32,
                        choices: answer.choices.clone(),
                        rating: answer.rating,
                        text: answer.text.trim().to_string(),
                    },
                );
            }
        }
    }
    stored
}

/// The consultation operations.
pub struct Consultations {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl Consultations {
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Consultations { db, outbox }
    }

    /// Scans every `every` until `shutdown`: windows that opened or closed.
    pub fn run_scheduler(self: std::sync::Arc<Self>, every: Duration, shutdown: CancellationToken) {
        jamaa_server::run_every(every, shutdown, "consultation windows", move || {
            let consultations = self.clone();
            async move { consultations.scan(Utc::now()).await.map(|_| ()) }
        });
    }

    /// One scan at `now`: `ConsultationOpened` once for each consultation whose window has
    /// opened (and not yet closed), `ConsultationClosed` once for each whose window has closed.
    /// Each is claimed by a conditional update in the event's transaction, so several
    /// replicas scanning together emit it once. Returns (opened, closed).
    pub async fn scan(&self, now: DateTime<Utc>) -> Result<(usize, usize), Error> {
        let opening = consultation::Entity::find()
            .filter(consultation::Column::OpenedNotified.eq(false))
            .filter(consultation::Column::OpenAt.lte(now))
            .filter(consultation::Column::CloseAt.gt(now))
            .limit(200)
            .all(&self.db)
            .await?;
        let mut opened = 0;
        for row in opening {
            let txn = self.db.begin().await?;
            let claimed = consultation::Entity::update_many()
                .col_expr(consultation::Column::OpenedNotified, Expr::value(true))
                .filter(consultation::Column::Id.eq(row.id))
                .filter(consultation::Column::OpenedNotified.eq(false))
                .exec(&txn)
                .await?;
            if claimed.rows_affected != 1 {
                txn.rollback().await?;
                continue;
            }
            self.outbox
                .add(
                    &txn,
                    format!("consultations/{}", row.id),
                    &events::ConsultationOpened {
                        consultation_id: row.id.to_string(),
                        commune_id: row.commune_id.to_string(),
                        title: row.title.clone(),
                        close_time: Some(timestamp_from_millis(row.close_at.timestamp_millis())),
                    },
                )
                .await?;
            self.outbox.commit(txn).await?;
            opened += 1;
        }
        let closing = consultation::Entity::find()
            .filter(consultation::Column::ClosedNotified.eq(false))
            .filter(consultation::Column::CloseAt.lte(now))
            .limit(200)
            .all(&self.db)
            .await?;
        let mut closed = 0;
        for row in closing {
            let responses = self.response_count(row.id).await?;
            let txn = self.db.begin().await?;
            // A consultation whose whole window passed between two scans was never announced
            // open: it is marked so, and only its closing is told.
            let claimed = consultation::Entity::update_many()
                .col_expr(consultation::Column::ClosedNotified, Expr::value(true))
                .col_expr(consultation::Column::OpenedNotified, Expr::value(true))
                .filter(consultation::Column::Id.eq(row.id))
                .filter(consultation::Column::ClosedNotified.eq(false))
                .exec(&txn)
                .await?;
            if claimed.rows_affected != 1 {
                txn.rollback().await?;
                continue;
            }
            self.outbox
                .add(
                    &txn,
                    format!("consultations/{}", row.id),
                    &events::ConsultationClosed {
                        consultation_id: row.id.to_string(),
                        commune_id: row.commune_id.to_string(),
                        title: row.title.clone(),
                        created_by: row.created_by.to_string(),
                        response_count: responses,
                    },
                )
                .await?;
            self.outbox.commit(txn).await?;
            closed += 1;
        }
        Ok((opened, closed))
    }

    pub async fn create(&self, new: NewConsultation) -> Result<consultation::Model, Error> {
        let questions = serde_json::to_string(&new.questions)
            .map_err(|error| Error::Internal(format!("cannot encode questions: {error}")))?;
        Ok(consultation::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            title: Set(new.title),
            description: Set(new.description),
            questions: Set(questions),
            open_at: Set(new.open_at),
            close_at: Set(new.close_at),
            min_assurance: Set(new.min_assurance),
            free_text_public: Set(new.free_text_public),
            created_by: Set(new.created_by),
            created_at: Set(Utc::now()),
            opened_notified: Set(false),
            closed_notified: Set(false),
        }
        .insert(&self.db)
        .await?)
    }

    pub async fn get(&self, commune_id: Uuid, id: Uuid) -> Result<consultation::Model, Error> {
        consultation::Entity::find_by_id(id)
            .filter(consultation::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .ok_or(Error::ConsultationNotFound(id))
    }

    pub async fn list(&self, commune_id: Uuid) -> Result<Vec<consultation::Model>, Error> {
        Ok(consultation::Entity::find()
            .filter(consultation::Column::CommuneId.eq(commune_id))
            .order_by_desc(consultation::Column::Id)
            .limit(200)
            .all(&self.db)
            .await?)
    }

    /// Records a citizen's one response (already checked); a second one is refused.
    pub async fn respond(
        &self,
        consultation: &consultation::Model,
        citizen_id: Uuid,
        answers: BTreeMap<usize, pb::Answer>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if now < consultation.open_at || now > consultation.close_at {
            return Err(Error::NotCollecting(
                "this consultation is not open now".into(),
            ));
        }
        let answers: Vec<pb::Answer> = answers.into_values().collect();
        let json = serde_json::to_string(&answers)
            .map_err(|error| Error::Internal(format!("cannot encode answers: {error}")))?;
        let inserted = consultation_response::ActiveModel {
            consultation_id: Set(consultation.id),
            citizen_id: Set(citizen_id),
            answers: Set(json),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                Err(Error::AlreadyResponded)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// How many responses a consultation has.
    pub async fn response_count(&self, consultation_id: Uuid) -> Result<i64, Error> {
        let count = consultation_response::Entity::find()
            .filter(consultation_response::Column::ConsultationId.eq(consultation_id))
            .count(&self.db)
            .await?;
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }

    /// Every response, oldest first.
    pub async fn responses(
        &self,
        consultation_id: Uuid,
    ) -> Result<Vec<(consultation_response::Model, Vec<pb::Answer>)>, Error> {
        let rows = consultation_response::Entity::find()
            .filter(consultation_response::Column::ConsultationId.eq(consultation_id))
            .order_by_asc(consultation_response::Column::CreatedAt)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let answers: Vec<pb::Answer> = serde_json::from_str(&row.answers)
                    .map_err(|error| Error::Internal(format!("unreadable answers: {error}")))?;
                Ok((row, answers))
            })
            .collect()
    }

    /// The live results; free-text answers only when `with_texts`.
    pub async fn results(
        &self,
        consultation: &consultation::Model,
        questions: &[pb::Question],
        with_texts: bool,
    ) -> Result<(i64, Vec<QuestionResult>), Error> {
        let responses = self.responses(consultation.id).await?;
        let mut results: Vec<QuestionResult> = questions
            .iter()
            .map(|question| QuestionResult {
                option_counts: vec![0; question.options.len()],
                ..Default::default()
            })
            .collect();
        for (_, answers) in &responses {
            for answer in answers {
                let Some(result) = usize::try_from(answer.question_index)
                    .ok()
                    .and_then(|index| results.get_mut(index))
                else {
                    continue;
                };
                result.answered += 1;
                for choice in &answer.choices {
                    if let Some(count) = usize::try_from(*choice)
                        .ok()
                        .and_then(|choice| result.option_counts.get_mut(choice))
                    {
                        *count += 1;
                    }
                }
                if (1..=5).contains(&answer.rating) {
                    result.rating_counts[(answer.rating - 1) as usize] += 1;
                }
                if with_texts && !answer.text.is_empty() {
                    result.texts.push(answer.text.clone());
                }
            }
        }
        Ok((i64::try_from(responses.len()).unwrap_or(i64::MAX), results))
    }
}

/// The questions stored with a consultation.
pub fn questions_of(consultation: &consultation::Model) -> Result<Vec<pb::Question>, Error> {
    serde_json::from_str(&consultation.questions)
        .map_err(|error| Error::Internal(format!("unreadable questions: {error}")))
}

/// Every response as CSV: one line per response, one column per question (choices as option
/// texts joined by " | ").
pub fn responses_csv(
    questions: &[pb::Question],
    responses: &[(consultation_response::Model, Vec<pb::Answer>)],
) -> String {
    let quote = |value: &str| {
        if value.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value.to_string()
        }
    };
    let mut csv = String::from("response_time");
    for question in questions {
        csv.push(',');
        csv.push_str(&quote(&question.text));
    }
    csv.push_str("\r\n");
    for (row, answers) in responses {
        csv.push_str(&row.created_at.to_rfc3339());
        for (index, question) in questions.iter().enumerate() {
            csv.push(',');
            let Some(answer) = answers.iter().find(|a| a.question_index == index as i32) else {
                continue;
            };
            let cell =
                match QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified) {
                    QuestionKind::SingleChoice | QuestionKind::MultipleChoice => answer
                        .choices
                        .iter()
                        .filter_map(|choice| question.options.get(usize::try_from(*choice).ok()?))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" | "),
                    QuestionKind::Rating => answer.rating.to_string(),
                    _ => answer.text.clone(),
                };
            csv.push_str(&quote(&cell));
        }
        csv.push_str("\r\n");
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamaa_server::status::FieldViolations;

    fn questions() -> Vec<pb::Question> {
        vec![
            pb::Question {
                text: "Quel jour pour le marché ?".into(),
                kind: QuestionKind::SingleChoice as i32,
                options: vec!["Samedi".into(), "Dimanche".into()],
                required: true,
            },
            pb::Question {
                text: "Note du service".into(),
                kind: QuestionKind::Rating as i32,
                options: vec![],
                required: false,
            },
        ]
    }

    #[test]
    fn answers_are_checked_against_the_questions() {
        let mut violations = FieldViolations::new();
        let stored = check_answers(
            &questions(),
            &[pb::Answer {
                question_index: 0,
                choices: vec![1],
                ..Default::default()
            }],
            &mut violations,
        );
        assert!(violations.is_empty());
        assert_eq!(stored.len(), 1);
        let mut violations = FieldViolations::new();
        check_answers(
            &questions(),
            &[pb::Answer {
                question_index: 1,
                rating: 9,
                ..Default::default()
            }],
            &mut violations,
        );
        // Question 0 is required and missing; the rating is out of range.
        let status = violations.into_status();
        let details = tonic_types::StatusExt::get_error_details(&status);
        let fields: Vec<String> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["answers[0]", "answers[1]"]);
    }

    #[test]
    fn rating_means_average_the_ratings() {
        let result = QuestionResult {
            rating_counts: [0, 1, 0, 2, 1],
            ..Default::default()
        };
        assert_eq!(result.rating_mean(), Some((2.0 + 8.0 + 5.0) / 4.0));
        assert_eq!(QuestionResult::default().rating_mean(), None);
    }
}
