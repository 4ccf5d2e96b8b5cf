//! The gRPC face of desk appointments: parse, check the caller, call [`Appointments`], map.

use std::sync::Arc;

use jamaa_auth::{Role, principal};
use jamaa_proto::servicerequest::v1 as pb;
use jamaa_proto::servicerequest::v1::appointment_service_server::AppointmentService;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::LocalizedText;
use jamaa_server::status::{FieldViolations, invalid_argument};
use tonic::{Request, Response, Status};

use crate::appointments::{
    Actor, Appointments, Interval, MAX_RANGE_DAYS, NewOffice, NewSlots, opening_hours_of,
    status_from_db,
};
use crate::domain;
use crate::error::Error;
use crate::storage::{appointment, office, slot};

/// The staff roles of the desk.
const DESK_ROLES: [Role; 2] = [Role::ReceptionAgent, Role::CommuneAdmin];

/// The `AppointmentService` implementation.
pub struct AppointmentGrpc {
    appointments: Arc<Appointments>,
}

impl AppointmentGrpc {
    pub fn new(appointments: Arc<Appointments>) -> Self {
        AppointmentGrpc { appointments }
    }
}

#[tonic::async_trait]
impl AppointmentService for AppointmentGrpc {
    async fn create_office(
        &self,
        request: Request<pb::CreateOfficeRequest>,
    ) -> Result<Response<pb::CreateOfficeResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::CommuneAdmin])?;
        let commune_code = caller.commune_code.clone().ok_or_else(|| {
            Status::permission_denied("this action needs an account in a commune")
        })?;
        let office = request.into_inner().office.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let name = violations.check(
            "office.name",
            domain::parse_service_name(office.name.as_ref()),
        );
        let address = violations.check("office.address", domain::parse_address(&office.address));
        if office.opening_hours.is_empty() || office.opening_hours.len() > 28 {
            violations.add("office.opening_hours", "needs 1 to 28 intervals");
        }
        let mut hours = Vec::new();
        for (index, interval) in office.opening_hours.iter().enumerate() {
            if let Some(interval) = violations.check(
                &format!("office.opening_hours[{index}]"),
                Interval::parse(interval),
            ) {
                hours.push(interval);
            }
        }
        let (Some(name), Some(address)) = (name, address) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .appointments
            .create_office(NewOffice {
                commune_id,
                commune_code,
                name,
                address: address.unwrap_or_default(),
                opening_hours: hours,
            })
            .await?;
        Ok(Response::new(pb::CreateOfficeResponse {
            office: Some(office_to_proto(&created)?),
        }))
    }

    /// Public: no token needed.
    async fn list_offices(
        &self,
        request: Request<pb::ListOfficesRequest>,
    ) -> Result<Response<pb::ListOfficesResponse>, Status> {
        let code = request.get_ref().commune_code.trim().to_uppercase();
        if code.is_empty() {
            return Err(invalid_argument("commune_code", "is required"));
        }
        let offices = self.appointments.list_offices(&code).await?;
        Ok(Response::new(pb::ListOfficesResponse {
            offices: offices
                .iter()
                .map(office_to_proto)
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn create_slots(
        &self,
        request: Request<pb::CreateSlotsRequest>,
    ) -> Result<Response<pb::CreateSlotsResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&DESK_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let office_id = violations.check("office_id", domain::parse_id(&request.office_id));
        let service_id = violations.check("service_id", domain::parse_id(&request.service_id));
        let range = date_range(&request.start_date, &request.end_date, &mut violations);
        if !(5..=240).contains(&request.slot_minutes) {
            violations.add("slot_minutes", "must be between 5 and 240");
        }
        if !(1..=100).contains(&request.capacity) {
            violations.add("capacity", "must be between 1 and 100");
        }
        let (Some(office_id), Some(service_id), Some((start_date, end_date))) =
            (office_id, service_id, range)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .appointments
            .create_slots(NewSlots {
                commune_id,
                office_id,
                service_id,
                start_date,
                end_date,
                slot_minutes: u32::try_from(request.slot_minutes).unwrap_or(5),
                capacity: request.capacity,
            })
            .await?;
        Ok(Response::new(pb::CreateSlotsResponse {
            created_count: i32::try_from(created).unwrap_or(i32::MAX),
        }))
    }

    /// Public: no token needed.
    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let office_id = violations.check("office_id", domain::parse_id(&request.office_id));
        let service_id = violations.check("service_id", domain::parse_id(&request.service_id));
        let range = date_range(&request.start_date, &request.end_date, &mut violations);
        let (Some(office_id), Some(service_id), Some((start_date, end_date))) =
            (office_id, service_id, range)
        else {
            return Err(violations.into_status());
        };
        let slots = self
            .appointments
            .list_slots(
                office_id,
                service_id,
                start_date,
                end_date,
                request.available_only,
            )
            .await?;
        Ok(Response::new(pb::ListSlotsResponse {
            slots: slots.iter().map(slot_to_proto).collect(),
        }))
    }

    async fn book_appointment(
        &self,
        request: Request<pb::BookAppointmentRequest>,
    ) -> Result<Response<pb::BookAppointmentResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let citizen_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let appointment_id =
            violations.check("appointment_id", domain::parse_id(&request.appointment_id));
        let slot_id = violations.check("slot_id", domain::parse_id(&request.slot_id));
        let request_id =
            violations.check("request_id", domain::parse_optional_id(&request.request_id));
        let (Some(appointment_id), Some(slot_id), Some(request_id)) =
            (appointment_id, slot_id, request_id)
        else {
            return Err(violations.into_status());
        };
        let booked = self
            .appointments
            .book(appointment_id, slot_id, citizen_id, commune_id, request_id)
            .await?;
        Ok(Response::new(pb::BookAppointmentResponse {
            appointment: Some(appointment_to_proto(&booked)),
        }))
    }

    async fn move_appointment(
        &self,
        request: Request<pb::MoveAppointmentRequest>,
    ) -> Result<Response<pb::MoveAppointmentResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_citizen()?;
        let citizen_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let appointment_id =
            violations.check("appointment_id", domain::parse_id(&request.appointment_id));
        let slot_id = violations.check("slot_id", domain::parse_id(&request.slot_id));
        let (Some(appointment_id), Some(slot_id)) = (appointment_id, slot_id) else {
            return Err(violations.into_status());
        };
        let moved = self
            .appointments
            .move_to(appointment_id, slot_id, citizen_id)
            .await?;
        Ok(Response::new(pb::MoveAppointmentResponse {
            appointment: Some(appointment_to_proto(&moved)),
        }))
    }

    async fn cancel_appointment(
        &self,
        request: Request<pb::CancelAppointmentRequest>,
    ) -> Result<Response<pb::CancelAppointmentResponse>, Status> {
        let caller = principal(&request)?;
        let (actor, commune_id) = if caller.has_role(Role::Citizen) {
            (Actor::Citizen(caller.user_id), caller.require_citizen()?)
        } else {
            (
                Actor::Desk(caller.user_id),
                caller.require_staff(&DESK_ROLES)?,
            )
        };
        let id = domain::parse_id(&request.get_ref().appointment_id)
            .map_err(|problem| invalid_argument("appointment_id", problem))?;
        let cancelled = self.appointments.cancel(id, actor, commune_id).await?;
        Ok(Response::new(pb::CancelAppointmentResponse {
            appointment: Some(appointment_to_proto(&cancelled)),
        }))
    }

    async fn list_appointments(
        &self,
        request: Request<pb::ListAppointmentsRequest>,
    ) -> Result<Response<pb::ListAppointmentsResponse>, Status> {
        let caller = principal(&request)?;
        let appointments = if caller.has_role(Role::Citizen) {
            caller.require_citizen()?;
            self.appointments.list_own(caller.user_id).await?
        } else {
            let commune_id = caller.require_staff(&DESK_ROLES)?;
            let request = request.get_ref();
            let mut violations = FieldViolations::new();
            let office_id = violations.check("office_id", domain::parse_id(&request.office_id));
            let date = violations.check("date", domain::parse_date(&request.date));
            let (Some(office_id), Some(date)) = (office_id, date) else {
                return Err(violations.into_status());
            };
            self.appointments
                .list_for_office(commune_id, office_id, date)
                .await?
        };
        Ok(Response::new(pb::ListAppointmentsResponse {
            appointments: appointments.iter().map(appointment_to_proto).collect(),
        }))
    }

    async fn record_appointment_outcome(
        &self,
        request: Request<pb::RecordAppointmentOutcomeRequest>,
    ) -> Result<Response<pb::RecordAppointmentOutcomeResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&DESK_ROLES)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("appointment_id", domain::parse_id(&request.appointment_id));
        let outcome = match pb::AppointmentStatus::try_from(request.status) {
            Ok(
                status @ (pb::AppointmentStatus::Arrived
                | pb::AppointmentStatus::Served
                | pb::AppointmentStatus::NoShow),
            ) => Some(status),
            _ => {
                violations.add("status", "must be ARRIVED, SERVED or NO_SHOW");
                None
            }
        };
        let (Some(id), Some(outcome)) = (id, outcome) else {
            return Err(violations.into_status());
        };
        let recorded = self
            .appointments
            .record_outcome(id, commune_id, outcome)
            .await?;
        Ok(Response::new(pb::RecordAppointmentOutcomeResponse {
            appointment: Some(appointment_to_proto(&recorded)),
        }))
    }
}

/// A range of local dates at most [`MAX_RANGE_DAYS`] long.
fn date_range(
    start: &str,
    end: &str,
    violations: &mut FieldViolations,
) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    let start = violations.check("start_date", domain::parse_date(start))?;
    let end = violations.check("end_date", domain::parse_date(end))?;
    if end < start || (end - start).num_days() > MAX_RANGE_DAYS {
        violations.add(
            "end_date",
            format!("must be on or after start_date, at most {MAX_RANGE_DAYS} days later"),
        );
        return None;
    }
    Some((start, end))
}

fn office_to_proto(office: &office::Model) -> Result<pb::Office, Error> {
    Ok(pb::Office {
        id: office.id.to_string(),
        commune_id: office.commune_id.to_string(),
        name: Some(LocalizedText {
            ar: office.name_ar.clone(),
            fr: office.name_fr.clone(),
            en: office.name_en.clone(),
            tzm: office.name_tzm.clone(),
        }),
        address: office.address.clone(),
        opening_hours: opening_hours_of(office)?
            .into_iter()
            .map(Interval::to_proto)
            .collect(),
    })
}

fn slot_to_proto(slot: &slot::Model) -> pb::Slot {
    pb::Slot {
        id: slot.id.to_string(),
        office_id: slot.office_id.to_string(),
        service_id: slot.service_id.to_string(),
        start_time: Some(timestamp_from_millis(slot.start_at.timestamp_millis())),
        duration_minutes: slot.duration_minutes,
        capacity: slot.capacity,
        booked: slot.booked,
    }
}

fn appointment_to_proto(appointment: &appointment::Model) -> pb::Appointment {
    pb::Appointment {
        id: appointment.id.to_string(),
        slot_id: appointment.slot_id.to_string(),
        office_id: appointment.office_id.to_string(),
        service_id: appointment.service_id.to_string(),
        citizen_id: appointment.citizen_id.to_string(),
        request_id: appointment
            .request_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        start_time: Some(timestamp_from_millis(
            appointment.start_at.timestamp_millis(),
        )),
        status: status_from_db(&appointment.status) as i32,
        create_time: Some(timestamp_from_millis(
            appointment.created_at.timestamp_millis(),
        )),
        update_time: Some(timestamp_from_millis(
            appointment.updated_at.timestamp_millis(),
        )),
    }
}
