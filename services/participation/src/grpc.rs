//! The gRPC face of participation: parse requests, check the caller, call [`Petitions`], map
//! replies.

use std::sync::Arc;

use jamaa_auth::{AssuranceLevel, Role, principal};
use jamaa_proto::participation::v1 as pb;
use jamaa_proto::participation::v1::participation_service_server::ParticipationService;
use jamaa_proto::timestamp_from_millis;
use jamaa_server::PageRequest;
use jamaa_server::status::{self, FieldViolations};
use tonic::{Request, Response, Status};

use crate::associations::{Associations, NewAssociation, parse_founding_date};
use crate::budgets::{self, BudgetView, Budgets, NewBudget, NewProject, Review, VotingRule};
use crate::comments::{self, CommentView, Comments};
use crate::commune_settings::{CommuneSettings, CommuneSettingsStore};
use crate::consultations::{
    Consultations, NewConsultation, check_answers, check_questions, questions_of, responses_csv,
};
use crate::domain::{self, PetitionBody, PetitionStatus, PetitionTitle};
use crate::error::Error;
use crate::lifecycle::Admissibility;
use crate::petitions::{Author, NewPetition, PetitionView, Petitions};
use crate::proposals::{self, NewProposal, ProposalView, Proposals};
use crate::results::{self, ResultView, Results};
use crate::storage::{association, budget_project, consultation};

/// What the handlers call: one value per area.
pub struct Parts {
    pub petitions: Arc<Petitions>,
    pub proposals: Arc<Proposals>,
    pub consultations: Arc<Consultations>,
    pub comments: Arc<Comments>,
    pub results: Arc<Results>,
    pub settings: Arc<CommuneSettingsStore>,
    pub associations: Arc<Associations>,
    pub budgets: Arc<Budgets>,
}

pub struct ParticipationGrpc {
    petitions: Arc<Petitions>,
    proposals: Arc<Proposals>,
    consultations: Arc<Consultations>,
    comments: Arc<Comments>,
    results: Arc<Results>,
    settings: Arc<CommuneSettingsStore>,
    associations: Arc<Associations>,
    budgets: Arc<Budgets>,
}

impl ParticipationGrpc {
    pub fn new(parts: Parts) -> Self {
        ParticipationGrpc {
            petitions: parts.petitions,
            proposals: parts.proposals,
            consultations: parts.consultations,
            comments: parts.comments,
            results: parts.results,
            settings: parts.settings,
            associations: parts.associations,
            budgets: parts.budgets,
        }
    }

    async fn consultation_view(
        &self,
        row: &consultation::Model,
    ) -> Result<pb::Consultation, Error> {
        let questions = questions_of(row)?;
        let count = self.consultations.response_count(row.id).await?;
        Ok(pb::Consultation {
            id: row.id.to_string(),
            commune_id: row.commune_id.to_string(),
            title: row.title.clone(),
            description: row.description.clone(),
            questions,
            open_time: Some(timestamp_from_millis(row.open_at.timestamp_millis())),
            close_time: Some(timestamp_from_millis(row.close_at.timestamp_millis())),
            min_assurance: assurance_to_proto(&row.min_assurance) as i32,
            free_text_public: row.free_text_public,
            response_count: count,
        })
    }
}

fn assurance_to_proto(stored: &str) -> jamaa_proto::identity::v1::AssuranceLevel {
    match AssuranceLevel::parse(stored) {
        Some(AssuranceLevel::ContactVerified) => {
            jamaa_proto::identity::v1::AssuranceLevel::ContactVerified
        }
        Some(AssuranceLevel::VerifiedInPerson) => {
            jamaa_proto::identity::v1::AssuranceLevel::VerifiedInPerson
        }
        _ => jamaa_proto::identity::v1::AssuranceLevel::Registered,
    }
}

fn assurance_from_proto(raw: i32) -> Result<AssuranceLevel, String> {
    use jamaa_proto::identity::v1::AssuranceLevel as P;
    match P::try_from(raw) {
        Ok(P::Unspecified | P::Registered) => Ok(AssuranceLevel::Registered),
        Ok(P::ContactVerified) => Ok(AssuranceLevel::ContactVerified),
        Ok(P::VerifiedInPerson) => Ok(AssuranceLevel::VerifiedInPerson),
        Err(_) => Err("is not a known assurance level".into()),
    }
}

#[tonic::async_trait]
impl ParticipationService for ParticipationGrpc {
    async fn create_petition(
        &self,
        request: Request<pb::CreatePetitionRequest>,
    ) -> Result<Response<pb::CreatePetitionResponse>, Status> {
        let caller = principal(&request)?.clone();
        let commune_id = caller.require_citizen()?;
        let commune_code = caller.commune_code.as_deref().ok_or_else(|| {
            Error::PermissionDenied("this action needs an account in a commune".into())
        })?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let request_id = violations.check("request_id", domain::parse_uuid(&request.request_id));
        let title = violations.check("title", PetitionTitle::parse(&request.title));
        let body = violations.check("body", PetitionBody::parse(&request.body));
        let draft = request.draft;
        let association_id = if request.association_id.is_empty() {
            None
        } else {
            violations.check(
                "association_id",
                domain::parse_uuid(&request.association_id).map(Some),
            )
        };
        let (Some(request_id), Some(title), Some(body)) = (request_id, title, body) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let association = match association_id.flatten() {
            Some(id) => {
                let min_months = self
                    .settings
                    .get(commune_id)
                    .await?
                    .association_min_age_months;
                Some(
                    self.associations
                        .filer(
                            commune_id,
                            id,
                            caller.user_id,
                            min_months,
                            chrono::Utc::now().date_naive(),
                        )
                        .await?,
                )
            }
            None => None,
        };
        let author = Author {
            user_id: caller.user_id,
            commune_id,
            commune_code,
        };
        let petition = self
            .petitions
            .create(
                author,
                NewPetition {
                    request_id,
                    title,
                    body,
                    draft,
                    association,
                },
            )
            .await?;
        Ok(Response::new(pb::CreatePetitionResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn get_petition(
        &self,
        request: Request<pb::GetPetitionRequest>,
    ) -> Result<Response<pb::GetPetitionResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let id = domain::parse_uuid(&request.get_ref().id)
            .map_err(|description| status::invalid_argument("id", description))?;
        let petition = self.petitions.get(commune_id, id).await?;
        Ok(Response::new(pb::GetPetitionResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn list_petitions(
        &self,
        request: Request<pb::ListPetitionsRequest>,
    ) -> Result<Response<pb::ListPetitionsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let page = self.petitions.list(commune_id, page).await?;
        Ok(Response::new(pb::ListPetitionsResponse {
            petitions: page.petitions.iter().map(petition_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn sign_petition(
        &self,
        request: Request<pb::SignPetitionRequest>,
    ) -> Result<Response<pb::SignPetitionResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_citizen()?;
        let citizen_id = caller.user_id;
        let petition_id = domain::parse_uuid(&request.get_ref().petition_id)
            .map_err(|description| status::invalid_argument("petition_id", description))?;
        // Residents sign: of the citizen's own commune, or of one whose desk confirmed their
        // residence there. Other communes' petitions are NOT_FOUND to them.
        let commune_id = self.petitions.commune_of(petition_id).await?;
        if !caller.resides_in(commune_id) {
            return Err(Error::PetitionNotFound(petition_id).into());
        }
        // The commune sets the level its signatories need (by default: verified in person, the
        // desk checked their national identity card).
        let level = self
            .settings
            .get(commune_id)
            .await?
            .petition_signing_assurance;
        caller.require_assurance(level)?;
        let signed = self
            .petitions
            .sign(citizen_id, commune_id, petition_id)
            .await?;
        Ok(Response::new(pb::SignPetitionResponse {
            petition: Some(petition_to_proto(&signed.petition)),
            newly_signed: signed.newly_signed,
        }))
    }

    async fn create_proposal(
        &self,
        request: Request<pb::CreateProposalRequest>,
    ) -> Result<Response<pb::CreateProposalResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let author_id = caller.user_id;
        let request = request.into_inner();
        let proposal = request.proposal.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let request_id = violations.check("request_id", domain::parse_uuid(&request.request_id));
        let title = violations.check("proposal.title", PetitionTitle::parse(&proposal.title));
        let body = violations.check("proposal.body", PetitionBody::parse(&proposal.body));
        let category = violations.check("proposal.category", parse_category(&proposal.category));
        let located = proposal.latitude != 0.0 || proposal.longitude != 0.0;
        if located && !(-90.0..=90.0).contains(&proposal.latitude) {
            violations.add("proposal.latitude", "must be between -90 and 90");
        }
        if located && !(-180.0..=180.0).contains(&proposal.longitude) {
            violations.add("proposal.longitude", "must be between -180 and 180");
        }
        let (Some(request_id), Some(title), Some(body), Some(category)) =
            (request_id, title, body, category)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .proposals
            .create(NewProposal {
                request_id,
                author_id,
                commune_id,
                title: title.as_str().to_string(),
                body: body.as_str().to_string(),
                category,
                latitude: located.then_some(proposal.latitude),
                longitude: located.then_some(proposal.longitude),
            })
            .await?;
        Ok(Response::new(pb::CreateProposalResponse {
            proposal: Some(proposal_to_proto(&created)),
        }))
    }

    async fn get_proposal(
        &self,
        request: Request<pb::GetProposalRequest>,
    ) -> Result<Response<pb::GetProposalResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        let proposal = self.proposals.get(commune_id, id).await?;
        Ok(Response::new(pb::GetProposalResponse {
            proposal: Some(proposal_to_proto(&proposal)),
        }))
    }

    async fn list_proposals(
        &self,
        request: Request<pb::ListProposalsRequest>,
    ) -> Result<Response<pb::ListProposalsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let category = Some(request.category.trim()).filter(|category| !category.is_empty());
        let (proposals, next_page_token) = self.proposals.list(commune_id, category, page).await?;
        Ok(Response::new(pb::ListProposalsResponse {
            proposals: proposals.iter().map(proposal_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn support_proposal(
        &self,
        request: Request<pb::SupportProposalRequest>,
    ) -> Result<Response<pb::SupportProposalResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id(&request.get_ref().id)?;
        let (proposal, newly_supported) = self
            .proposals
            .support(caller.user_id, commune_id, id)
            .await?;
        Ok(Response::new(pb::SupportProposalResponse {
            proposal: Some(proposal_to_proto(&proposal)),
            newly_supported,
        }))
    }

    async fn withdraw_proposal_support(
        &self,
        request: Request<pb::WithdrawProposalSupportRequest>,
    ) -> Result<Response<pb::WithdrawProposalSupportResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id(&request.get_ref().id)?;
        let proposal = self
            .proposals
            .withdraw_support(caller.user_id, commune_id, id)
            .await?;
        Ok(Response::new(pb::WithdrawProposalSupportResponse {
            proposal: Some(proposal_to_proto(&proposal)),
        }))
    }

    async fn answer_proposal(
        &self,
        request: Request<pb::AnswerProposalRequest>,
    ) -> Result<Response<pb::AnswerProposalResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&ANSWERING_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        let status = match pb::ProposalStatus::try_from(request.status) {
            Ok(status) if proposals::is_answer(status) => Some(status),
            _ => {
                violations.add(
                    "status",
                    "must be EVALUATING, ACCEPTED, REJECTED or IMPLEMENTED",
                );
                None
            }
        };
        let text = violations.check("text", bounded_text(&request.text, 10_000));
        let (Some(id), Some(status), Some(text)) = (id, status, text) else {
            return Err(violations.into_status());
        };
        let proposal = self.proposals.answer(commune_id, id, status, text).await?;
        Ok(Response::new(pb::AnswerProposalResponse {
            proposal: Some(proposal_to_proto(&proposal)),
        }))
    }

    async fn follow_proposal(
        &self,
        request: Request<pb::FollowProposalRequest>,
    ) -> Result<Response<pb::FollowProposalResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id(&request.get_ref().id)?;
        self.proposals
            .follow(caller.user_id, commune_id, id, request.get_ref().follow)
            .await?;
        Ok(Response::new(pb::FollowProposalResponse {}))
    }

    async fn create_consultation(
        &self,
        request: Request<pb::CreateConsultationRequest>,
    ) -> Result<Response<pb::CreateConsultationResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&ANSWERING_ROLES)?;
        let created_by = caller.user_id;
        let consultation = request.into_inner().consultation.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let title = violations.check(
            "consultation.title",
            PetitionTitle::parse(&consultation.title),
        );
        let description = consultation.description.trim().to_string();
        if description.chars().count() > 10_000 {
            violations.add(
                "consultation.description",
                "must have at most 10,000 characters",
            );
        }
        let questions = check_questions(&consultation.questions, &mut violations);
        let open = consultation.open_time.map(|t| t.seconds);
        let close = consultation.close_time.map(|t| t.seconds);
        let window = match (open, close) {
            (Some(open), Some(close)) if open < close => chrono::DateTime::from_timestamp(open, 0)
                .zip(chrono::DateTime::from_timestamp(close, 0)),
            _ => {
                violations.add(
                    "consultation.close_time",
                    "open_time and close_time are required, open before close",
                );
                None
            }
        };
        let min_assurance = violations.check(
            "consultation.min_assurance",
            assurance_from_proto(consultation.min_assurance),
        );
        let (Some(title), Some((open_at, close_at)), Some(min_assurance)) =
            (title, window, min_assurance)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .consultations
            .create(NewConsultation {
                commune_id,
                title: title.as_str().to_string(),
                description,
                questions,
                open_at,
                close_at,
                min_assurance: min_assurance.as_str().to_string(),
                free_text_public: consultation.free_text_public,
                created_by,
            })
            .await?;
        Ok(Response::new(pb::CreateConsultationResponse {
            consultation: Some(self.consultation_view(&created).await?),
        }))
    }

    async fn get_consultation(
        &self,
        request: Request<pb::GetConsultationRequest>,
    ) -> Result<Response<pb::GetConsultationResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        let row = self.consultations.get(commune_id, id).await?;
        Ok(Response::new(pb::GetConsultationResponse {
            consultation: Some(self.consultation_view(&row).await?),
        }))
    }

    async fn list_consultations(
        &self,
        request: Request<pb::ListConsultationsRequest>,
    ) -> Result<Response<pb::ListConsultationsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let rows = self.consultations.list(commune_id).await?;
        let mut consultations = Vec::with_capacity(rows.len());
        for row in &rows {
            consultations.push(self.consultation_view(row).await?);
        }
        Ok(Response::new(pb::ListConsultationsResponse {
            consultations,
        }))
    }

    async fn respond_to_consultation(
        &self,
        request: Request<pb::RespondToConsultationRequest>,
    ) -> Result<Response<pb::RespondToConsultationResponse>, Status> {
        let caller = principal(&request)?.clone();
        caller.require_citizen()?;
        let id = parse_id(&request.get_ref().id)?;
        // Residents of the consultation's commune (their own, or one whose desk confirmed them).
        let row = match caller.commune_id {
            Some(commune_id) => self.consultations.get(commune_id, id).await,
            None => Err(Error::ConsultationNotFound(id)),
        }?;
        if !caller.resides_in(row.commune_id) {
            return Err(Error::ConsultationNotFound(id).into());
        }
        let level = AssuranceLevel::parse(&row.min_assurance).unwrap_or(AssuranceLevel::Registered);
        caller.require_assurance(level)?;
        let questions = questions_of(&row)?;
        let mut violations = FieldViolations::new();
        let answers = check_answers(&questions, &request.get_ref().answers, &mut violations);
        violations.into_result()?;
        self.consultations
            .respond(&row, caller.user_id, answers, chrono::Utc::now())
            .await?;
        Ok(Response::new(pb::RespondToConsultationResponse {}))
    }

    async fn get_consultation_results(
        &self,
        request: Request<pb::GetConsultationResultsRequest>,
    ) -> Result<Response<pb::GetConsultationResultsResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        let row = self.consultations.get(commune_id, id).await?;
        let questions = questions_of(&row)?;
        let staff = caller.is_staff_of(commune_id);
        let (response_count, results) = self
            .consultations
            .results(&row, &questions, staff || row.free_text_public)
            .await?;
        Ok(Response::new(pb::GetConsultationResultsResponse {
            response_count,
            questions: results
                .iter()
                .enumerate()
                .map(|(index, result)| pb::QuestionResults {
                    question_index: i32::try_from(index).unwrap_or(i32::MAX),
                    answered: result.answered,
                    option_counts: result.option_counts.clone(),
                    rating_counts: result.rating_counts.to_vec(),
                    rating_mean: result.rating_mean(),
                    texts: result.texts.clone(),
                })
                .collect(),
        }))
    }

    async fn export_consultation_responses(
        &self,
        request: Request<pb::ExportConsultationResponsesRequest>,
    ) -> Result<Response<pb::ExportConsultationResponsesResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&ANSWERING_ROLES)?;
        let id = parse_id(&request.get_ref().id)?;
        let row = self.consultations.get(commune_id, id).await?;
        let questions = questions_of(&row)?;
        let responses = self.consultations.responses(row.id).await?;
        Ok(Response::new(pb::ExportConsultationResponsesResponse {
            content_type: "text/csv; charset=utf-8".into(),
            data: responses_csv(&questions, &responses).into_bytes(),
        }))
    }

    async fn add_comment(
        &self,
        request: Request<pb::AddCommentRequest>,
    ) -> Result<Response<pb::AddCommentResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.commune()?;
        let author_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let subject = violations.check("subject", parse_subject(request.subject));
        let subject_id = violations.check("subject_id", domain::parse_uuid(&request.subject_id));
        let body = violations.check("body", bounded_text(&request.body, 5000));
        let (Some(subject), Some(subject_id), Some(body)) = (subject, subject_id, body) else {
            return Err(violations.into_status());
        };
        let added = self
            .comments
            .add(commune_id, subject, subject_id, author_id, body)
            .await?;
        Ok(Response::new(pb::AddCommentResponse {
            comment: Some(comment_to_proto(&added, false)),
        }))
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.commune()?;
        let moderator = caller.require_staff(&[Role::Moderator]).is_ok();
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let subject = violations.check("subject", parse_subject(request.subject));
        let subject_id = violations.check("subject_id", domain::parse_uuid(&request.subject_id));
        let (Some(subject), Some(subject_id)) = (subject, subject_id) else {
            return Err(violations.into_status());
        };
        let comments = self
            .comments
            .list(commune_id, subject, subject_id, moderator)
            .await?;
        Ok(Response::new(pb::ListCommentsResponse {
            comments: comments
                .iter()
                .map(|comment| comment_to_proto(comment, moderator))
                .collect(),
        }))
    }

    async fn report_comment(
        &self,
        request: Request<pb::ReportCommentRequest>,
    ) -> Result<Response<pb::ReportCommentResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        self.comments.report(commune_id, id, caller.user_id).await?;
        Ok(Response::new(pb::ReportCommentResponse {}))
    }

    async fn moderate_comment(
        &self,
        request: Request<pb::ModerateCommentRequest>,
    ) -> Result<Response<pb::ModerateCommentResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::Moderator])?;
        let moderator_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        let reason = violations.check("reason", bounded_text(&request.reason, 2000));
        let (Some(id), Some(reason)) = (id, reason) else {
            return Err(violations.into_status());
        };
        let moderated = self
            .comments
            .moderate(commune_id, id, moderator_id, request.hide, reason)
            .await?;
        Ok(Response::new(pb::ModerateCommentResponse {
            comment: Some(comment_to_proto(&moderated, true)),
        }))
    }

    async fn create_result(
        &self,
        request: Request<pb::CreateResultRequest>,
    ) -> Result<Response<pb::CreateResultResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&ANSWERING_ROLES)?;
        let result = request.into_inner().result.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let subject = match pb::CommentSubject::try_from(result.subject) {
            Ok(
                subject @ (pb::CommentSubject::Petition
                | pb::CommentSubject::Proposal
                | pb::CommentSubject::BudgetProject),
            ) => Some(subject),
            _ => {
                violations.add(
                    "result.subject",
                    "must be PETITION, PROPOSAL or BUDGET_PROJECT",
                );
                None
            }
        };
        let subject_id =
            violations.check("result.subject_id", domain::parse_uuid(&result.subject_id));
        let title = violations.check("result.title", PetitionTitle::parse(&result.title));
        let description = result.description.trim().to_string();
        if description.chars().count() > 10_000 {
            violations.add("result.description", "must have at most 10,000 characters");
        }
        let (Some(subject), Some(subject_id), Some(title)) = (subject, subject_id, title) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .results
            .create(
                commune_id,
                subject,
                subject_id,
                title.as_str().to_string(),
                description,
            )
            .await?;
        Ok(Response::new(pb::CreateResultResponse {
            result: Some(result_to_proto(&created)),
        }))
    }

    async fn update_result(
        &self,
        request: Request<pb::UpdateResultRequest>,
    ) -> Result<Response<pb::UpdateResultResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&ANSWERING_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        if !(0..=100).contains(&request.progress) {
            violations.add("progress", "must be between 0 and 100");
        }
        let status = match pb::ResultStatus::try_from(request.status) {
            Ok(pb::ResultStatus::Unspecified) | Err(_) => {
                violations.add("status", "is required");
                None
            }
            Ok(status) => Some(status),
        };
        let note = violations.check("note", bounded_text(&request.note, 2000));
        let (Some(id), Some(status), Some(note)) = (id, status, note) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let updated = self
            .results
            .update(commune_id, id, request.progress, status, note)
            .await?;
        Ok(Response::new(pb::UpdateResultResponse {
            result: Some(result_to_proto(&updated)),
        }))
    }

    async fn get_result(
        &self,
        request: Request<pb::GetResultRequest>,
    ) -> Result<Response<pb::GetResultResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        let result = self.results.get(commune_id, id).await?;
        Ok(Response::new(pb::GetResultResponse {
            result: Some(result_to_proto(&result)),
        }))
    }

    async fn list_results(
        &self,
        request: Request<pb::ListResultsRequest>,
    ) -> Result<Response<pb::ListResultsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let rows = self.results.list(commune_id).await?;
        Ok(Response::new(pb::ListResultsResponse {
            results: rows
                .into_iter()
                .map(|result| {
                    result_to_proto(&ResultView {
                        result,
                        updates: Vec::new(),
                    })
                })
                .collect(),
        }))
    }

    async fn publish_petition(
        &self,
        request: Request<pb::PublishPetitionRequest>,
    ) -> Result<Response<pb::PublishPetitionResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id(&request.get_ref().id)?;
        let petition = self
            .petitions
            .publish(caller.user_id, commune_id, id)
            .await?;
        Ok(Response::new(pb::PublishPetitionResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn submit_petition(
        &self,
        request: Request<pb::SubmitPetitionRequest>,
    ) -> Result<Response<pb::SubmitPetitionResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id(&request.get_ref().id)?;
        let petition = self
            .petitions
            .submit(caller.user_id, commune_id, id)
            .await?;
        Ok(Response::new(pb::SubmitPetitionResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn review_petition(
        &self,
        request: Request<pb::ReviewPetitionRequest>,
    ) -> Result<Response<pb::ReviewPetitionResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&BUREAU_ROLES)?;
        let id = parse_id(&request.get_ref().id)?;
        let petition = self.petitions.review(commune_id, id).await?;
        Ok(Response::new(pb::ReviewPetitionResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn decide_petition_admissibility(
        &self,
        request: Request<pb::DecidePetitionAdmissibilityRequest>,
    ) -> Result<Response<pb::DecidePetitionAdmissibilityResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&BUREAU_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        let decision = if request.admissible {
            violations
                .check("session", bounded_text(&request.session, 200))
                .map(|session| Admissibility::Admissible { session })
        } else {
            violations
                .check("reasons", bounded_text(&request.reasons, 5000))
                .map(|reasons| Admissibility::Inadmissible { reasons })
        };
        let (Some(id), Some(decision)) = (id, decision) else {
            return Err(violations.into_status());
        };
        let petition = self
            .petitions
            .decide_admissibility(commune_id, id, decision)
            .await?;
        Ok(Response::new(pb::DecidePetitionAdmissibilityResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn answer_petition(
        &self,
        request: Request<pb::AnswerPetitionRequest>,
    ) -> Result<Response<pb::AnswerPetitionResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&BUREAU_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        let decision = violations.check("decision", bounded_text(&request.decision, 10_000));
        let (Some(id), Some(decision)) = (id, decision) else {
            return Err(violations.into_status());
        };
        let petition = self.petitions.answer(commune_id, id, decision).await?;
        Ok(Response::new(pb::AnswerPetitionResponse {
            petition: Some(petition_to_proto(&petition)),
        }))
    }

    async fn list_petition_signatories(
        &self,
        request: Request<pb::ListPetitionSignatoriesRequest>,
    ) -> Result<Response<pb::ListPetitionSignatoriesResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        let author = self.petitions.author_of(commune_id, id).await?;
        let secretary = caller.require_staff(&[Role::CouncilSecretary]).is_ok();
        if author != caller.user_id && !secretary {
            return Err(Error::PermissionDenied(
                "only the petition's agent and the council secretary see its signatories".into(),
            )
            .into());
        }
        let signatures = self
            .petitions
            .signatories(commune_id, id, caller.user_id)
            .await?;
        Ok(Response::new(pb::ListPetitionSignatoriesResponse {
            signatories: signatures
                .iter()
                .map(|signature| pb::Signatory {
                    citizen_id: signature.citizen_id.to_string(),
                    sign_time: Some(timestamp_from_millis(
                        signature.signed_at.timestamp_millis(),
                    )),
                })
                .collect(),
        }))
    }

    async fn get_participation_settings(
        &self,
        request: Request<pb::GetParticipationSettingsRequest>,
    ) -> Result<Response<pb::GetParticipationSettingsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let settings = self.settings.get(commune_id).await?;
        Ok(Response::new(pb::GetParticipationSettingsResponse {
            settings: Some(settings_to_proto(commune_id, &settings)),
        }))
    }

    async fn update_participation_settings(
        &self,
        request: Request<pb::UpdateParticipationSettingsRequest>,
    ) -> Result<Response<pb::UpdateParticipationSettingsResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::CommuneAdmin])?;
        let updated_by = caller.user_id;
        let settings = request.into_inner().settings.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let level = violations.check(
            "settings.petition_signing_assurance",
            required_assurance(settings.petition_signing_assurance),
        );
        let parsed = CommuneSettings {
            petition_signing_assurance: level.unwrap_or(AssuranceLevel::VerifiedInPerson),
            petition_collecting_days: settings.petition_collecting_days,
            association_min_age_months: settings.association_min_age_months,
            proposal_support_threshold: settings.proposal_support_threshold,
            comment_report_threshold: settings.comment_report_threshold,
            platform_defaults: false,
            updated_at: None,
        };
        parsed.check(&mut violations);
        violations.into_result()?;
        let saved = self.settings.set(commune_id, &parsed, updated_by).await?;
        Ok(Response::new(pb::UpdateParticipationSettingsResponse {
            settings: Some(settings_to_proto(commune_id, &saved)),
        }))
    }

    async fn register_association(
        &self,
        request: Request<pb::RegisterAssociationRequest>,
    ) -> Result<Response<pb::RegisterAssociationResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::CommuneAdmin, Role::ReceptionAgent])?;
        let registered_by = caller.user_id;
        let association = request.into_inner().association.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let name = violations.check("association.name", bounded_text(&association.name, 200));
        let number = violations.check(
            "association.registration_number",
            bounded_text(&association.registration_number, 64),
        );
        let founded = violations.check(
            "association.founding_date",
            parse_founding_date(&association.founding_date, chrono::Utc::now().date_naive()),
        );
        let representative = violations.check(
            "association.representative_id",
            domain::parse_uuid(&association.representative_id),
        );
        let (Some(name), Some(registration_number), Some(founding_date), Some(representative_id)) =
            (name, number, founded, representative)
        else {
            return Err(violations.into_status());
        };
        let registered = self
            .associations
            .register(NewAssociation {
                commune_id,
                name,
                registration_number,
                founding_date,
                representative_id,
                registered_by,
            })
            .await?;
        Ok(Response::new(pb::RegisterAssociationResponse {
            association: Some(association_to_proto(&registered)),
        }))
    }

    async fn list_associations(
        &self,
        request: Request<pb::ListAssociationsRequest>,
    ) -> Result<Response<pb::ListAssociationsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let rows = self.associations.list(commune_id).await?;
        Ok(Response::new(pb::ListAssociationsResponse {
            associations: rows.iter().map(association_to_proto).collect(),
        }))
    }

    async fn create_budget(
        &self,
        request: Request<pb::CreateBudgetRequest>,
    ) -> Result<Response<pb::CreateBudgetResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&ANSWERING_ROLES)?;
        let created_by = caller.user_id;
        let budget = request.into_inner().budget.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let title = violations.check("budget.title", PetitionTitle::parse(&budget.title));
        let description = budget.description.trim().to_string();
        if description.chars().count() > 10_000 {
            violations.add("budget.description", "must have at most 10,000 characters");
        }
        if !(1..=budgets::MAX_TOTAL_DIRHAMS).contains(&budget.total_dirhams) {
            violations.add(
                "budget.total_dirhams",
                format!(
                    "must be between 1 and {} dirhams",
                    budgets::MAX_TOTAL_DIRHAMS
                ),
            );
        }
        let rule = match pb::BudgetVotingRule::try_from(budget.voting_rule) {
            Ok(pb::BudgetVotingRule::UpToTotal) if budget.max_projects == 0 => {
                Some(VotingRule::UpToTotal)
            }
            Ok(pb::BudgetVotingRule::UpToTotal) => {
                violations.add("budget.max_projects", "is set only with the AT_MOST_K rule");
                None
            }
            Ok(pb::BudgetVotingRule::AtMostK)
                if (1..=budgets::MAX_K).contains(&budget.max_projects) =>
            {
                Some(VotingRule::AtMost(
                    usize::try_from(budget.max_projects).unwrap_or(1),
                ))
            }
            Ok(pb::BudgetVotingRule::AtMostK) => {
                violations.add(
                    "budget.max_projects",
                    format!("must be between 1 and {} with AT_MOST_K", budgets::MAX_K),
                );
                None
            }
            _ => {
                violations.add("budget.voting_rule", "must be UP_TO_TOTAL or AT_MOST_K");
                None
            }
        };
        let min_assurance = if budget.min_assurance == 0 {
            Some(AssuranceLevel::VerifiedInPerson)
        } else {
            violations.check(
                "budget.min_assurance",
                assurance_from_proto(budget.min_assurance),
            )
        };
        let (Some(title), Some(rule), Some(min_assurance)) = (title, rule, min_assurance) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .budgets
            .create(NewBudget {
                commune_id,
                title: title.as_str().to_string(),
                description,
                total_dirhams: budget.total_dirhams,
                rule,
                min_assurance,
                created_by,
            })
            .await?;
        Ok(Response::new(pb::CreateBudgetResponse {
            budget: Some(budget_to_proto(&created)),
        }))
    }

    async fn get_budget(
        &self,
        request: Request<pb::GetBudgetRequest>,
    ) -> Result<Response<pb::GetBudgetResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let id = parse_id(&request.get_ref().id)?;
        let view = self.budgets.get(commune_id, id).await?;
        Ok(Response::new(pb::GetBudgetResponse {
            budget: Some(budget_to_proto(&view)),
        }))
    }

    async fn list_budgets(
        &self,
        request: Request<pb::ListBudgetsRequest>,
    ) -> Result<Response<pb::ListBudgetsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let views = self.budgets.list(commune_id).await?;
        Ok(Response::new(pb::ListBudgetsResponse {
            budgets: views.iter().map(budget_to_proto).collect(),
        }))
    }

    async fn advance_budget_phase(
        &self,
        request: Request<pb::AdvanceBudgetPhaseRequest>,
    ) -> Result<Response<pb::AdvanceBudgetPhaseResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&ANSWERING_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        let phase = match pb::BudgetPhase::try_from(request.phase) {
            Ok(
                phase @ (pb::BudgetPhase::Reviewing
                | pb::BudgetPhase::Voting
                | pb::BudgetPhase::Results),
            ) => Some(phase),
            _ => {
                violations.add("phase", "must be REVIEWING, VOTING or RESULTS");
                None
            }
        };
        let (Some(id), Some(phase)) = (id, phase) else {
            return Err(violations.into_status());
        };
        let view = self.budgets.advance(commune_id, id, phase).await?;
        Ok(Response::new(pb::AdvanceBudgetPhaseResponse {
            budget: Some(budget_to_proto(&view)),
        }))
    }

    async fn propose_budget_project(
        &self,
        request: Request<pb::ProposeBudgetProjectRequest>,
    ) -> Result<Response<pb::ProposeBudgetProjectResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let author_id = caller.user_id;
        let request = request.into_inner();
        let project = request.project.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let budget_id = violations.check("budget_id", domain::parse_uuid(&request.budget_id));
        let request_id = violations.check("request_id", domain::parse_uuid(&request.request_id));
        let title = violations.check("project.title", PetitionTitle::parse(&project.title));
        let description = violations.check(
            "project.description",
            bounded_text(&project.description, 10_000),
        );
        if !(1..=budgets::MAX_TOTAL_DIRHAMS).contains(&project.cost_dirhams) {
            violations.add("project.cost_dirhams", "must be at least 1 dirham");
        }
        let (Some(budget_id), Some(request_id), Some(title), Some(description)) =
            (budget_id, request_id, title, description)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let proposed = self
            .budgets
            .propose(NewProject {
                budget_id,
                commune_id,
                author_id,
                request_id,
                title: title.as_str().to_string(),
                description,
                cost_dirhams: project.cost_dirhams,
            })
            .await?;
        Ok(Response::new(pb::ProposeBudgetProjectResponse {
            project: Some(project_to_proto(&proposed, false)),
        }))
    }

    async fn list_budget_projects(
        &self,
        request: Request<pb::ListBudgetProjectsRequest>,
    ) -> Result<Response<pb::ListBudgetProjectsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let budget_id = domain::parse_uuid(&request.get_ref().budget_id)
            .map_err(|description| status::invalid_argument("budget_id", description))?;
        let (view, projects) = self.budgets.projects(commune_id, budget_id).await?;
        let published = budgets::phase_from_db(&view.budget.phase) == pb::BudgetPhase::Results;
        Ok(Response::new(pb::ListBudgetProjectsResponse {
            projects: projects
                .iter()
                .map(|project| project_to_proto(project, published))
                .collect(),
        }))
    }

    async fn review_budget_project(
        &self,
        request: Request<pb::ReviewBudgetProjectRequest>,
    ) -> Result<Response<pb::ReviewBudgetProjectResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&ANSWERING_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_uuid(&request.id));
        let note = request.note.trim().to_string();
        if note.chars().count() > 2000 {
            violations.add("note", "must have at most 2,000 characters");
        }
        let review = if request.feasible {
            if !(1..=budgets::MAX_TOTAL_DIRHAMS).contains(&request.cost_dirhams) {
                violations.add("cost_dirhams", "a feasible project costs at least 1 dirham");
            }
            Review::Feasible {
                cost_dirhams: request.cost_dirhams,
                note,
            }
        } else {
            if note.is_empty() {
                violations.add("note", "give the reasons why the project is not feasible");
            }
            Review::Unfeasible { reasons: note }
        };
        let Some(id) = id else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let reviewed = self.budgets.review(commune_id, id, review).await?;
        Ok(Response::new(pb::ReviewBudgetProjectResponse {
            project: Some(project_to_proto(&reviewed, false)),
        }))
    }

    async fn cast_budget_ballot(
        &self,
        request: Request<pb::CastBudgetBallotRequest>,
    ) -> Result<Response<pb::CastBudgetBallotResponse>, Status> {
        let caller = principal(&request)?.clone();
        let commune_id = caller.require_citizen()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let budget_id = violations.check("budget_id", domain::parse_uuid(&request.budget_id));
        if request.project_ids.len() > 500 {
            violations.add("project_ids", "a ballot holds at most 500 projects");
        }
        let mut project_ids = Vec::with_capacity(request.project_ids.len());
        for (index, raw) in request.project_ids.iter().take(500).enumerate() {
            if let Some(id) =
                violations.check(&format!("project_ids[{index}]"), domain::parse_uuid(raw))
            {
                project_ids.push(id);
            }
        }
        if !budgets::distinct(&project_ids) {
            violations.add("project_ids", "names a project more than once");
        }
        let Some(budget_id) = budget_id else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let view = self.budgets.get(commune_id, budget_id).await?;
        let level = AssuranceLevel::parse(&view.budget.min_assurance)
            .unwrap_or(AssuranceLevel::VerifiedInPerson);
        caller.require_assurance(level)?;
        self.budgets
            .cast(&view.budget, caller.user_id, &project_ids)
            .await?;
        Ok(Response::new(pb::CastBudgetBallotResponse {}))
    }

    async fn get_budget_results(
        &self,
        request: Request<pb::GetBudgetResultsRequest>,
    ) -> Result<Response<pb::GetBudgetResultsResponse>, Status> {
        let commune_id = principal(&request)?.commune()?;
        let budget_id = domain::parse_uuid(&request.get_ref().budget_id)
            .map_err(|description| status::invalid_argument("budget_id", description))?;
        let (view, projects) = self.budgets.projects(commune_id, budget_id).await?;
        if budgets::phase_from_db(&view.budget.phase) != pb::BudgetPhase::Results {
            return Err(Error::BudgetPhase(
                "the results are published when the budget enters its RESULTS phase".into(),
            )
            .into());
        }
        Ok(Response::new(pb::GetBudgetResultsResponse {
            allocated_dirhams: view.budget.allocated_dirhams.unwrap_or(0),
            budget: Some(budget_to_proto(&view)),
            projects: projects
                .iter()
                .filter(|project| project.rank.is_some())
                .map(|project| project_to_proto(project, true))
                .collect(),
        }))
    }
}

fn required_assurance(raw: i32) -> Result<AssuranceLevel, String> {
    if raw == 0 {
        return Err("is required".into());
    }
    assurance_from_proto(raw)
}

fn settings_to_proto(
    commune_id: uuid::Uuid,
    settings: &CommuneSettings,
) -> pb::ParticipationSettings {
    pb::ParticipationSettings {
        commune_id: commune_id.to_string(),
        petition_signing_assurance: assurance_to_proto(settings.petition_signing_assurance.as_str())
            as i32,
        petition_collecting_days: settings.petition_collecting_days,
        association_min_age_months: settings.association_min_age_months,
        proposal_support_threshold: settings.proposal_support_threshold,
        comment_report_threshold: settings.comment_report_threshold,
        platform_defaults: settings.platform_defaults,
        update_time: time(settings.updated_at),
    }
}

fn association_to_proto(row: &association::Model) -> pb::Association {
    pb::Association {
        id: row.id.to_string(),
        commune_id: row.commune_id.to_string(),
        name: row.name.clone(),
        registration_number: row.registration_number.clone(),
        founding_date: row.founding_date.format("%Y-%m-%d").to_string(),
        representative_id: row.representative_id.to_string(),
        create_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
    }
}

fn budget_to_proto(view: &BudgetView) -> pb::Budget {
    let budget = &view.budget;
    pb::Budget {
        id: budget.id.to_string(),
        commune_id: budget.commune_id.to_string(),
        title: budget.title.clone(),
        description: budget.description.clone(),
        total_dirhams: budget.total_dirhams,
        voting_rule: budgets::rule_from_db(&budget.voting_rule) as i32,
        max_projects: budget.max_projects.unwrap_or(0),
        min_assurance: assurance_to_proto(&budget.min_assurance) as i32,
        phase: budgets::phase_from_db(&budget.phase) as i32,
        ballot_count: view.ballot_count,
        project_count: view.project_count,
        create_time: Some(timestamp_from_millis(budget.created_at.timestamp_millis())),
        phase_change_time: Some(timestamp_from_millis(
            budget.phase_changed_at.timestamp_millis(),
        )),
    }
}

/// A project; its votes, rank and selection only once the results are `published`.
fn project_to_proto(project: &budget_project::Model, published: bool) -> pb::BudgetProject {
    pb::BudgetProject {
        id: project.id.to_string(),
        budget_id: project.budget_id.to_string(),
        author_id: project.author_id.to_string(),
        title: project.title.clone(),
        description: project.description.clone(),
        cost_dirhams: project.cost_dirhams,
        status: budgets::project_status_from_db(&project.status) as i32,
        review_note: project.review_note.clone().unwrap_or_default(),
        votes: if published {
            project.votes.unwrap_or(0)
        } else {
            0
        },
        selected: published && project.selected.unwrap_or(false),
        rank: if published {
            project.rank.unwrap_or(0)
        } else {
            0
        },
        create_time: Some(timestamp_from_millis(project.created_at.timestamp_millis())),
    }
}

fn result_to_proto(view: &ResultView) -> pb::WorkResult {
    let result = &view.result;
    pb::WorkResult {
        id: result.id.to_string(),
        subject: comments::subject_from_db(&result.subject_kind) as i32,
        subject_id: result.subject_id.to_string(),
        title: result.title.clone(),
        description: result.description.clone(),
        progress: result.progress,
        status: results::status_from_db(&result.status) as i32,
        updates: view
            .updates
            .iter()
            .map(|update| pb::ResultUpdate {
                progress: update.progress,
                status: results::status_from_db(&update.status) as i32,
                note: update.note.clone(),
                update_time: Some(timestamp_from_millis(update.created_at.timestamp_millis())),
            })
            .collect(),
        create_time: Some(timestamp_from_millis(result.created_at.timestamp_millis())),
    }
}

fn parse_subject(raw: i32) -> Result<pb::CommentSubject, String> {
    match pb::CommentSubject::try_from(raw) {
        Ok(pb::CommentSubject::Unspecified) | Err(_) => {
            Err("must be PETITION, PROPOSAL, CONSULTATION or BUDGET_PROJECT".into())
        }
        Ok(subject) => Ok(subject),
    }
}

fn comment_to_proto(view: &CommentView, moderator: bool) -> pb::Comment {
    let comment = &view.comment;
    let subject = comments::subject_from_db(&comment.subject_kind);
    pb::Comment {
        id: comment.id.to_string(),
        subject: subject as i32,
        subject_id: comment.subject_id.to_string(),
        author_id: comment.author_id.to_string(),
        body: comment.body.clone(),
        status: comments::status_from_db(&comment.status) as i32,
        report_count: if moderator {
            i64::try_from(view.reports).unwrap_or(i64::MAX)
        } else {
            0
        },
        create_time: Some(timestamp_from_millis(comment.created_at.timestamp_millis())),
    }
}

/// The staff who answer proposals.
const ANSWERING_ROLES: [Role; 2] = [Role::CommuneAdmin, Role::CouncilSecretary];

fn proposal_to_proto(view: &ProposalView) -> pb::Proposal {
    let proposal = &view.proposal;
    pb::Proposal {
        id: proposal.id.to_string(),
        commune_id: proposal.commune_id.to_string(),
        author_id: proposal.author_id.to_string(),
        title: proposal.title.clone(),
        body: proposal.body.clone(),
        category: proposal.category.clone(),
        latitude: proposal.latitude.unwrap_or_default(),
        longitude: proposal.longitude.unwrap_or_default(),
        status: proposals::status_from_db(&proposal.status) as i32,
        support_count: view.support_count,
        support_threshold: proposal.support_threshold,
        answer: proposal.answer.clone().unwrap_or_default(),
        answer_time: time(proposal.answered_at),
        create_time: Some(timestamp_from_millis(
            proposal.created_at.timestamp_millis(),
        )),
    }
}

/// A category code: 1 to 64 lower-case letters, digits or dashes.
fn parse_category(raw: &str) -> Result<String, String> {
    let category = raw.trim();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if (1..=64).contains(&category.len()) && category.chars().all(allowed) {
        Ok(category.to_string())
    } else {
        Err("must be 1 to 64 lower-case letters, digits or dashes, e.g. green-spaces".into())
    }
}

/// The staff who act for the council's bureau.
const BUREAU_ROLES: [Role; 2] = [Role::CouncilSecretary, Role::CommuneAdmin];

fn parse_id(raw: &str) -> Result<uuid::Uuid, Status> {
    domain::parse_uuid(raw).map_err(|description| status::invalid_argument("id", description))
}

/// Required text, trimmed, at most `max_chars` characters.
fn bounded_text(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("is required".into());
    }
    if text.chars().count() > max_chars {
        return Err(format!("must have at most {max_chars} characters"));
    }
    Ok(text.to_string())
}

fn petition_to_proto(view: &PetitionView) -> pb::Petition {
    let petition = &view.petition;
    pb::Petition {
        id: petition.id.to_string(),
        commune_id: petition.commune_id.to_string(),
        author_id: petition.author_id.to_string(),
        title: petition.title.clone(),
        body: petition.body.clone(),
        status: PetitionStatus::parse(&petition.status)
            .map(PetitionStatus::to_proto)
            .unwrap_or(pb::PetitionStatus::Unspecified) as i32,
        signature_count: view.signature_count,
        signature_threshold: petition.signature_threshold,
        create_time: Some(timestamp_from_millis(
            petition.created_at.timestamp_millis(),
        )),
        threshold_reach_time: petition
            .threshold_reached_at
            .map(|at| timestamp_from_millis(at.timestamp_millis())),
        collect_until_time: time(petition.collect_until),
        submit_time: time(petition.submitted_at),
        decision_due_time: time(petition.decision_due_at),
        session: petition.session.clone().unwrap_or_default(),
        inadmissible_reasons: petition.inadmissible_reasons.clone().unwrap_or_default(),
        decision: petition.decision.clone().unwrap_or_default(),
        decide_time: time(petition.decided_at),
        decision_overdue: petition.overdue_notified,
        association_id: petition
            .association_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        association_name: view.association_name.clone().unwrap_or_default(),
    }
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> Option<jamaa_proto::Timestamp> {
    at.map(|at| timestamp_from_millis(at.timestamp_millis()))
}
