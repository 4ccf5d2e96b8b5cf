"""Load for scripts/rollout: sets up a commune, a citizen and one request through the gateway,
then reads the request from several threads until the stop file appears; prints the counts."""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

gateway, stop_file, result_file = sys.argv[1], sys.argv[2], sys.argv[3]


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{gateway}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


platform = call("POST", "/v1/sessions", {"email": "platform@jamaa.local", "password": "platform-admin-change-me"})["accessToken"]
call("POST", "/v1/communes", {
    "code": "LRH", "name": {"fr": "Larache"}, "population": "125000",
    "adminEmail": "admin@lrh.test", "adminPassword": "admin-password-1",
}, platform)
call("POST", "/v1/citizens", {"communeCode": "LRH", "email": "salma@lrh.test",
                              "password": "citizen-password-1", "displayName": "Salma"})
admin = call("POST", "/v1/sessions", {"email": "admin@lrh.test", "password": "admin-password-1"})["accessToken"]
salma = call("POST", "/v1/sessions", {"email": "salma@lrh.test", "password": "citizen-password-1"})["accessToken"]
service = call("POST", "/v1/services", {"service": {
    "code": "lighting",
    "name": {"fr": "Éclairage"},
    "kind": "SERVICE_KIND_INCIDENT_REPORT",
    "channel": "SERVICE_CHANNEL_ONLINE_AND_DESK",
}}, admin)["service"]
request = call("POST", "/v1/requests", {"requestId": str(uuid.uuid4()), "serviceId": service["id"],
                                        "description": "Lamp out"}, salma)["request"]
print("load: reading", request["trackingCode"], flush=True)

served, failed, lock = 0, 0, threading.Lock()


def reader():
    global served, failed
    while not os.path.exists(stop_file):
        try:
            call("GET", f"/v1/requests/{request['id']}", token=salma)
            ok = True
        except (urllib.error.URLError, OSError) as error:
            print("failed:", error, flush=True)
            ok = False
        with lock:
            if ok:
                served += 1
            else:
                failed += 1


threads = [threading.Thread(target=reader) for _ in range(4)]
for thread in threads:
    thread.start()
open(result_file + ".ready", "w").close()
for thread in threads:
    thread.join()
with open(result_file, "w") as out:
    out.write(f"{served} {failed}\n")
