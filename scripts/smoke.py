"""A client in another language, generated from proto/ by Python's grpcio toolchain, walks the
running all-in-one: lists the services by reflection, checks health, and walks the slice.

Usage: python scripts/smoke.py <grpc address> <generated stubs dir>
"""

import sys
import time
import uuid

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

address, stubs = sys.argv[1], sys.argv[2]
sys.path.insert(0, stubs)

from jamaa.identity.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402
from jamaa.notification.v1 import notification_pb2, notification_pb2_grpc  # noqa: E402
from jamaa.servicerequest.v1 import service_request_pb2, service_request_pb2_grpc  # noqa: E402
from jamaa.type.v1 import types_pb2  # noqa: E402

SERVICES = [
    "jamaa.identity.v1.IdentityService",
    "jamaa.servicerequest.v1.ServiceRequestService",
    "jamaa.participation.v1.ParticipationService",
    "jamaa.notification.v1.NotificationService",
]

channel = grpc.insecure_channel(address)
grpc.channel_ready_future(channel).result(timeout=60)

# Reflection: the services are listed and their methods resolvable.
reflection = ProtoReflectionDescriptorDatabase(channel)
listed = set(reflection.get_services())
missing = [s for s in SERVICES if s not in listed]
assert not missing, f"reflection does not list {missing}; it lists {sorted(listed)}"
pool = descriptor_pool.DescriptorPool(reflection)
assert pool.FindServiceByName("jamaa.servicerequest.v1.ServiceRequestService").FindMethodByName("SubmitRequest")
print("reflection lists", len(listed), "services")

# Health: every service SERVING.
health = health_pb2_grpc.HealthStub(channel)
for service in SERVICES + [""]:
    status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
    assert status == health_pb2.HealthCheckResponse.SERVING, (service, status)
print("health: SERVING")


def bearer(token):
    return [("authorization", f"Bearer {token}")]


identity = identity_pb2_grpc.IdentityServiceStub(channel)
requests = service_request_pb2_grpc.ServiceRequestServiceStub(channel)
inbox = notification_pb2_grpc.NotificationServiceStub(channel)

# The demo commune made at first start: a citizen registers, files a request, staff answer.
deadline = time.time() + 60
while True:
    try:
        identity.GetCommune(identity_pb2.GetCommuneRequest(code="DEMO"))
        break
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND and time.time() < deadline, error
        time.sleep(0.2)
email = f"smoke-{uuid.uuid4().hex[:8]}@example.org"
identity.RegisterCitizen(
    identity_pb2.RegisterCitizenRequest(
        commune_code="DEMO",
        email=email,
        password="smoke-password-1",
        display_name="Smoke",
        preferred_language=types_pb2.LANGUAGE_FR,
    )
)
citizen = identity.Login(identity_pb2.LoginRequest(email=email, password="smoke-password-1")).access_token
# The demo's catalogue service is added just after the commune: wait for it too.
deadline = time.time() + 60
while True:
    services = requests.ListServices(service_request_pb2.ListServicesRequest(commune_code="DEMO")).services
    if services:
        break
    assert time.time() < deadline, "the demo catalogue stayed empty"
    time.sleep(0.2)
submitted = requests.SubmitRequest(
    service_request_pb2.SubmitRequestRequest(
        request_id=str(uuid.uuid4()), service_id=services[0].id, description="Smoke test request"
    ),
    metadata=bearer(citizen),
).request
print("submitted", submitted.tracking_code)

admin = identity.Login(
    identity_pb2.LoginRequest(email="admin@demo.jamaa.local", password="demo-admin-change-me")
).access_token
requests.ChangeRequestStatus(
    service_request_pb2.ChangeRequestStatusRequest(
        id=submitted.id, status=service_request_pb2.REQUEST_STATUS_RECEIVED, note="Bien reçu"
    ),
    metadata=bearer(admin),
)

deadline = time.time() + 30
while True:
    notes = inbox.ListNotifications(notification_pb2.ListNotificationsRequest(), metadata=bearer(citizen))
    if any("Bien reçu" in n.body for n in notes.notifications):
        break
    assert time.time() < deadline, "no notification within 30 s"
    time.sleep(0.2)
print("the citizen was notified, in", types_pb2.Language.Name(notes.notifications[0].language))

try:
    requests.GetRequest(service_request_pb2.GetRequestRequest(id=submitted.id))
    raise AssertionError("an anonymous read succeeded")
except grpc.RpcError as error:
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.code()
print("smoke: 1 passed, 0 failed")
