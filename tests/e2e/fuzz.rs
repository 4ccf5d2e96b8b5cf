//! R10: every request message of every Jamaa RPC, made at random from the descriptors (strings
//! odd and long, numbers at their limits, unknown enum values, nested messages) and, one time in
//! four, with its bytes damaged — sent to the real server as a platform administrator, a commune
//! administrator, a citizen and nobody. No answer may be INTERNAL, UNKNOWN, DATA_LOSS or
//! UNIMPLEMENTED, no call may break its connection (a panic would), and the server answers its
//! health check after. Messages over 4 MiB get RESOURCE_EXHAUSTED; deeply nested bytes and
//! garbage get INVALID_ARGUMENT.
//!
//! Bounded by time: `JAMAA_FUZZ_SECONDS` per backend (10 by default; `scripts/fuzz` runs longer),
//! `JAMAA_FUZZ_SEED` replays a run (the seed is printed).

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, spawn_stack};

crate::on_both_backends!(random_requests_never_break_the_server, fuzz);

/// Passes request bytes through untouched, and answers as bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// A small, seeded generator (xorshift64*): a failing run replays with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn random_string(rng: &mut Rng) -> String {
    let fixed = [
        "",
        " ",
        "BNM",
        "ar",
        "tzm",
        "ⵜⴰⵊⵎⴰⵄⵜ ⵏ ⵔⵔⴱⴰⵟ",
        "طلب رخصة البناء",
        "Réunion à 18 h",
        "'; DROP TABLE requests; --",
        "\0",
        "a\0b",
        "\u{202e}gnp.exe",
        "../../etc/passwd",
        "{{ code }}{% for x in y %}",
        "<script>alert(1)</script>",
        "-1",
        "99999999999999999999",
        "1e309",
        "2026-02-30",
        "25:61",
        // This phone number and the ID-card number below are none of tests/fixtures': the
        // run's logs are searched for those, and may hold what the fuzzer sends.
        "+212600000001",
        "someone@example.ma",
        "ZZ999999",
        "%00%ff",
        "\u{fffd}\u{1f600}",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ];
    match rng.below(6) {
        0 => uuid::Uuid::new_v4().to_string(),
        1 => "x".repeat(rng.below(20_000)),
        2 => (0..rng.below(64))
            .map(|_| char::from_u32(rng.below(0x3_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
        _ => rng.pick(&fixed).to_string(),
    }
}

fn random_value(kind: &Kind, rng: &mut Rng, depth: usize) -> Value {
    let i64s = [0, 1, -1, i64::MAX, i64::MIN, 1_000_000_000_000];
    let i32s = [0, 1, -1, i32::MAX, i32::MIN, 100, 1001];
    match kind {
        Kind::String => Value::String(random_string(rng)),
        Kind::Bytes => Value::Bytes((0..rng.below(4096)).map(|_| rng.next() as u8).collect()),
        Kind::Bool => Value::Bool(rng.one_in(2)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(if rng.one_in(3) {
            rng.next() as i32
        } else {
            *rng.pick(&i32s)
        }),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(if rng.one_in(3) {
            rng.next() as i64
        } else {
            *rng.pick(&i64s)
        }),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(rng.next() as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(rng.next()),
        Kind::Float => Value::F32(*rng.pick(&[0.0, -1.0, f32::NAN, f32::INFINITY, 1e38])),
        Kind::Double => Value::F64(*rng.pick(&[0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 1e308])),
        Kind::Enum(descriptor) => {
            let numbers: Vec<i32> = descriptor.values().map(|value| value.number()).collect();
            Value::EnumNumber(if rng.one_in(5) {
                rng.next() as i32
            } else {
                *rng.pick(&numbers)
            })
        }
        Kind::Message(descriptor) => Value::Message(random_message(descriptor, rng, depth + 1)),
    }
}

fn random_message(descriptor: &MessageDescriptor, rng: &mut Rng, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    if depth > 4 {
        return message;
    }
    for field in descriptor.fields() {
        if field.is_map() || rng.one_in(3) {
            continue;
        }
        let kind = field.kind();
        let value = if field.is_list() {
            Value::List(
                (0..rng.below(4))
                    .map(|_| random_value(&kind, rng, depth))
                    .collect(),
            )
        } else {
            random_value(&kind, rng, depth)
        };
        message.set_field(&field, value);
    }
    message
}

/// Damages `bytes`: a flipped byte, a cut, or garbage at the end.
fn damage(bytes: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(3) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
        }
        1 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len())),
        _ => bytes.extend((0..rng.below(16) + 1).map(|_| rng.next() as u8)),
    }
}

/// 10,000 nested groups of an unknown field: past prost's recursion limit.
fn deeply_nested() -> Vec<u8> {
    let start_group = (999u64 << 3) | 3;
    let end_group = (999u64 << 3) | 4;
    let mut bytes = Vec::new();
    for tag in
        std::iter::repeat_n(start_group, 10_000).chain(std::iter::repeat_n(end_group, 10_000))
    {
        prost::encoding::encode_varint(tag, &mut bytes);
    }
    bytes
}

async fn call(
    channel: &Channel,
    path: &str,
    bytes: Vec<u8>,
    token: Option<&str>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unknown(format!("not ready: {error}")))?;
    let mut request = tonic::Request::new(bytes);
    request.set_timeout(Duration::from_secs(15));
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    let path = PathAndQuery::try_from(path)
        .map_err(|error| tonic::Status::unknown(format!("path: {error}")))?;
    grpc.unary(request, path, RawCodec)
        .await
        .map(|response| response.into_inner())
}

fn seed() -> u64 {
    std::env::var("JAMAA_FUZZ_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(42)
                | 1
        })
}

fn budget() -> Duration {
    let seconds = std::env::var("JAMAA_FUZZ_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10u64);
    Duration::from_secs(seconds)
}

async fn fuzz(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("FUZ", 3).await;
    let (_, citizen) = stack.register_citizen("FUZ", "Amina", Language::Fr).await;
    let platform = stack
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await;
    let tokens = [
        Some(platform.as_str()),
        Some(admin.as_str()),
        Some(citizen.as_str()),
        None,
    ];
    let pool = DescriptorPool::decode(jamaa_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let methods: Vec<(String, MessageDescriptor)> = pool
        .services()
        .filter(|service| service.full_name().starts_with("jamaa."))
        .flat_map(|service| {
            service
                .methods()
                .filter(|method| !method.is_client_streaming() && !method.is_server_streaming())
                .map(|method| {
                    (
                        format!("/{}/{}", service.full_name(), method.name()),
                        method.input(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(methods.len() > 100, "every RPC: {} found", methods.len());
    let seed = seed();
    println!("fuzz ({backend:?}): seed {seed}, {} methods", methods.len());
    let mut rng = Rng(seed);
    let channel = stack.channel();

    // The fixed cases first, on every method.
    let mut failures = Vec::new();
    for (path, _) in &methods {
        let large = call(&channel, path, vec![0x0a; 5 * 1024 * 1024], Some(&admin)).await;
        match large {
            Err(status) if status.code() == Code::ResourceExhausted => {}
            other => failures.push(format!("{path}: 5 MiB → {other:?}")),
        }
        let nested = call(&channel, path, deeply_nested(), Some(&admin)).await;
        match nested {
            Err(status)
                if matches!(
                    status.code(),
                    Code::InvalidArgument | Code::PermissionDenied
                ) => {}
            other => failures.push(format!("{path}: deep nesting → {:?}", other.map(|_| ()))),
        }
    }

    let started = Instant::now();
    let mut calls = 0usize;
    while started.elapsed() < budget() {
        let (path, input) = rng.pick(&methods).clone();
        let mut bytes = random_message(&input, &mut rng, 0).encode_to_vec();
        let damaged = rng.one_in(4);
        if damaged {
            damage(&mut bytes, &mut rng);
        }
        let token = *rng.pick(&tokens);
        let outcome = call(&channel, &path, bytes.clone(), token).await;
        calls += 1;
        if let Err(status) = &outcome
            && matches!(
                status.code(),
                Code::Internal | Code::Unknown | Code::DataLoss | Code::Unimplemented
            )
        {
            use base64::Engine;
            failures.push(format!(
                "{path} (damaged: {damaged}, {} bytes, base64 {}) → {:?}: {}",
                bytes.len(),
                base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len().min(512)]),
                status.code(),
                status.message()
            ));
        }
    }
    println!(
        "fuzz ({backend:?}): {calls} random calls in {:?}",
        started.elapsed()
    );

    let mut health = tonic_health::pb::health_client::HealthClient::new(stack.channel());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("the server still answers")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    stack.stop().await;
}
