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

use crate::domain::{self, PetitionBody, PetitionStatus, PetitionTitle};
use crate::error::Error;
use crate::lifecycle::Admissibility;
use crate::petitions::{Author, NewPetition, PetitionView, Petitions};

pub struct ParticipationGrpc {
    petitions: Arc<Petitions>,
}

impl ParticipationGrpc {
    pub fn new(petitions: Arc<Petitions>) -> Self {
        ParticipationGrpc { petitions }
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
