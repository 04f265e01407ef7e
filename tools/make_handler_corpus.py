#!/usr/bin/env python3
"""Writes the seed corpus of fuzzers/server_handler_fuzzer: sessions of real check-ins, reports
and queue requests, in the fault and identity modes that change what the handler does, named by
the SHA-256 of their bytes. Usage: tools/make_handler_corpus.py corpus/server_handler_fuzzer
The input format is described at the top of fuzzers/server_handler_fuzzer.cpp."""
import hashlib
import pathlib
import plistlib
import sys

UDID = "23EB7CD8-5567-5E97-827F-06E4E4C456B2"
OTHER_UDID = "5A1B2C3D-0000-4000-8000-00000000AAAA"
USER = "F17C470A-3ADC-47EC-A7CC-D432867F4793"
MANAGED = "7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10"  # the fuzzer's managed network user
REFUSED = "0BADBEEF-0000-4000-8000-000000000001"
TOPIC = "com.apple.mgmt.External.mdmconform"
CHECKIN = "application/x-apple-aspen-mdm-checkin"
REPORT = "application/x-apple-aspen-mdm; charset=UTF-8"


def user_keys(user_id):
    return {"UserID": user_id, "UserShortName": "jimmys", "UserLongName": "Jimmy Smith"}


def authenticate(udid=UDID):
    return {"MessageType": "Authenticate", "Topic": TOPIC, "UDID": udid, "SerialNumber": "C02XL0000000",
            "Model": "MacBookPro18,3", "ModelName": "MacBook Pro", "DeviceName": "mdmconform Mac",
            "ProductName": "MacBookPro18,3", "OSVersion": "14.6", "BuildVersion": "23G80"}


def token_update(udid=UDID, user_id=None):
    m = {"MessageType": "TokenUpdate", "Topic": TOPIC, "UDID": udid, "Token": b"\x1b\xa7\xc9\x00\x66\xc5\x0f\x77",
         "PushMagic": "888CEB39-BFFA-40F6-89FA-B60752EB63C2"}
    if user_id:
        m.update(user_keys(user_id))
        m["NotOnConsole"] = False
    return m


def user_authenticate(user_id, digest=None):
    m = {"MessageType": "UserAuthenticate", "UDID": UDID, **user_keys(user_id)}
    if digest is not None:
        m["DigestResponse"] = digest
    return m


def report(status, uuid=None, user_id=None, **flags):
    m = {"Status": status, "UDID": UDID}
    if uuid:
        m["CommandUUID"] = uuid
    if user_id:
        m.update(user_keys(user_id))
    if status == "Error":
        m["ErrorChain"] = [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "failed"}]
    m.update(flags)
    return m


def command(uuid, request_type="ProfileList", **extra):
    return {"CommandUUID": uuid, "Command": {"RequestType": request_type, **extra}}


def encode(value, binary=False):
    return plistlib.dumps(value, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)


class Session:
    def __init__(self, fault="none", mode="none", binary=False):
        self.first = f"{fault} {mode}".encode()
        self.pieces = []
        self.mode = mode
        self.binary = binary

    def send(self, method, target, body=b"", content_type=None, identity="device"):
        lines = [f"{method} {target}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if self.mode in ("signature", "both") and identity:
            lines.append("Mdm-Signature: " + ("sign" if identity == "device" else "sign-other"))
        if self.mode in ("mtls", "both") and identity:
            lines.append(f"X-Client-Certificate: {identity}")
        self.pieces.append("\n".join(lines).encode() + b"\n\n" + body)
        return self

    def check_in(self, message, identity="device"):
        return self.send("PUT", "/checkin", encode(message, self.binary), CHECKIN, identity)

    def report(self, message, identity="device"):
        return self.send("PUT", "/mdm", encode(message, self.binary), REPORT, identity)

    def enqueue(self, channel, cmd):
        return self.send("PUT", f"/v1/enqueue/{channel}", encode(cmd), None, None)

    def enroll(self):
        return self.check_in(authenticate()).check_in(token_update()).check_in(token_update(user_id=USER))

    def bytes(self):
        return self.first + b"\n" + b"\n--\n".join(self.pieces)


def sessions():
    out = []
    for fault in ("none", "not-now-resent", "not-now-dropped", "acked-redelivered", "duplicate-report-conflict",
                  "user-command-on-device", "device-command-on-user", "last-idle-channel", "not-now-endless",
                  "command-without-request-type"):
        s = Session(fault).enroll()
        s.enqueue(UDID, command("CMD-1")).enqueue(f"{UDID}:{USER}", command("CMD-2", "InstallProfile", Payload=b"x"))
        s.report(report("Idle")).report(report("Acknowledged", "CMD-1")).report(report("Acknowledged", "CMD-1"))
        s.report(report("Idle", user_id=USER, UserConfiguration=True))
        s.report(report("NotNow", "CMD-2", user_id=USER, UserConfiguration=True))
        s.report(report("Idle", user_id=USER, NeedSyncResponse=True)).report(report("Error", "CMD-2", user_id=USER))
        s.report(report("Acknowledged", "NEVER-QUEUED"))
        out.append(s)
    for mode in ("signature", "mtls", "both"):
        s = Session("identity-not-bound" if mode == "both" else "none", mode).enroll()
        s.report(report("Idle")).report(report("Idle"), identity="other").check_in(authenticate(), identity=None)
        out.append(s)
    s = Session(binary=True).enroll().report(report("Idle")).check_in({"MessageType": "CheckOut", "UDID": UDID})
    out.append(s)
    s = Session().enroll().check_in(user_authenticate(REFUSED)).check_in(token_update(user_id=REFUSED))
    s.check_in(user_authenticate(MANAGED)).check_in(user_authenticate(MANAGED, "Digest x")).check_in(
        token_update(user_id=MANAGED))
    out.append(s)
    s = Session("profiles-bundled").enroll()
    profile = encode({"PayloadContent": [{"PayloadType": "com.apple.mail.managed"}]})
    s.enqueue(UDID, command("P-1", "InstallProfile", Payload=profile))
    s.enqueue(UDID, command("P-2", "InstallProfile", Payload=profile)).report(report("Idle"))
    out.append(s)
    for fault in ("none", "malformed-500", "wedged-after-garbage", "unknown-status-acks", "oversize-500",
                  "unknown-device-served"):
        s = Session(fault).enroll().enqueue(UDID, command("CMD-1"))
        s.send("PUT", "/mdm", b"<plist><dict><key>Status", REPORT).report(report("Bogus", "CMD-1"))
        s.check_in({"MessageType": "Bogus", "UDID": UDID}).report(report("Idle"))
        s.report({"Status": "Idle", "UDID": OTHER_UDID}).send("GET", "/mdm").send("PUT", "/nowhere", b"x")
        s.send("PUT", "/v1/enqueue/%3A", encode(command("X"))).send("PUT", f"/v1/enqueue/{UDID}%3A{USER}", b"junk")
        out.append(s)
    # Every bound of the fuzzer's Config within its 12 requests: three devices, three users of
    # one device, three commands on a channel (and past the queued bytes).
    s = Session()
    for n in range(3):
        s.check_in(authenticate(f"DEVICE-{n}"))
    s.enroll().check_in(token_update(user_id="U-2")).check_in(token_update(user_id="U-3"))
    for n in range(3):
        s.enqueue(UDID, command(f"Q-{n}", Padding="p" * 1800))
    out.append(s)
    # The declarative side: a declaration put, put in a set, assigned to the device channel, then
    # the device's sync and status report, a malformed report and an unknown declaration.
    s = Session().enroll()
    s.send("PUT", "/v1/declarations", b'{"Type":"com.apple.configuration.passcode.settings",'
           b'"Identifier":"passcode","Payload":{"MinimumLength":6}}')
    s.send("PUT", "/v1/set-declarations/base?declaration=passcode").send("PUT", f"/v1/enrollment-sets/{UDID}?set=base")
    for endpoint in ("tokens", "declaration-items", "declaration/configuration/passcode", "declaration/asset/none"):
        s.check_in({"MessageType": "DeclarativeManagement", "UDID": UDID, "Endpoint": endpoint})
    s.check_in({"MessageType": "DeclarativeManagement", "UDID": UDID, "Endpoint": "status",
                "Data": b'{"StatusItems":{"management":{"declarations":{}}},"Errors":[],"FullReport":true}'})
    s.check_in({"MessageType": "DeclarativeManagement", "UDID": UDID, "Endpoint": "status", "Data": b"{"})
    out.append(s)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_handler_corpus.py DIR")
    folder = pathlib.Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for s in sessions():
        data = s.bytes()
        (folder / hashlib.sha256(data).hexdigest()).write_bytes(data)
    print(f"make_handler_corpus: {len(sessions())} seeds in {folder}")


if __name__ == "__main__":
    main()
