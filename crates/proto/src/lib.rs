//! Jamaa's protobuf types, gRPC clients and servers, and their proto3 JSON mapping.
//!
//! Generated from `proto/` at build time. Module paths follow the proto packages:
//! `jamaa_proto::identity::v1` is `jamaa.identity.v1`.

/// The encoded `FileDescriptorSet` of every Jamaa proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jamaa_descriptor.bin"));

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
        include!(concat!(env!("OUT_DIR"), "/jamaa.servicerequest.v1.serde.rs"));
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

pub use pbjson_types::Timestamp;
