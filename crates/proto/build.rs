//! Compiles `proto/` with protox (no system `protoc`), then generates prost types, tonic stubs,
//! proto3-JSON serde impls (pbjson) and the file descriptor set used by gRPC reflection.

use std::{env, path::PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "../../proto";
const FILES: &[&str] = &[
    "jamaa/type/v1/types.proto",
    "jamaa/identity/v1/identity.proto",
    "jamaa/servicerequest/v1/service_request.proto",
    "jamaa/servicerequest/v1/appointments.proto",
    "jamaa/participation/v1/participation.proto",
    "jamaa/notification/v1/notification.proto",
    "jamaa/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let files: Vec<PathBuf> = FILES
        .iter()
        .map(|f| PathBuf::from(PROTO_ROOT).join(f))
        .collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_bytes = descriptors.encode_to_vec();
    std::fs::write(out_dir.join("jamaa_descriptor.bin"), &descriptor_bytes)?;

    // Type names let events be published under their full proto name (`prost::Name`).
    let mut prost_config = prost_build::Config::new();
    prost_config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .type_attribute(".", "#[allow(clippy::all, clippy::pedantic)]")
        .compile_fds_with_config(descriptors, prost_config)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".jamaa"])?;
    Ok(())
}
