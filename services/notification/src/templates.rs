//! What notifications say, in each language: one title and one body template (minijinja) per
//! event kind and language.
//!
//! Languages: Arabic (`ar`, complete: the last resort), French (`fr`), English (`en`) and
//! Amazigh (`tzm`, Standard Moroccan Amazigh in Tifinagh), each complete for every kind. The
//! fallback chains (see [`fallback_chain`]) end in Arabic, so a commune's override in a language
//! the platform lacks, or a text a future kind has not yet been given, still reads. The
//! notification records the language it was actually written in.
//!
//! Auto-escaping is off on purpose: these are plain in-app texts that clients show as text, never
//! as HTML. A channel that produces HTML (e-mail) must use templates with escaping on.

use std::sync::LazyLock;

use jamaa_proto::participation::v1::PetitionStatus;
use jamaa_proto::servicerequest::v1::RequestStatus;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

/// What a notification is about, before it is put in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The recipient's request was received.
    RequestSubmitted { tracking_code: String },
    /// The recipient's request moved to `new_status`; `public_note` may be empty.
    RequestStatusChanged {
        tracking_code: String,
        new_status: RequestStatus,
        public_note: String,
    },
    /// The recipient's petition gathered enough signatures.
    PetitionThresholdReached {
        title: String,
        signature_count: i64,
        signature_threshold: i32,
    },
    /// A one-time code that proves the recipient's e-mail address.
    ContactVerificationCode { code: String, minutes: i64 },
    /// A one-time code that resets the recipient's password.
    PasswordResetCode { code: String, minutes: i64 },
    /// Someone tried to sign up with the recipient's e-mail address.
    SignUpAttempted,
    /// An invitation to join a commune's staff, with its token.
    StaffInvitation {
        display_name: String,
        token: String,
        days: i64,
    },
    /// The recipient's request's deadline was extended, with the reason.
    DeadlineExtended {
        tracking_code: String,
        due_date: String,
        reason: String,
    },
    /// A request was assigned to the recipient (an agent).
    RequestAssigned { tracking_code: String },
    /// A request assigned to the recipient is due soon.
    DeadlineApproaching {
        tracking_code: String,
        due_date: String,
        working_days_left: i32,
    },
    /// A request assigned to the recipient is past its due date.
    DeadlineBreached {
        tracking_code: String,
        due_date: String,
    },
    /// The council decided on the recipient's petition (admissible: `text` is the session;
    /// inadmissible: the reasons; answered: the decision).
    PetitionDecided {
        title: String,
        outcome: PetitionStatus,
        text: String,
    },
    /// The commune answered a proposal the recipient made or follows.
    ProposalAnswered {
        title: String,
        status: jamaa_proto::participation::v1::ProposalStatus,
        text: String,
    },
    /// The commune updated what it does about a petition or proposal the recipient made or
    /// follows.
    ResultUpdated {
        title: String,
        progress: i32,
        note: String,
    },
    /// The council's decision on the recipient's petition is overdue.
    PetitionDecisionOverdue { title: String },
    /// The recipient booked a desk appointment at `office`, at `start` (local time).
    AppointmentBooked {
        office: LocalizedText,
        start: String,
    },
    /// The recipient's desk appointment is near.
    AppointmentReminder {
        office: LocalizedText,
        start: String,
    },
    /// A petition the recipient filed or signed was submitted to the council; its reasoned
    /// decision is due by `due_date`.
    PetitionSubmitted { title: String, due_date: String },
    /// A consultation of the recipient's commune opened; it closes on `close_date`.
    ConsultationOpened { title: String, close_date: String },
    /// A consultation the recipient created closed with `responses` responses.
    ConsultationClosed { title: String, responses: i64 },
    /// A participatory budget of the recipient's commune moved to `phase`; with the results,
    /// the funded projects.
    BudgetPhaseChanged {
        title: String,
        phase: jamaa_proto::participation::v1::BudgetPhase,
        selected: Vec<String>,
    },
    /// The day's low-priority messages the recipient asked to get together: `items` is one
    /// line per message.
    DailyDigest { count: i64, items: String },
}

/// The kind of a [`Notice`]: which pair of templates it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RequestSubmitted,
    RequestStatusChanged,
    PetitionThresholdReached,
    ContactVerificationCode,
    PasswordResetCode,
    StaffInvitation,
    SignUpAttempted,
    DeadlineExtended,
    RequestAssigned,
    DeadlineApproaching,
    DeadlineBreached,
    AppointmentBooked,
    AppointmentReminder,
    PetitionDecided,
    PetitionDecisionOverdue,
    ProposalAnswered,
    ResultUpdated,
    ConsultationOpened,
    ConsultationClosed,
    BudgetPhaseChanged,
    PetitionSubmitted,
    DailyDigest,
}

impl Kind {
    /// Every kind (for tests and checks).
    pub const ALL: [Kind; 22] = [
        Kind::DailyDigest,
        Kind::PetitionSubmitted,
        Kind::ConsultationOpened,
        Kind::ConsultationClosed,
        Kind::BudgetPhaseChanged,
        Kind::ResultUpdated,
        Kind::ProposalAnswered,
        Kind::PetitionDecided,
        Kind::PetitionDecisionOverdue,
        Kind::AppointmentBooked,
        Kind::AppointmentReminder,
        Kind::DeadlineExtended,
        Kind::RequestAssigned,
        Kind::DeadlineApproaching,
        Kind::DeadlineBreached,
        Kind::SignUpAttempted,
        Kind::StaffInvitation,
        Kind::RequestSubmitted,
        Kind::RequestStatusChanged,
        Kind::PetitionThresholdReached,
        Kind::ContactVerificationCode,
        Kind::PasswordResetCode,
    ];

    /// The kind's code, e.g. `request_status_changed` (the templates' name; the API's `kind`).
    pub fn code(self) -> &'static str {
        match self {
            Kind::RequestSubmitted => "request_submitted",
            Kind::RequestStatusChanged => "request_status_changed",
            Kind::PetitionThresholdReached => "petition_threshold_reached",
            Kind::ContactVerificationCode => "contact_verification_code",
            Kind::PasswordResetCode => "password_reset_code",
            Kind::StaffInvitation => "staff_invitation",
            Kind::SignUpAttempted => "sign_up_attempted",
            Kind::DeadlineExtended => "deadline_extended",
            Kind::RequestAssigned => "request_assigned",
            Kind::DeadlineApproaching => "deadline_approaching",
            Kind::DeadlineBreached => "deadline_breached",
            Kind::AppointmentBooked => "appointment_booked",
            Kind::AppointmentReminder => "appointment_reminder",
            Kind::PetitionDecided => "petition_decided",
            Kind::PetitionDecisionOverdue => "petition_decision_overdue",
            Kind::ProposalAnswered => "proposal_answered",
            Kind::ResultUpdated => "result_updated",
            Kind::PetitionSubmitted => "petition_submitted",
            Kind::ConsultationOpened => "consultation_opened",
            Kind::ConsultationClosed => "consultation_closed",
            Kind::BudgetPhaseChanged => "budget_phase_changed",
            Kind::DailyDigest => "daily_digest",
        }
    }
}

impl Kind {
    /// The kind whose [`Kind::code`] is `code`.
    pub fn parse(code: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.code() == code.trim())
    }
}

impl Notice {
    pub fn kind(&self) -> Kind {
        match self {
            Notice::RequestSubmitted { .. } => Kind::RequestSubmitted,
            Notice::RequestStatusChanged { .. } => Kind::RequestStatusChanged,
            Notice::PetitionThresholdReached { .. } => Kind::PetitionThresholdReached,
            Notice::ContactVerificationCode { .. } => Kind::ContactVerificationCode,
            Notice::PasswordResetCode { .. } => Kind::PasswordResetCode,
            Notice::StaffInvitation { .. } => Kind::StaffInvitation,
            Notice::SignUpAttempted => Kind::SignUpAttempted,
            Notice::DeadlineExtended { .. } => Kind::DeadlineExtended,
            Notice::RequestAssigned { .. } => Kind::RequestAssigned,
            Notice::DeadlineApproaching { .. } => Kind::DeadlineApproaching,
            Notice::DeadlineBreached { .. } => Kind::DeadlineBreached,
            Notice::AppointmentBooked { .. } => Kind::AppointmentBooked,
            Notice::AppointmentReminder { .. } => Kind::AppointmentReminder,
            Notice::PetitionDecided { .. } => Kind::PetitionDecided,
            Notice::PetitionDecisionOverdue { .. } => Kind::PetitionDecisionOverdue,
            Notice::ProposalAnswered { .. } => Kind::ProposalAnswered,
            Notice::ResultUpdated { .. } => Kind::ResultUpdated,
            Notice::PetitionSubmitted { .. } => Kind::PetitionSubmitted,
            Notice::ConsultationOpened { .. } => Kind::ConsultationOpened,
            Notice::ConsultationClosed { .. } => Kind::ConsultationClosed,
            Notice::BudgetPhaseChanged { .. } => Kind::BudgetPhaseChanged,
            Notice::DailyDigest { .. } => Kind::DailyDigest,
        }
    }
}

/// A notice put in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub title: String,
    pub body: String,
    /// The language it was written in: the one asked for, or the fallback used.
    pub language: Language,
}

/// The title and body templates of one kind in one language.
#[derive(Debug, Clone, Copy)]
struct Source {
    title: &'static str,
    body: &'static str,
}

/// The languages tried, in order, for a reader of `language`. Arabic is always last and always
/// complete, so every chain ends in a text.
pub fn fallback_chain(language: Language) -> &'static [Language] {
    match language {
        Language::Fr => &[Language::Fr, Language::Ar],
        Language::En => &[Language::En, Language::Ar],
        Language::Tzm => &[Language::Tzm, Language::Ar],
        Language::Ar | Language::Unspecified => &[Language::Ar],
    }
}

/// Puts `notice` in words for a reader of `language`, following [`fallback_chain`].
/// Fails only on a template bug (a syntax error or an undefined variable), which the unit tests
/// rule out for every kind and language.
pub fn render(notice: &Notice, language: Language) -> Result<Rendered, minijinja::Error> {
    render_for(notice, language, &[])
}

/// A commune's own wording of a kind in one language (a template override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomText {
    pub language: Language,
    pub title: String,
    pub body: String,
}

/// Like [`render`], with a commune's overrides of `notice`'s kind: in each language of the
/// reader's chain, the commune's text comes before the platform's.
pub fn render_for(
    notice: &Notice,
    language: Language,
    custom: &[CustomText],
) -> Result<Rendered, minijinja::Error> {
    let kind = notice.kind();
    let (language, title, body) = resolve_custom(kind, language, custom);
    let context = context_of(notice, language);
    Ok(Rendered {
        title: render_source(kind, &title, &context)?,
        body: render_source(kind, &body, &context)?,
        language,
    })
}

/// Renders `title` and `body` (a draft, or an override being saved) for `kind`'s sample data in
/// `language`: the error says what is wrong with them.
pub fn render_draft(
    kind: Kind,
    language: Language,
    title: &str,
    body: &str,
) -> Result<Rendered, minijinja::Error> {
    let context = context_of(&sample(kind), language);
    Ok(Rendered {
        title: render_source(kind, title, &context)?,
        body: render_source(kind, body, &context)?,
        language,
    })
}

/// The platform's own templates of `kind` in `language`, if it has some (Arabic always).
pub fn default_text(kind: Kind, language: Language) -> Option<(&'static str, &'static str)> {
    let source = match language {
        Language::Ar | Language::Unspecified => Some(arabic(kind)),
        other => translation(kind, other),
    }?;
    Some((source.title, source.body))
}

/// The placeholders `kind`'s templates may use.
pub fn placeholders(kind: Kind) -> Vec<String> {
    let context = context_of(&sample(kind), Language::Ar);
    match context.try_iter() {
        Ok(keys) => keys.map(|key| key.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The first language of the reader's chain with a text (the commune's, else the platform's).
fn resolve_custom(
    kind: Kind,
    language: Language,
    custom: &[CustomText],
) -> (Language, String, String) {
    for candidate in fallback_chain(language) {
        if let Some(text) = custom.iter().find(|text| text.language == *candidate) {
            return (*candidate, text.title.clone(), text.body.clone());
        }
        if let Some((title, body)) = default_text(kind, *candidate) {
            return (*candidate, title.to_string(), body.to_string());
        }
    }
    let source = arabic(kind);
    (
        Language::Ar,
        source.title.to_string(),
        source.body.to_string(),
    )
}

/// The values `notice` offers its templates, worded for readers of `language`.
fn context_of(notice: &Notice, language: Language) -> Value {
    match notice {
        Notice::RequestSubmitted { tracking_code } => context! { tracking_code => tracking_code },
        Notice::RequestStatusChanged {
            tracking_code,
            new_status,
            public_note,
        } => context! {
            tracking_code => tracking_code,
            status => status_name(*new_status, language),
            note => public_note.trim(),
        },
        Notice::PetitionThresholdReached {
            title,
            signature_count,
            signature_threshold,
        } => context! {
            title => title.trim(),
            count => *signature_count,
            threshold => *signature_threshold,
        },
        Notice::ContactVerificationCode { code, minutes }
        | Notice::PasswordResetCode { code, minutes } => context! {
            code => code,
            minutes => *minutes,
        },
        Notice::SignUpAttempted => context! {},
        Notice::StaffInvitation {
            display_name,
            token,
            days,
        } => context! {
            name => display_name.trim(),
            token => token,
            days => *days,
        },
        Notice::DeadlineExtended {
            tracking_code,
            due_date,
            reason,
        } => context! {
            tracking_code => tracking_code,
            due_date => due_date,
            reason => reason.trim(),
        },
        Notice::RequestAssigned { tracking_code } => context! { tracking_code => tracking_code },
        Notice::DeadlineApproaching {
            tracking_code,
            due_date,
            working_days_left,
        } => context! {
            tracking_code => tracking_code,
            due_date => due_date,
            days => *working_days_left,
        },
        Notice::DeadlineBreached {
            tracking_code,
            due_date,
        } => context! {
            tracking_code => tracking_code,
            due_date => due_date,
        },
        Notice::PetitionDecided {
            title,
            outcome,
            text,
        } => context! {
            title => title.trim(),
            outcome => petition_outcome(*outcome),
            text => text.trim(),
        },
        Notice::PetitionDecisionOverdue { title } => context! { title => title.trim() },
        Notice::PetitionSubmitted { title, due_date } => context! {
            title => title.trim(),
            due_date => due_date,
        },
        Notice::ConsultationOpened { title, close_date } => context! {
            title => title.trim(),
            close_date => close_date,
        },
        Notice::ConsultationClosed { title, responses } => context! {
            title => title.trim(),
            responses => *responses,
        },
        Notice::BudgetPhaseChanged {
            title,
            phase,
            selected,
        } => context! {
            title => title.trim(),
            phase => budget_phase(*phase),
            selected => selected.join(", "),
        },
        Notice::ResultUpdated {
            title,
            progress,
            note,
        } => context! {
            title => title.trim(),
            progress => *progress,
            note => note.trim(),
        },
        Notice::ProposalAnswered {
            title,
            status,
            text,
        } => context! {
            title => title.trim(),
            status => proposal_status_name(*status, language),
            text => text.trim(),
        },
        Notice::AppointmentBooked { office, start }
        | Notice::AppointmentReminder { office, start } => context! {
            office => in_language(office, language),
            start => start,
        },
        Notice::DailyDigest { count, items } => context! {
            count => *count,
            items => items,
        },
    }
}

/// A proposal status as readers of `language` read it.
fn proposal_status_name(
    status: jamaa_proto::participation::v1::ProposalStatus,
    language: Language,
) -> &'static str {
    use jamaa_proto::participation::v1::ProposalStatus as S;
    match (language, status) {
        (Language::Fr, S::Evaluating) => "à l'étude",
        (Language::Fr, S::Accepted) => "acceptée",
        (Language::Fr, S::Rejected) => "refusée",
        (Language::Fr, S::Implemented) => "réalisée",
        (Language::Fr, _) => "en examen",
        (Language::En, S::Evaluating) => "being evaluated",
        (Language::En, S::Accepted) => "accepted",
        (Language::En, S::Rejected) => "rejected",
        (Language::En, S::Implemented) => "implemented",
        (Language::En, _) => "under review",
        (Language::Tzm, S::Evaluating) => "ⵖ ⵓⵙⵏⵇⴷ",
        (Language::Tzm, S::Accepted) => "ⵉⵜⵜⵓⵇⴱⵍ",
        (Language::Tzm, S::Rejected) => "ⵉⵜⵜⵓⴰⴳⵢ",
        (Language::Tzm, S::Implemented) => "ⵉⵜⵜⵓⵙⴽⴰⵔ",
        (Language::Tzm, _) => "ⵖ ⵓⵙⵙⵉⴼⵔⴽ",
        (_, S::Evaluating) => "قيد الدراسة",
        (_, S::Accepted) => "مقبول",
        (_, S::Rejected) => "مرفوض",
        (_, S::Implemented) => "منجز",
        (_, _) => "قيد المراجعة",
    }
}

/// The outcome's name in the templates.
fn petition_outcome(outcome: PetitionStatus) -> &'static str {
    match outcome {
        PetitionStatus::Admissible => "admissible",
        PetitionStatus::Inadmissible => "inadmissible",
        _ => "answered",
    }
}

fn budget_phase(phase: jamaa_proto::participation::v1::BudgetPhase) -> &'static str {
    use jamaa_proto::participation::v1::BudgetPhase;
    match phase {
        BudgetPhase::Reviewing => "reviewing",
        BudgetPhase::Voting => "voting",
        BudgetPhase::Results => "results",
        BudgetPhase::Proposing | BudgetPhase::Unspecified => "proposing",
    }
}

/// `text` in exactly `language`, if it is given.
pub fn in_language_exact(text: &LocalizedText, language: Language) -> Option<String> {
    let value = match language {
        Language::Fr => text.fr.trim(),
        Language::En => text.en.trim(),
        Language::Tzm => text.tzm.trim(),
        Language::Ar | Language::Unspecified => text.ar.trim(),
    };
    (!value.is_empty()).then(|| value.to_string())
}

/// The first language of `language`'s chain (then French, English, Amazigh) in which `text` is
/// given, and the text in it.
pub fn localized(text: &LocalizedText, language: Language) -> (Language, String) {
    fallback_chain(language)
        .iter()
        .chain(&[Language::Fr, Language::En, Language::Tzm])
        .find_map(|candidate| in_language_exact(text, *candidate).map(|text| (*candidate, text)))
        .unwrap_or((Language::Ar, String::new()))
}

/// `text` in `language`, falling back along its chain, then to any language given.
fn in_language(text: &LocalizedText, language: Language) -> String {
    let of = |language: Language| match language {
        Language::Fr => text.fr.trim(),
        Language::En => text.en.trim(),
        Language::Tzm => text.tzm.trim(),
        Language::Ar | Language::Unspecified => text.ar.trim(),
    };
    fallback_chain(language)
        .iter()
        .chain(&[Language::Fr, Language::En, Language::Tzm])
        .map(|language| of(*language))
        .find(|text| !text.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// The environment every template renders in: no auto-escaping (plain text, see the module
/// docs), and a variable a template names but the context lacks is an error, not an empty string.
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment
});

fn render_source(kind: Kind, source: &str, context: &Value) -> Result<String, minijinja::Error> {
    ENVIRONMENT.render_named_str(kind.code(), source, context)
}

/// The Arabic templates: complete, the end of every fallback chain.
fn arabic(kind: Kind) -> Source {
    match kind {
        Kind::RequestSubmitted => Source {
            title: "تم استلام طلبكم",
            body: "تم استلام طلبكم رقم {{ tracking_code }}، وسنخبركم بكل تقدم في معالجته.",
        },
        Kind::RequestStatusChanged => Source {
            title: "تحديث بخصوص طلبكم {{ tracking_code }}",
            body: "حالة طلبكم {{ tracking_code }} الآن: {{ status }}.\
                   {% if note %} ملاحظة من الجماعة: {{ note }}{% endif %}",
        },
        Kind::PetitionThresholdReached => Source {
            title: "بلغت عريضتكم عتبة التوقيعات",
            body: "بلغت عريضتكم «{{ title }}» {{ count }} توقيعا (العتبة: {{ threshold }}).",
        },
        Kind::ContactVerificationCode => Source {
            title: "رمز التحقق: {{ code }}",
            body: "رمز التحقق من عنوانكم الإلكتروني هو {{ code }}. صالح لمدة {{ minutes }} دقائق. \
                   لا تشاركوه مع أي أحد، فالجماعة لن تطلبه منكم أبدا.",
        },
        Kind::SignUpAttempted => Source {
            title: "محاولة إنشاء حساب بعنوانكم الإلكتروني",
            body: "حاول شخص إنشاء حساب جديد على منصة الجماعة بعنوانكم الإلكتروني، ولديكم حساب به \
                   من قبل، فلم يُنشأ أي حساب. إن كنتم أنتم، سجلوا الدخول أو أعيدوا تعيين كلمة \
                   المرور؛ وإلا فتجاهلوا هذه الرسالة.",
        },
        Kind::StaffInvitation => Source {
            title: "دعوة للانضمام إلى موظفي الجماعة",
            body: "مرحبا {{ name }}، أنتم مدعوون للانضمام إلى موظفي جماعتكم على منصة الجماعة. \
                   رمز الدعوة: {{ token }} (صالح لمدة {{ days }} أيام). اختاروا «قبول دعوة» \
                   وأدخلوا الرمز ثم كلمة المرور التي تختارونها.",
        },
        Kind::DeadlineExtended => Source {
            title: "تمديد أجل طلبكم {{ tracking_code }}",
            body: "تم تمديد أجل الرد على طلبكم {{ tracking_code }} إلى {{ due_date }}. السبب: {{ reason }}",
        },
        Kind::RequestAssigned => Source {
            title: "أسند إليكم الطلب {{ tracking_code }}",
            body: "أسند إليكم الطلب {{ tracking_code }} للمعالجة.",
        },
        Kind::DeadlineApproaching => Source {
            title: "أجل الطلب {{ tracking_code }} يقترب",
            body: "يحل أجل الرد على الطلب {{ tracking_code }} في {{ due_date }} (بقي {{ days }} يوم عمل).",
        },
        Kind::DeadlineBreached => Source {
            title: "تجاوز أجل الطلب {{ tracking_code }}",
            body: "انقضى أجل الرد على الطلب {{ tracking_code }} في {{ due_date }}، وأحيل على رئيس القسم.",
        },
        Kind::PetitionDecided => Source {
            title: "قرار بخصوص عريضتكم «{{ title }}»",
            body: "{% if outcome == 'admissible' %}قُبلت عريضتكم «{{ title }}» وأدرجت في جدول أعمال {{ text }}.\
                   {% elif outcome == 'inadmissible' %}رُفضت عريضتكم «{{ title }}». الأسباب: {{ text }}\
                   {% else %}قرار المجلس بخصوص عريضتكم «{{ title }}»: {{ text }}{% endif %}",
        },
        Kind::ResultUpdated => Source {
            title: "تقدم «{{ title }}»: {{ progress }}%",
            body: "«{{ title }}» بلغ {{ progress }}%. {{ note }}",
        },
        Kind::ProposalAnswered => Source {
            title: "رد الجماعة على المقترح «{{ title }}»",
            body: "حالة المقترح «{{ title }}» الآن: {{ status }}. {{ text }}",
        },
        Kind::PetitionSubmitted => Source {
            title: "أودعت العريضة «{{ title }}» لدى المجلس",
            body: "أودعت العريضة «{{ title }}» لدى مجلس الجماعة. ينتظر قرار معلل قبل {{ due_date }}.",
        },
        Kind::ConsultationOpened => Source {
            title: "استشارة جديدة: «{{ title }}»",
            body: "فتحت جماعتكم استشارة «{{ title }}». شاركوا برأيكم قبل {{ close_date }}.",
        },
        Kind::ConsultationClosed => Source {
            title: "انتهت الاستشارة «{{ title }}»",
            body: "أغلقت الاستشارة «{{ title }}» بعدد {{ responses }} من الأجوبة. النتائج متاحة الآن.",
        },
        Kind::DailyDigest => Source {
            title: "ملخص اليوم: {{ count }} رسائل",
            body: "رسائل اليوم من جماعتكم:\n{{ items }}\nتجدونها كاملة في صندوق رسائلكم على المنصة.",
        },
        Kind::BudgetPhaseChanged => Source {
            title: "الميزانية التشاركية «{{ title }}»",
            body: "{% if phase == 'reviewing' %}انتهى تقديم المشاريع في الميزانية التشاركية «{{ title }}»، وتدرس الجماعة الآن جدواها وكلفتها.\
                   {% elif phase == 'voting' %}التصويت مفتوح في الميزانية التشاركية «{{ title }}»: اختاروا المشاريع التي تريدون تمويلها.\
                   {% elif phase == 'results' %}نتائج الميزانية التشاركية «{{ title }}» منشورة. المشاريع الممولة: {{ selected }}\
                   {% else %}الميزانية التشاركية «{{ title }}» مفتوحة لاقتراح المشاريع.{% endif %}",
        },
        Kind::PetitionDecisionOverdue => Source {
            title: "تأخر قرار المجلس بخصوص عريضتكم",
            body: "مرت ثلاثة أشهر على إيداع عريضتكم «{{ title }}» دون قرار معلل من المجلس.",
        },
        Kind::AppointmentBooked => Source {
            title: "تم حجز موعدكم",
            body: "موعدكم في {{ office }} يوم {{ start }}. أحضروا البطاقة الوطنية والوثائق المطلوبة.",
        },
        Kind::AppointmentReminder => Source {
            title: "تذكير بموعدكم",
            body: "نذكركم بموعدكم في {{ office }} يوم {{ start }}.",
        },
        Kind::PasswordResetCode => Source {
            title: "رمز إعادة تعيين كلمة المرور: {{ code }}",
            body: "رمز إعادة تعيين كلمة المرور هو {{ code }}. صالح لمدة {{ minutes }} دقيقة. \
                   إن لم تطلبوه، تجاهلوا هذه الرسالة: كلمة مروركم لم تتغير.",
        },
    }
}

/// The Amazigh templates (Standard Moroccan Amazigh, in Tifinagh), complete like the Arabic.
/// Written by the team, not by a certified translator: see the README's note on reviewing them
/// with the commune's Amazigh-speaking staff; a commune can override any of them.
fn amazigh(kind: Kind) -> Source {
    match kind {
        Kind::RequestSubmitted => Source {
            title: "ⵉⵍⴽⵎ-ⴷ ⵓⵙⵓⵜⵔ ⵏⵏⵓⵏ",
            body: "ⵉⵍⴽⵎ-ⴷ ⵖⵓⵔⵏⵖ ⵓⵙⵓⵜⵔ ⵏⵏⵓⵏ {{ tracking_code }}. ⴰⴷ ⴰⵡⵏ ⵏⵙⵙⴼⵍⴷ ⵙ ⴽⵓ ⴰⵙⵓⵔⵉⴼ \
                   ⵏ ⵓⵙⵎⵙⵙⴰⵔ ⵏⵏⵙ.",
        },
        Kind::RequestStatusChanged => Source {
            title: "ⴰⵙⵎⴰⵢⵏⵓ ⵏ ⵓⵙⵓⵜⵔ ⵏⵏⵓⵏ {{ tracking_code }}",
            body: "ⴰⴷⴷⴰⴷ ⵏ ⵓⵙⵓⵜⵔ ⵏⵏⵓⵏ {{ tracking_code }} ⵖⵉⵍⴰ: {{ status }}.\
                   {% if note %} ⴰⵡⴰⵍ ⵙⴳ ⵜⵊⵎⴰⵄⵜ: {{ note }}{% endif %}",
        },
        Kind::PetitionThresholdReached => Source {
            title: "ⵜⵍⴽⵎ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ ⴰⵟⵟⵓⵏ ⵏ ⵉⵣⵎⵓⵍⵏ",
            body: "ⵜⵍⴽⵎ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ «{{ title }}» {{ count }} ⵏ ⵉⵣⵎⵓⵍⵏ (ⴰⵟⵟⵓⵏ ⵉⵜⵜⵓⵜⵜⵔⵏ: \
                   {{ threshold }}).",
        },
        Kind::ContactVerificationCode => Source {
            title: "ⵜⴰⵏⴰⵍⵜ ⵏ ⵓⵙⵏⵜⵎ: {{ code }}",
            body: "ⵜⴰⵏⴰⵍⵜ ⵏ ⵓⵙⵏⵜⵎ ⵏ ⵜⵏⵙⴰ ⵏⵏⵓⵏ ⵜⴳⴰ {{ code }}. ⵜⵍⵍⴰ ⵖ ⵓⵙⵎⵔⵙ ⵅⴼ {{ minutes }} \
                   ⵏ ⵜⵓⵙⴷⵉⴷⵉⵏ. ⵓⵔ ⵜⵜ ⵜⵜⴰⴽⵎ ⵉ ⵢⴰⵏ: ⵜⴰⵊⵎⴰⵄⵜ ⵓⵔ ⴰⵡⵏ ⵜⵜ ⵜⵙⵙⵓⵜⵓⵔ ⴰⴱⴷⴰ.",
        },
        Kind::PasswordResetCode => Source {
            title: "ⵜⴰⵏⴰⵍⵜ ⵏ ⵓⵙⵏⴼⵍ ⵏ ⵡⴰⵡⴰⵍ ⵏ ⵓⵣⵔⴰⵢ: {{ code }}",
            body: "ⵜⴰⵏⴰⵍⵜ ⵏ ⵓⵙⵏⴼⵍ ⵏ ⵡⴰⵡⴰⵍ ⵏ ⵓⵣⵔⴰⵢ ⵜⴳⴰ {{ code }}. ⵜⵍⵍⴰ ⵖ ⵓⵙⵎⵔⵙ ⵅⴼ \
                   {{ minutes }} ⵏ ⵜⵓⵙⴷⵉⴷⵉⵏ. ⵎⴽ ⵓⵔ ⵜⵜ ⵜⵙⵓⵜⵔⵎ, ⴰⵊⵊⴰⵜ ⵜⴰⴱⵔⴰⵜ ⴰⴷ: ⴰⵡⴰⵍ ⵏ ⵓⵣⵔⴰⵢ \
                   ⵏⵏⵓⵏ ⵓⵔ ⵉⵏⴼⵍ.",
        },
        Kind::SignUpAttempted => Source {
            title: "ⵢⴰⵏ ⵢⴰⵔⵎ ⴰⴷ ⵉⵙⵏⵓⵍⴼⵓ ⴰⵎⵉⴹⴰⵏ ⵙ ⵜⵏⵙⴰ ⵏⵏⵓⵏ",
            body: "ⵢⴰⵏ ⵢⴰⵔⵎ ⴰⴷ ⵉⵙⵏⵓⵍⴼⵓ ⴰⵎⵉⴹⴰⵏ ⴰⵎⴰⵢⵏⵓ ⵖ Jamaa ⵙ ⵜⵏⵙⴰ ⵏⵏⵓⵏ, ⵎⴰⵛ ⴷⴰⵔⵓⵏ ⵢⴰⴷ \
                   ⴰⵎⵉⴹⴰⵏ ⵙⵔⵙ: ⵓⵔ ⵉⵜⵜⵓⵙⵏⵓⵍⴼⴰ ⴽⵔⴰ ⵏ ⵓⵎⵉⴹⴰⵏ. ⵎⴽ ⵜⴳⵉⵎ ⴽⵯⵏⵉ, ⴽⵛⵎⴰⵜ ⵏⵖ ⵙⵏⴼⵍⴰⵜ \
                   ⴰⵡⴰⵍ ⵏ ⵓⵣⵔⴰⵢ; ⵎⴽ ⵓⵔ ⵜⴳⵉⵎ, ⴰⵊⵊⴰⵜ ⵜⴰⴱⵔⴰⵜ ⴰⴷ.",
        },
        Kind::StaffInvitation => Source {
            title: "ⵜⵉⵖⵔⵉ ⴰⴷ ⵜⴽⵛⵎⵎ ⵖⵔ ⵉⵎⵙⵡⵓⵔⵉⵢⵏ ⵏ ⵜⵊⵎⴰⵄⵜ",
            body: "ⴰⵣⵓⵍ {{ name }}, ⵜⵜⵓⵖⵔⴰⵎ ⴰⴷ ⵜⴽⵛⵎⵎ ⵖⵔ ⵉⵎⵙⵡⵓⵔⵉⵢⵏ ⵏ ⵜⵊⵎⴰⵄⵜ ⵏⵏⵓⵏ ⵖ Jamaa. \
                   ⵜⴰⵏⴰⵍⵜ ⵏ ⵜⵉⵖⵔⵉ: {{ token }} (ⵜⵍⵍⴰ ⵖ ⵓⵙⵎⵔⵙ ⵅⴼ {{ days }} ⵏ ⵡⵓⵙⵙⴰⵏ). ⴼⵔⵏⴰⵜ \
                   «ⵇⴱⵍ ⵜⵉⵖⵔⵉ», ⵙⴽⵛⵎⴰⵜ ⵜⴰⵏⴰⵍⵜ, ⴷⴼⴼⵉⵔ ⵙ ⴰⵡⴰⵍ ⵏ ⵓⵣⵔⴰⵢ ⵏⵏⴰ ⵜⵔⴰⵎ.",
        },
        Kind::DeadlineExtended => Source {
            title: "ⵉⵜⵜⵓⵙⵖⵣⴼ ⵓⵣⵎⵣ ⵏ ⵓⵙⵓⵜⵔ ⵏⵏⵓⵏ {{ tracking_code }}",
            body: "ⴰⵣⵎⵣ ⵏ ⵜⵔⴰⵔⵓⵜ ⵅⴼ ⵓⵙⵓⵜⵔ ⵏⵏⵓⵏ {{ tracking_code }} ⵉⵜⵜⵓⵙⵖⵣⴼ ⴰⵔ {{ due_date }}. \
                   ⵜⴰⵎⵏⵜⵉⵍⵜ: {{ reason }}",
        },
        Kind::RequestAssigned => Source {
            title: "ⵉⵜⵜⵓⴼⴽⴰ ⴰⵡⵏ ⵓⵙⵓⵜⵔ {{ tracking_code }}",
            body: "ⵉⵜⵜⵓⴼⴽⴰ ⴰⵡⵏ ⵓⵙⵓⵜⵔ {{ tracking_code }} ⴰⴷ ⵜ ⵜⵙⵎⵙⴰⵔⵎ.",
        },
        Kind::DeadlineApproaching => Source {
            title: "ⵉⵇⵔⴱ ⵓⵣⵎⵣ ⵏ ⵓⵙⵓⵜⵔ {{ tracking_code }}",
            body: "ⵜⴰⵔⴰⵔⵓⵜ ⵅⴼ ⵓⵙⵓⵜⵔ {{ tracking_code }} ⵉⵇⵇⴰⵏ ⴰⴷ ⵜⵉⵍⵉ ⴰⵔ {{ due_date }} (ⵇⵇⵉⵎⵏ \
                   {{ days }} ⵏ ⵡⵓⵙⵙⴰⵏ ⵏ ⵜⵡⵓⵔⵉ).",
        },
        Kind::DeadlineBreached => Source {
            title: "ⵉⵣⵔⵉ ⵓⵣⵎⵣ ⵏ ⵓⵙⵓⵜⵔ {{ tracking_code }}",
            body: "ⴰⵣⵎⵣ ⵏ ⵜⵔⴰⵔⵓⵜ ⵅⴼ ⵓⵙⵓⵜⵔ {{ tracking_code }} ⵉⵣⵔⵉ ⴳ {{ due_date }}; ⵉⵜⵜⵓⵣⵏ ⵖⵔ \
                   ⵓⵏⵎⵀⴰⵍ ⵏ ⵜⵙⴳⴰ.",
        },
        Kind::PetitionDecided => Source {
            title: "ⵜⴰⴳⵜⵜⴰ ⵅⴼ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ «{{ title }}»",
            body: "{% if outcome == 'admissible' %}ⵜⵜⵓⵇⴱⵍ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ «{{ title }}», ⵜⵜⵓⵙⴽⵛⵎ ⵖ \
                   ⵓⵙⵖⵉⵡⵙ ⵏ {{ text }}.{% elif outcome == 'inadmissible' %}ⵜⵜⵓⴰⴳⵢ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ \
                   «{{ title }}». ⵜⵉⵎⵏⵜⵉⵍⵉⵏ: {{ text }}{% else %}ⵜⴰⴳⵜⵜⴰ ⵏ ⵓⵙⵇⵇⵉⵎ ⵅⴼ ⵜⵙⵓⵜⵔⵜ \
                   ⵏⵏⵓⵏ «{{ title }}»: {{ text }}{% endif %}",
        },
        Kind::PetitionDecisionOverdue => Source {
            title: "ⵜⵄⵟⵟⵍ ⵜⴳⵜⵜⴰ ⵏ ⵓⵙⵇⵇⵉⵎ ⵅⴼ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ",
            body: "ⵣⵔⵉⵏ ⴽⵕⴰⴹ ⵉⵢⵢⵉⵔⵏ ⵙⴳ ⵎⴰ ⵜⵜⵓⵙⵔⵙ ⵜⵙⵓⵜⵔⵜ ⵏⵏⵓⵏ «{{ title }}», ⵓⵔ ⴷ ⵜⵓⵙⵉ ⵜⴳⵜⵜⴰ \
                   ⵏ ⵓⵙⵇⵇⵉⵎ ⵙ ⵜⵎⵏⵜⵉⵍⵉⵏ ⵏⵏⵙ.",
        },
        Kind::ProposalAnswered => Source {
            title: "ⵜⴰⵔⴰⵔⵓⵜ ⵏ ⵜⵊⵎⴰⵄⵜ ⵅⴼ ⵓⵙⵓⵎⵔ «{{ title }}»",
            body: "ⴰⴷⴷⴰⴷ ⵏ ⵓⵙⵓⵎⵔ «{{ title }}» ⵖⵉⵍⴰ: {{ status }}. {{ text }}",
        },
        Kind::ResultUpdated => Source {
            title: "ⴰⵙⵡⵓⵔ ⵏ «{{ title }}»: {{ progress }}%",
            body: "«{{ title }}» ⵉⵍⴽⵎ {{ progress }}%. {{ note }}",
        },
        Kind::PetitionSubmitted => Source {
            title: "ⵜⵜⵓⵙⵔⵙ ⵜⵙⵓⵜⵔⵜ «{{ title }}» ⵖⵔ ⵓⵙⵇⵇⵉⵎ",
            body: "ⵜⵜⵓⵙⵔⵙ ⵜⵙⵓⵜⵔⵜ «{{ title }}» ⵖⵔ ⵓⵙⵇⵇⵉⵎ ⵏ ⵜⵊⵎⴰⵄⵜ. ⵜⴰⴳⵜⵜⴰ ⵙ ⵜⵎⵏⵜⵉⵍⵉⵏ ⵏⵏⵙ \
                   ⵉⵇⵇⴰⵏ ⴰⴷ ⴷ ⵜⴰⵙ ⴷⴰⵜ ⵏ {{ due_date }}.",
        },
        Kind::ConsultationOpened => Source {
            title: "ⴰⵙⵇⵙⵉ ⴰⵎⴰⵢⵏⵓ: «{{ title }}»",
            body: "ⵜⵕⵥⵎ ⵜⵊⵎⴰⵄⵜ ⵏⵏⵓⵏ ⴰⵙⵇⵙⵉ «{{ title }}». ⴼⴽⴰⵜ ⵜⴰⵏⵏⴰⵢⵜ ⵏⵏⵓⵏ ⴷⴰⵜ ⵏ \
                   {{ close_date }}.",
        },
        Kind::ConsultationClosed => Source {
            title: "ⵉⵜⵜⵓⵇⵇⵏ ⵓⵙⵇⵙⵉ «{{ title }}»",
            body: "ⵉⵜⵜⵓⵇⵇⵏ ⵓⵙⵇⵙⵉ «{{ title }}» ⵙ {{ responses }} ⵏ ⵜⵔⴰⵔⵓⵜⵉⵏ. ⵜⵉⵢⴰⴼⵓⵜⵉⵏ ⵍⵍⴰⵏⵜ \
                   ⵖⵉⵍⴰ.",
        },
        Kind::BudgetPhaseChanged => Source {
            title: "ⵜⴰⵙⵎⵉⴷⵉⵜ ⵜⴰⵎⵙⴷⵓⴽⴽⵍⵜ «{{ title }}»",
            body: "{% if phase == 'reviewing' %}ⵉⵜⵜⵓⵇⵇⵏ ⵓⵙⵙⵓⵎⵔ ⵏ ⵉⵙⵏⴼⴰⵔⵏ ⵖ ⵜⵙⵎⵉⴷⵉⵜ ⵜⴰⵎⵙⴷⵓⴽⴽⵍⵜ \
                   «{{ title }}»; ⵜⴰⵊⵎⴰⵄⵜ ⴷⴰ ⵜⵙⵙⵉⴼⵔⴰⴽ ⴽⵓ ⴰⵙⵏⴼⴰⵔ ⴷ ⵜⵉⵙⵉⵡⵉⵏ ⵏⵏⵙ.\
                   {% elif phase == 'voting' %}ⵉⵕⵥⵎ ⵓⴼⵔⴰⵏ ⵖ ⵜⵙⵎⵉⴷⵉⵜ ⵜⴰⵎⵙⴷⵓⴽⴽⵍⵜ «{{ title }}»: \
                   ⴼⵔⵏⴰⵜ ⵉⵙⵏⴼⴰⵔⵏ ⵏⵏⴰ ⵜⵔⴰⵎ.\
                   {% elif phase == 'results' %}ⵜⵜⵓⵙⵙⵓⴼⵖⵏⵜ ⵜⵉⵢⴰⴼⵓⵜⵉⵏ ⵏ ⵜⵙⵎⵉⴷⵉⵜ ⵜⴰⵎⵙⴷⵓⴽⴽⵍⵜ \
                   «{{ title }}». ⵉⵙⵏⴼⴰⵔⵏ ⵉⵜⵜⵓⴼⵔⵏⵏ: {{ selected }}\
                   {% else %}ⵜⴰⵙⵎⵉⴷⵉⵜ ⵜⴰⵎⵙⴷⵓⴽⴽⵍⵜ «{{ title }}» ⵜⵕⵥⵎ ⵉ ⵓⵙⵙⵓⵎⵔ ⵏ ⵉⵙⵏⴼⴰⵔⵏ.{% endif %}",
        },
        Kind::AppointmentBooked => Source {
            title: "ⵉⵜⵜⵓⵙⵏⵜⵎ ⵓⵎⵙⴰⴳⴰⵔ ⵏⵏⵓⵏ",
            body: "ⴰⵎⵙⴰⴳⴰⵔ ⵏⵏⵓⵏ ⴳ {{ office }} ⴰⵙⵙ ⵏ {{ start }}. ⴰⵡⵉⵜ-ⴷ ⵜⴰⴽⴰⵔⴹⴰ ⵜⴰⵏⴰⵎⵓⵔⵜ ⴷ \
                   ⵜⵉⵙⵏⴰⴷ ⵉⵜⵜⵓⵜⵜⵔⵏ.",
        },
        Kind::AppointmentReminder => Source {
            title: "ⴰⵙⵎⵎⴽⵜⵉ ⵏ ⵓⵎⵙⴰⴳⴰⵔ ⵏⵏⵓⵏ",
            body: "ⵏⵙⵎⵎⴽⵜⵉ ⴰⵡⵏ ⴰⵎⵙⴰⴳⴰⵔ ⵏⵏⵓⵏ ⴳ {{ office }} ⴰⵙⵙ ⵏ {{ start }}.",
        },
        Kind::DailyDigest => Source {
            title: "ⴰⴳⵣⵣⵓⵍ ⵏ ⵡⴰⵙⵙ: {{ count }} ⵏ ⵜⴱⵔⴰⵜⵉⵏ",
            body: "ⵜⵉⴱⵔⴰⵜⵉⵏ ⵏ ⵡⴰⵙⵙ ⴰⴷ ⵙⴳ ⵜⵊⵎⴰⵄⵜ ⵏⵏⵓⵏ:\n{{ items }}\nⵜⵜⴰⴼⴰⵎ ⵜⵏⵜ ⵎⴰⵕⵕⴰ ⵖ \
                   ⵜⵙⵏⴷⵓⵇⵜ ⵏ ⵜⴱⵔⴰⵜⵉⵏ ⵏⵏⵓⵏ.",
        },
    }
}

/// The templates of `kind` in `language`, when that language has them.
fn translation(kind: Kind, language: Language) -> Option<Source> {
    let source = match (language, kind) {
        (Language::Fr, Kind::DailyDigest) => Source {
            title: "Résumé du jour : {{ count }} messages",
            body: "Les messages du jour de votre commune :\n{{ items }}\nVous les trouverez en entier dans votre boîte de réception.",
        },
        (Language::En, Kind::DailyDigest) => Source {
            title: "Today's digest: {{ count }} messages",
            body: "Today's messages from your commune:\n{{ items }}\nRead them in full in your inbox.",
        },
        (Language::Fr, Kind::PetitionDecided) => Source {
            title: "Décision sur votre pétition « {{ title }} »",
            body: "{% if outcome == 'admissible' %}Votre pétition « {{ title }} » est recevable : \
                   elle est inscrite à l'ordre du jour de {{ text }}.\
                   {% elif outcome == 'inadmissible' %}Votre pétition « {{ title }} » est irrecevable. \
                   Motifs : {{ text }}{% else %}Décision du conseil sur votre pétition « {{ title }} » : \
                   {{ text }}{% endif %}",
        },
        (Language::Fr, Kind::PetitionSubmitted) => Source {
            title: "Pétition « {{ title }} » déposée au conseil",
            body: "La pétition « {{ title }} » est déposée au conseil communal. Une décision \
                   motivée est due avant le {{ due_date }}.",
        },
        (Language::En, Kind::PetitionSubmitted) => Source {
            title: "Petition \"{{ title }}\" submitted to the council",
            body: "The petition \"{{ title }}\" was submitted to the communal council. A reasoned \
                   decision is due by {{ due_date }}.",
        },
        (Language::Fr, Kind::ConsultationOpened) => Source {
            title: "Nouvelle consultation : « {{ title }} »",
            body: "Votre commune ouvre la consultation « {{ title }} ». Donnez votre avis avant le \
                   {{ close_date }}.",
        },
        (Language::En, Kind::ConsultationOpened) => Source {
            title: "New consultation: \"{{ title }}\"",
            body: "Your commune opened the consultation \"{{ title }}\". Have your say before \
                   {{ close_date }}.",
        },
        (Language::Fr, Kind::ConsultationClosed) => Source {
            title: "Consultation « {{ title }} » close",
            body: "La consultation « {{ title }} » est close avec {{ responses }} réponse(s). Les \
                   résultats sont disponibles.",
        },
        (Language::En, Kind::ConsultationClosed) => Source {
            title: "Consultation \"{{ title }}\" closed",
            body: "The consultation \"{{ title }}\" closed with {{ responses }} response(s). The \
                   results are available.",
        },
        (Language::Fr, Kind::BudgetPhaseChanged) => Source {
            title: "Budget participatif « {{ title }} »",
            body: "{% if phase == 'reviewing' %}Les propositions du budget participatif « {{ title }} » \
                   sont closes : la commune étudie leur faisabilité et leur coût.\
                   {% elif phase == 'voting' %}Le vote du budget participatif « {{ title }} » est \
                   ouvert : choisissez les projets à financer.\
                   {% elif phase == 'results' %}Les résultats du budget participatif « {{ title }} » \
                   sont publiés. Projets financés : {{ selected }}\
                   {% else %}Le budget participatif « {{ title }} » est ouvert aux propositions.{% endif %}",
        },
        (Language::En, Kind::BudgetPhaseChanged) => Source {
            title: "Participatory budget \"{{ title }}\"",
            body: "{% if phase == 'reviewing' %}Proposals for the participatory budget \"{{ title }}\" \
                   are closed: the commune is checking their feasibility and cost.\
                   {% elif phase == 'voting' %}Voting is open in the participatory budget \
                   \"{{ title }}\": choose the projects to fund.\
                   {% elif phase == 'results' %}The results of the participatory budget \
                   \"{{ title }}\" are out. Funded projects: {{ selected }}\
                   {% else %}The participatory budget \"{{ title }}\" is open for proposals.{% endif %}",
        },
        (Language::Fr, Kind::ResultUpdated) => Source {
            title: "Avancement de « {{ title }} » : {{ progress }} %",
            body: "« {{ title }} » en est à {{ progress }} %. {{ note }}",
        },
        (Language::En, Kind::ResultUpdated) => Source {
            title: "Progress of \"{{ title }}\": {{ progress }}%",
            body: "\"{{ title }}\" is {{ progress }}% done. {{ note }}",
        },
        (Language::Fr, Kind::ProposalAnswered) => Source {
            title: "Réponse de la commune à la proposition « {{ title }} »",
            body: "La proposition « {{ title }} » est désormais : {{ status }}. {{ text }}",
        },
        (Language::En, Kind::ProposalAnswered) => Source {
            title: "The commune answered the proposal \"{{ title }}\"",
            body: "The proposal \"{{ title }}\" is now: {{ status }}. {{ text }}",
        },
        (Language::Fr, Kind::PetitionDecisionOverdue) => Source {
            title: "Décision en retard sur votre pétition",
            body: "Trois mois ont passé depuis le dépôt de votre pétition « {{ title }} » sans \
                   décision motivée du conseil.",
        },
        (Language::En, Kind::PetitionDecided) => Source {
            title: "Decision on your petition \"{{ title }}\"",
            body: "{% if outcome == 'admissible' %}Your petition \"{{ title }}\" is admissible: it is \
                   on the agenda of {{ text }}.{% elif outcome == 'inadmissible' %}Your petition \
                   \"{{ title }}\" is inadmissible. Reasons: {{ text }}{% else %}The council's decision \
                   on your petition \"{{ title }}\": {{ text }}{% endif %}",
        },
        (Language::En, Kind::PetitionDecisionOverdue) => Source {
            title: "The decision on your petition is overdue",
            body: "Three months have passed since your petition \"{{ title }}\" was submitted, \
                   without a reasoned decision of the council.",
        },
        (Language::Fr, Kind::AppointmentBooked) => Source {
            title: "Rendez-vous réservé",
            body: "Votre rendez-vous : {{ office }}, le {{ start }}. Apportez votre carte \
                   d'identité et les documents demandés.",
        },
        (Language::Fr, Kind::AppointmentReminder) => Source {
            title: "Rappel de rendez-vous",
            body: "Rappel : rendez-vous à {{ office }} le {{ start }}.",
        },
        (Language::En, Kind::AppointmentBooked) => Source {
            title: "Appointment booked",
            body: "Your appointment: {{ office }}, on {{ start }}. Bring your identity card and \
                   the documents asked for.",
        },
        (Language::En, Kind::AppointmentReminder) => Source {
            title: "Appointment reminder",
            body: "A reminder: your appointment at {{ office }} is on {{ start }}.",
        },
        (Language::Fr, Kind::DeadlineExtended) => Source {
            title: "Délai prolongé pour votre demande {{ tracking_code }}",
            body: "Le délai de réponse à votre demande {{ tracking_code }} est prolongé jusqu'au \
                   {{ due_date }}. Motif : {{ reason }}",
        },
        (Language::Fr, Kind::RequestAssigned) => Source {
            title: "Demande {{ tracking_code }} assignée",
            body: "La demande {{ tracking_code }} vous est assignée.",
        },
        (Language::Fr, Kind::DeadlineApproaching) => Source {
            title: "Échéance proche : {{ tracking_code }}",
            body: "La demande {{ tracking_code }} doit recevoir une réponse le {{ due_date }} \
                   ({{ days }} jour(s) ouvrable(s) restant(s)).",
        },
        (Language::Fr, Kind::DeadlineBreached) => Source {
            title: "Délai dépassé : {{ tracking_code }}",
            body: "Le délai de réponse à la demande {{ tracking_code }} a expiré le {{ due_date }} ; \
                   elle est remontée au chef de service.",
        },
        (Language::En, Kind::DeadlineExtended) => Source {
            title: "Deadline extended for your request {{ tracking_code }}",
            body: "The answer to your request {{ tracking_code }} is now due on {{ due_date }}. \
                   Reason: {{ reason }}",
        },
        (Language::En, Kind::RequestAssigned) => Source {
            title: "Request {{ tracking_code }} assigned to you",
            body: "Request {{ tracking_code }} was assigned to you.",
        },
        (Language::En, Kind::DeadlineApproaching) => Source {
            title: "Deadline near: {{ tracking_code }}",
            body: "Request {{ tracking_code }} is due on {{ due_date }} ({{ days }} working day(s) left).",
        },
        (Language::En, Kind::DeadlineBreached) => Source {
            title: "Deadline passed: {{ tracking_code }}",
            body: "Request {{ tracking_code }} was due on {{ due_date }}; it was escalated to the \
                   department head.",
        },
        (Language::Fr, Kind::RequestSubmitted) => Source {
            title: "Demande reçue",
            body: "Votre demande {{ tracking_code }} a bien été reçue. \
                   Nous vous informerons de chaque étape de son traitement.",
        },
        (Language::Fr, Kind::RequestStatusChanged) => Source {
            title: "Mise à jour de votre demande {{ tracking_code }}",
            body: "Votre demande {{ tracking_code }} est désormais {{ status }}.\
                   {% if note %} Message de la commune : {{ note }}{% endif %}",
        },
        (Language::Fr, Kind::PetitionThresholdReached) => Source {
            title: "Votre pétition a atteint le seuil",
            body: "Votre pétition « {{ title }} » a atteint {{ count }} signatures (seuil : {{ threshold }}).",
        },
        (Language::Fr, Kind::ContactVerificationCode) => Source {
            title: "Code de vérification : {{ code }}",
            body: "Votre code de vérification d'adresse e-mail est {{ code }}. Il est valable \
                   {{ minutes }} minutes. Ne le communiquez à personne : la commune ne vous le \
                   demandera jamais.",
        },
        (Language::Fr, Kind::SignUpAttempted) => Source {
            title: "Tentative d'inscription avec votre adresse",
            body: "Quelqu'un a tenté de créer un compte Jamaa avec votre adresse e-mail, qui a déjà \
                   un compte : aucun compte n'a été créé. Si c'était vous, connectez-vous ou \
                   réinitialisez votre mot de passe ; sinon, ignorez ce message.",
        },
        (Language::En, Kind::SignUpAttempted) => Source {
            title: "Someone tried to sign up with your address",
            body: "Someone tried to create a Jamaa account with your e-mail address, which already \
                   has one: no account was created. If it was you, sign in or reset your password; \
                   otherwise ignore this message.",
        },
        (Language::Fr, Kind::StaffInvitation) => Source {
            title: "Invitation à rejoindre le personnel de la commune",
            body: "Bonjour {{ name }}, vous êtes invité·e à rejoindre le personnel de votre commune \
                   sur Jamaa. Code d'invitation : {{ token }} (valable {{ days }} jours). Choisissez \
                   « Accepter une invitation », saisissez le code puis le mot de passe de votre choix.",
        },
        (Language::En, Kind::StaffInvitation) => Source {
            title: "Invitation to join your commune's staff",
            body: "Hello {{ name }}, you are invited to join your commune's staff on Jamaa. \
                   Invitation code: {{ token }} (valid {{ days }} days). Choose \"Accept an \
                   invitation\", enter the code, then a password of your choice.",
        },
        (Language::Fr, Kind::PasswordResetCode) => Source {
            title: "Code de réinitialisation : {{ code }}",
            body: "Votre code de réinitialisation du mot de passe est {{ code }}. Il est valable \
                   {{ minutes }} minutes. Si vous ne l'avez pas demandé, ignorez ce message : \
                   votre mot de passe n'a pas changé.",
        },
        (Language::En, Kind::ContactVerificationCode) => Source {
            title: "Verification code: {{ code }}",
            body: "Your e-mail verification code is {{ code }}. It is valid for {{ minutes }} \
                   minutes. Do not share it: the commune will never ask you for it.",
        },
        (Language::En, Kind::PasswordResetCode) => Source {
            title: "Password reset code: {{ code }}",
            body: "Your password reset code is {{ code }}. It is valid for {{ minutes }} minutes. \
                   If you did not ask for it, ignore this message: your password has not changed.",
        },
        (Language::En, Kind::RequestSubmitted) => Source {
            title: "Request received",
            body: "Your request {{ tracking_code }} was received. We will keep you informed as it progresses.",
        },
        (Language::En, Kind::RequestStatusChanged) => Source {
            title: "Update on your request {{ tracking_code }}",
            body: "Your request {{ tracking_code }} is now {{ status }}.\
                   {% if note %} Note from the commune: {{ note }}{% endif %}",
        },
        (Language::En, Kind::PetitionThresholdReached) => Source {
            title: "Your petition reached its threshold",
            body: "Your petition \"{{ title }}\" reached {{ count }} signatures (threshold {{ threshold }}).",
        },
        (Language::Ar, kind) => arabic(kind),
        (Language::Tzm, kind) => amazigh(kind),
        (Language::Unspecified, _) => return None,
    };
    Some(source)
}

/// A request status in words, in `language` (the language the templates resolved to).
pub fn status_name(status: RequestStatus, language: Language) -> &'static str {
    match language {
        Language::Fr => match status {
            RequestStatus::Submitted => "soumise",
            RequestStatus::Received => "reçue par la commune",
            RequestStatus::InProgress => "en cours de traitement",
            RequestStatus::AwaitingCitizen => "en attente de votre réponse",
            RequestStatus::Resolved => "traitée",
            RequestStatus::Rejected => "rejetée",
            RequestStatus::Closed => "clôturée",
            RequestStatus::Cancelled => "annulée",
            RequestStatus::Unspecified => "mise à jour",
        },
        Language::En => match status {
            RequestStatus::Submitted => "submitted",
            RequestStatus::Received => "received by the commune",
            RequestStatus::InProgress => "in progress",
            RequestStatus::AwaitingCitizen => "waiting for your reply",
            RequestStatus::Resolved => "resolved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Closed => "closed",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::Unspecified => "updated",
        },
        Language::Tzm => match status {
            RequestStatus::Submitted => "ⵉⵜⵜⵓⵣⵏ",
            RequestStatus::Received => "ⵉⵍⴽⵎ ⵜⴰⵊⵎⴰⵄⵜ",
            RequestStatus::InProgress => "ⵖ ⵜⵡⵓⵔⵉ",
            RequestStatus::AwaitingCitizen => "ⵉⵜⵜⵔⴰⵊⵓ ⵜⴰⵔⴰⵔⵓⵜ ⵏⵏⵓⵏ",
            RequestStatus::Resolved => "ⵉⵜⵜⵓⵙⵎⴰⴷ",
            RequestStatus::Rejected => "ⵉⵜⵜⵓⴰⴳⵢ",
            RequestStatus::Closed => "ⵉⵜⵜⵓⵇⵇⵏ",
            RequestStatus::Cancelled => "ⵉⵜⵜⵓⴽⴽⵙ",
            RequestStatus::Unspecified => "ⵉⵜⵜⵓⵙⵎⴰⵢⵏⵓ",
        },
        Language::Ar | Language::Unspecified => match status {
            RequestStatus::Submitted => "مقدم",
            RequestStatus::Received => "تم استلامه من طرف الجماعة",
            RequestStatus::InProgress => "قيد المعالجة",
            RequestStatus::AwaitingCitizen => "في انتظار ردكم",
            RequestStatus::Resolved => "تمت معالجته",
            RequestStatus::Rejected => "مرفوض",
            RequestStatus::Closed => "مغلق",
            RequestStatus::Cancelled => "ملغى",
            RequestStatus::Unspecified => "محدث",
        },
    }
}

/// Sample data of `kind`, for previews and for checking templates before they are saved.
pub fn sample(kind: Kind) -> Notice {
    match kind {
        Kind::RequestSubmitted => Notice::RequestSubmitted {
            tracking_code: "CAS-2025-000042".into(),
        },
        Kind::RequestStatusChanged => Notice::RequestStatusChanged {
            tracking_code: "CAS-2025-000042".into(),
            new_status: RequestStatus::InProgress,
            public_note: "a note".into(),
        },
        Kind::PetitionThresholdReached => Notice::PetitionThresholdReached {
            title: "Plus d'arbres".into(),
            signature_count: 412,
            signature_threshold: 400,
        },
        Kind::ContactVerificationCode => Notice::ContactVerificationCode {
            code: "042917".into(),
            minutes: 10,
        },
        Kind::PasswordResetCode => Notice::PasswordResetCode {
            code: "042917".into(),
            minutes: 30,
        },
        Kind::SignUpAttempted => Notice::SignUpAttempted,
        Kind::StaffInvitation => Notice::StaffInvitation {
            display_name: "Hind".into(),
            token: "tok".into(),
            days: 7,
        },
        Kind::DeadlineExtended => Notice::DeadlineExtended {
            tracking_code: "CAS-2025-000042".into(),
            due_date: "2026-12-31".into(),
            reason: "consultation of another body".into(),
        },
        Kind::RequestAssigned => Notice::RequestAssigned {
            tracking_code: "CAS-2025-000042".into(),
        },
        Kind::DeadlineApproaching => Notice::DeadlineApproaching {
            tracking_code: "CAS-2025-000042".into(),
            due_date: "2026-12-31".into(),
            working_days_left: 2,
        },
        Kind::DeadlineBreached => Notice::DeadlineBreached {
            tracking_code: "CAS-2025-000042".into(),
            due_date: "2026-12-31".into(),
        },
        Kind::PetitionDecided => Notice::PetitionDecided {
            title: "Plus d'arbres".into(),
            outcome: PetitionStatus::Inadmissible,
            text: "hors compétence".into(),
        },
        Kind::ResultUpdated => Notice::ResultUpdated {
            title: "Un jardin partagé".into(),
            progress: 40,
            note: "Les plantations ont commencé.".into(),
        },
        Kind::ProposalAnswered => Notice::ProposalAnswered {
            title: "Un jardin partagé".into(),
            status: jamaa_proto::participation::v1::ProposalStatus::Accepted,
            text: "Les travaux commencent en mars.".into(),
        },
        Kind::PetitionDecisionOverdue => Notice::PetitionDecisionOverdue {
            title: "Plus d'arbres".into(),
        },
        Kind::PetitionSubmitted => Notice::PetitionSubmitted {
            title: "Plus d'arbres".into(),
            due_date: "2027-03-03".into(),
        },
        Kind::ConsultationOpened => Notice::ConsultationOpened {
            title: "Le marché".into(),
            close_date: "2026-12-31".into(),
        },
        Kind::ConsultationClosed => Notice::ConsultationClosed {
            title: "Le marché".into(),
            responses: 42,
        },
        Kind::BudgetPhaseChanged => Notice::BudgetPhaseChanged {
            title: "Budget 2027".into(),
            phase: jamaa_proto::participation::v1::BudgetPhase::Results,
            selected: vec!["Un jardin".into(), "Des bancs".into()],
        },
        Kind::AppointmentBooked => Notice::AppointmentBooked {
            office: LocalizedText {
                ar: "مكتب الحالة المدنية".into(),
                fr: "Bureau d'état civil".into(),
                ..Default::default()
            },
            start: "2026-12-04 09:30".into(),
        },
        Kind::AppointmentReminder => Notice::AppointmentReminder {
            office: LocalizedText {
                ar: "مكتب الحالة المدنية".into(),
                fr: "Bureau d'état civil".into(),
                ..Default::default()
            },
            start: "2026-12-04 09:30".into(),
        },
        Kind::DailyDigest => Notice::DailyDigest {
            count: 2,
            items: "- Le marché\n- Budget 2027".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGUAGES: [Language; 5] = [
        Language::Ar,
        Language::Fr,
        Language::En,
        Language::Tzm,
        Language::Unspecified,
    ];

    fn submitted() -> Notice {
        Notice::RequestSubmitted {
            tracking_code: "CAS-2025-000042".into(),
        }
    }

    fn changed(note: &str) -> Notice {
        Notice::RequestStatusChanged {
            tracking_code: "CAS-2025-000042".into(),
            new_status: RequestStatus::InProgress,
            public_note: note.into(),
        }
    }

    fn petition() -> Notice {
        Notice::PetitionThresholdReached {
            title: "Plus d'arbres".into(),
            signature_count: 412,
            signature_threshold: 400,
        }
    }

    #[test]
    fn every_kind_renders_in_every_language() {
        for kind in Kind::ALL {
            for language in LANGUAGES {
                let rendered = render(&sample(kind), language).expect("renders");
                assert!(!rendered.title.trim().is_empty(), "{kind:?} {language:?}");
                assert!(!rendered.body.trim().is_empty(), "{kind:?} {language:?}");
                assert!(!rendered.body.contains("{{"), "{kind:?} {language:?}");
            }
        }
    }

    #[test]
    fn request_submitted_in_arabic_and_french() {
        let ar = render(&submitted(), Language::Ar).expect("ar");
        assert_eq!(ar.language, Language::Ar);
        assert!(ar.body.contains("CAS-2025-000042"));
        assert!(ar.body.contains("تم استلام طلبكم"));
        let fr = render(&submitted(), Language::Fr).expect("fr");
        assert_eq!(fr.language, Language::Fr);
        assert_eq!(fr.title, "Demande reçue");
        assert!(
            fr.body
                .contains("Votre demande CAS-2025-000042 a bien été reçue")
        );
    }

    #[test]
    fn status_change_names_the_translated_status() {
        let ar = render(&changed(""), Language::Ar).expect("ar");
        assert!(ar.title.contains("CAS-2025-000042"));
        assert!(ar.body.contains("CAS-2025-000042"));
        assert!(ar.body.contains("قيد المعالجة"));
        assert!(!ar.body.contains("ملاحظة"));
        let fr = render(&changed(""), Language::Fr).expect("fr");
        assert!(fr.body.contains("CAS-2025-000042"));
        assert!(fr.body.contains("en cours de traitement"));
        assert!(!fr.body.contains("Message de la commune"));
        let en = render(&changed(""), Language::En).expect("en");
        assert!(en.body.contains("in progress"));
    }

    #[test]
    fn status_change_shows_the_public_note_when_present() {
        let fr = render(&changed("  Apportez votre CIN.  "), Language::Fr).expect("fr");
        assert!(
            fr.body
                .ends_with("Message de la commune : Apportez votre CIN."),
            "{}",
            fr.body
        );
        let ar = render(&changed("أحضروا البطاقة الوطنية"), Language::Ar).expect("ar");
        assert!(ar.body.contains("ملاحظة من الجماعة: أحضروا البطاقة الوطنية"));
    }

    #[test]
    fn petition_names_title_count_and_threshold() {
        for language in [Language::Ar, Language::Fr] {
            let rendered = render(&petition(), language).expect("renders");
            assert!(rendered.body.contains("Plus d'arbres"), "{}", rendered.body);
            assert!(rendered.body.contains("412"));
            assert!(rendered.body.contains("400"));
        }
    }

    #[test]
    fn text_is_not_html_escaped() {
        let notice = Notice::PetitionThresholdReached {
            title: "Parcs & <jardins>".into(),
            signature_count: 1,
            signature_threshold: 1,
        };
        let rendered = render(&notice, Language::Fr).expect("fr");
        assert!(rendered.body.contains("Parcs & <jardins>"));
    }

    #[test]
    fn amazigh_has_its_own_texts() {
        let rendered = render(&changed(""), Language::Tzm).expect("tzm");
        assert_eq!(rendered.language, Language::Tzm);
        assert!(rendered.body.contains("CAS-2025-000042"));
        assert!(rendered.body.contains("ⵖ ⵜⵡⵓⵔⵉ"), "{}", rendered.body);
        assert!(!rendered.body.contains("قيد المعالجة"));
        assert_eq!(
            fallback_chain(Language::Tzm),
            &[Language::Tzm, Language::Ar]
        );
        let unspecified = render(&submitted(), Language::Unspecified).expect("unspecified");
        assert_eq!(unspecified.language, Language::Ar);
    }

    #[test]
    fn every_language_has_every_kind_in_its_own_words() {
        for language in [Language::Ar, Language::Fr, Language::En, Language::Tzm] {
            for kind in Kind::ALL {
                let rendered = render(&sample(kind), language).expect("renders");
                assert_eq!(rendered.language, language, "{kind:?} {language:?}");
                if language != Language::Ar {
                    let arabic = render(&sample(kind), Language::Ar).expect("ar");
                    assert_ne!(rendered.body, arabic.body, "{kind:?} {language:?}");
                }
            }
        }
    }

    #[test]
    fn an_override_in_amazigh_comes_before_the_platform_text() {
        let custom = [CustomText {
            language: Language::Tzm,
            title: "ⴰⵣⵓⵍ".into(),
            body: "ⴰⵙⵓⵜⵔ {{ tracking_code }}".into(),
        }];
        let rendered = render_for(&submitted(), Language::Tzm, &custom).expect("tzm");
        assert_eq!(rendered.body, "ⴰⵙⵓⵜⵔ CAS-2025-000042");
        assert_eq!(rendered.language, Language::Tzm);
    }

    #[test]
    fn every_status_has_words_in_each_language() {
        let statuses = [
            RequestStatus::Unspecified,
            RequestStatus::Submitted,
            RequestStatus::Received,
            RequestStatus::InProgress,
            RequestStatus::AwaitingCitizen,
            RequestStatus::Resolved,
            RequestStatus::Rejected,
            RequestStatus::Closed,
            RequestStatus::Cancelled,
        ];
        for language in [Language::Ar, Language::Fr, Language::En, Language::Tzm] {
            let mut names: Vec<&str> = statuses
                .iter()
                .map(|status| status_name(*status, language))
                .collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                statuses.len(),
                "{language:?}: status names must differ"
            );
        }
    }
}
