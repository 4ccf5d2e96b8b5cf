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

use crate::comments::{self, CommentView, Comments};
use crate::consultations::{
    Consultations, NewConsultation, check_answers, check_questions, questions_of, responses_csv,
};
use crate::domain::{self, PetitionBody, PetitionStatus, PetitionTitle};
use crate::error::Error;
use crate::lifecycle::Admissibility;
use crate::petitions::{Author, NewPetition, PetitionView, Petitions};
use crate::proposals::{self, NewProposal, ProposalView, Proposals};
use crate::results::{self, ResultView, Results};
use crate::storage::consultation;

pub struct ParticipationGrpc {
    petitions: Arc<Petitions>,
    proposals: Arc<Proposals>,
    consultations: Arc<Consultations>,
    comments: Arc<Comments>,
    results: Arc<Results>,
}

impl ParticipationGrpc {
    pub fn new(
        petitions: Arc<Petitions>,
        proposals: Arc<Proposals>,
        consultations: Arc<Consultations>,
        comments: Arc<Comments>,
        results: Arc<Results>,
    ) -> Self {
        ParticipationGrpc {
            petitions,
            proposals,
            consultations,
            comments,
            results,
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
        let (Some(request_id), Some(title), Some(body)) = (request_id, title, body) else {
            return Err(violations.into_status());
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
        // A signature counts under law 113-14 only from an identified resident: the desk checked
        // their national ID card. (A per-commune setting of the level is the petitions issue's.)
        caller.require_assurance(AssuranceLevel::VerifiedInPerson)?;
        let citizen_id = caller.user_id;
        let petition_id = domain::parse_uuid(&request.get_ref().petition_id)
            .map_err(|description| status::invalid_argument("petition_id", description))?;
        // Residents sign: of the citizen's own commune, or of one whose desk confirmed their
        // residence there. Other communes' petitions are NOT_FOUND to them.
        let commune_id = self.petitions.commune_of(petition_id).await?;
        if !caller.resides_in(commune_id) {
            return Err(Error::PetitionNotFound(petition_id).into());
        }
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
            Ok(subject @ (pb::CommentSubject::Petition | pb::CommentSubject::Proposal)) => {
                Some(subject)
            }
            _ => {
                violations.add("result.subject", "must be PETITION or PROPOSAL");
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
}

fn result_to_proto(view: &ResultView) -> pb::WorkResult {
    let result = &view.result;
    pb::WorkResult {
        id: result.id.to_string(),
        subject: if result.subject_kind == "petition" {
            pb::CommentSubject::Petition
        } else {
            pb::CommentSubject::Proposal
        } as i32,
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
            Err("must be PETITION, PROPOSAL or CONSULTATION".into())
        }
        Ok(subject) => Ok(subject),
    }
}

fn comment_to_proto(view: &CommentView, moderator: bool) -> pb::Comment {
    let comment = &view.comment;
    let subject = match comment.subject_kind.as_str() {
        "petition" => pb::CommentSubject::Petition,
        "proposal" => pb::CommentSubject::Proposal,
        _ => pb::CommentSubject::Consultation,
    };
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
    }
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> Option<jamaa_proto::Timestamp> {
    at.map(|at| timestamp_from_millis(at.timestamp_millis()))
}
