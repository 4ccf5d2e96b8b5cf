//! Jamaa's protobuf types, gRPC clients and servers, and their proto3 JSON mapping.
//!
//! Generated from `proto/` at build time. Module paths follow the proto packages:
//! `jamaa_proto::identity::v1` is `jamaa.identity.v1`.

/// The encoded `FileDescriptorSet` of every Jamaa proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/jamaa_descriptor.bin"));

pub mod r#type {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/jamaa.r#type.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/jamaa.r#type.v1.serde.rs"));
    }
}

pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/jamaa.identity.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/jamaa.identity.v1.serde.rs"));
    }
}

pub mod servicerequest {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/jamaa.servicerequest.v1.rs"));
        include!(concat!(
            env!("OUT_DIR"),
            "/jamaa.servicerequest.v1.serde.rs"
        ));
    }
}

pub mod participation {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/jamaa.participation.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/jamaa.participation.v1.serde.rs"));
    }
}

pub mod notification {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/jamaa.notification.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/jamaa.notification.v1.serde.rs"));
    }
}

pub mod events {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/jamaa.events.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/jamaa.events.v1.serde.rs"));
    }
}

pub use pbjson_types::{FieldMask, Timestamp};

/// A protobuf timestamp from milliseconds since the Unix epoch.
pub fn timestamp_from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

impl r#type::v1::Language {
    /// The language's code: `ar`, `fr`, `en` or `tzm`; Arabic when unspecified.
    pub fn code(self) -> &'static str {
        use r#type::v1::Language;
        match self {
            Language::Unspecified | Language::Ar => "ar",
            Language::Fr => "fr",
            Language::En => "en",
            Language::Tzm => "tzm",
        }
    }

    /// The language with this code, if it is one of the platform's.
    pub fn from_code(code: &str) -> Option<Self> {
        use r#type::v1::Language;
        match code {
            "ar" => Some(Language::Ar),
            "fr" => Some(Language::Fr),
            "en" => Some(Language::En),
            "tzm" => Some(Language::Tzm),
            _ => None,
        }
    }
}

impl r#type::v1::LocalizedText {
    /// The text in `language`, falling back along ar → fr → en → tzm.
    pub fn get(&self, language: r#type::v1::Language) -> &str {
        use r#type::v1::Language;
        let preferred = match language {
            Language::Unspecified | Language::Ar => &self.ar,
            Language::Fr => &self.fr,
            Language::En => &self.en,
            Language::Tzm => &self.tzm,
        };
        [preferred, &self.ar, &self.fr, &self.en, &self.tzm]
            .into_iter()
            .find(|text| !text.is_empty())
            .map(String::as_str)
            .unwrap_or_default()
    }
}
