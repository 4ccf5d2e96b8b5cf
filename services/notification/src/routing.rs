//! Who hears of what, and how urgently: each kind of message has a topic (what preferences are
//! set by) and may be critical (security, legal deadlines: sent on the topic's default channels
//! whatever the preferences, and never held by quiet hours or digests).
//!
//! | Topic | Kinds | Critical |
//! |---|---|---|
//! | security | contact_verification_code, password_reset_code, sign_up_attempted, staff_invitation | all |
//! | requests | request_submitted, request_status_changed, request_assigned, deadline_approaching, appointment_booked, appointment_reminder; deadline_extended, deadline_breached | the last two (legal deadlines) |
//! | participation | petition_*, proposal_answered, result_updated, consultation_*, budget_phase_changed | petition_decision_overdue (the 3-month legal deadline) |
//! | announcements | the commune's announcements, the daily digest | none |

use jamaa_proto::notification::v1 as pb;

use crate::templates::Kind;

/// What a message is about, for preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    Requests,
    Participation,
    Announcements,
    Security,
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::Requests,
        Topic::Participation,
        Topic::Announcements,
        Topic::Security,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Topic::Requests => "requests",
            Topic::Participation => "participation",
            Topic::Announcements => "announcements",
            Topic::Security => "security",
        }
    }

    pub fn parse(code: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|topic| topic.code() == code)
    }

    pub fn from_proto(topic: pb::Topic) -> Option<Topic> {
        match topic {
            pb::Topic::Requests => Some(Topic::Requests),
            pb::Topic::Participation => Some(Topic::Participation),
            pb::Topic::Announcements => Some(Topic::Announcements),
            pb::Topic::Security => Some(Topic::Security),
            pb::Topic::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> pb::Topic {
        match self {
            Topic::Requests => pb::Topic::Requests,
            Topic::Participation => pb::Topic::Participation,
            Topic::Announcements => pb::Topic::Announcements,
            Topic::Security => pb::Topic::Security,
        }
    }

    /// Low-priority topics may be gathered into a daily digest.
    pub fn digestible(self) -> bool {
        matches!(self, Topic::Participation | Topic::Announcements)
    }

    /// The channels (besides the inbox) a person hears of this topic on until they choose.
    pub fn default_channels(self) -> &'static [&'static str] {
        match self {
            Topic::Requests | Topic::Participation => &[EMAIL],
            Topic::Announcements => &[],
            Topic::Security => &[EMAIL, SMS],
        }
    }
}

/// The e-mail channel's name.
pub const EMAIL: &str = "email";
/// The SMS channel's name.
pub const SMS: &str = "sms";

/// The channel named `name` (`email`, `sms`), as the API names it.
pub fn channel_to_proto(name: &str) -> pb::Channel {
    match name {
        EMAIL => pb::Channel::Email,
        SMS => pb::Channel::Sms,
        _ => pb::Channel::Unspecified,
    }
}

/// How a kind of message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub topic: Topic,
    pub critical: bool,
}

/// The route of `kind` (see the module's table).
pub fn route(kind: Kind) -> Route {
    let (topic, critical) = match kind {
        Kind::ContactVerificationCode
        | Kind::PasswordResetCode
        | Kind::SignUpAttempted
        | Kind::StaffInvitation => (Topic::Security, true),
        Kind::DeadlineExtended | Kind::DeadlineBreached => (Topic::Requests, true),
        Kind::RequestSubmitted
        | Kind::RequestStatusChanged
        | Kind::RequestAssigned
        | Kind::DeadlineApproaching
        | Kind::AppointmentBooked
        | Kind::AppointmentReminder => (Topic::Requests, false),
        Kind::PetitionDecisionOverdue => (Topic::Participation, true),
        Kind::PetitionThresholdReached
        | Kind::PetitionSubmitted
        | Kind::PetitionDecided
        | Kind::ProposalAnswered
        | Kind::ResultUpdated
        | Kind::ConsultationOpened
        | Kind::ConsultationClosed
        | Kind::BudgetPhaseChanged => (Topic::Participation, false),
        Kind::DailyDigest => (Topic::Announcements, false),
    };
    Route { topic, critical }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_is_always_critical_and_never_digested() {
        for kind in Kind::ALL {
            let route = route(kind);
            if route.topic == Topic::Security {
                assert!(route.critical, "{kind:?}");
            }
            assert!(!(route.critical && route.topic == Topic::Announcements));
        }
        assert!(!Topic::Security.digestible());
        assert!(!Topic::Requests.digestible());
    }

    #[test]
    fn topics_round_trip() {
        for topic in Topic::ALL {
            assert_eq!(Topic::parse(topic.code()), Some(topic));
            assert_eq!(Topic::from_proto(topic.to_proto()), Some(topic));
        }
    }
}
