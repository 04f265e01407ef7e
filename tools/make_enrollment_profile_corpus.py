#!/usr/bin/env python3
"""Writes the seed corpus of fuzzers/enrollment_profile_fuzzer: enrollment profiles in the shapes
harness/enroll/enrollment_profile_test.cpp reads (MicroMDM's, NanoMDM's, pkcs12 and ACME
identities, and the ENR-PROFILE breaks), as XML and binary plists, and one CMS-signed, named by
the SHA-256 of their bytes. Usage: tools/make_enrollment_profile_corpus.py corpus/enrollment_profile_fuzzer
Needs python3 and the openssl command (for the CA certificate and the signed profile)."""
import hashlib
import pathlib
import plistlib
import subprocess
import sys
import tempfile

SCEP_UUID = "9D4A3F7E-2B1C-4E5D-8F6A-1B2C3D4E5F60"
MDM_UUID = "3C9B1E20-7A4D-4F6B-9E21-5D8C7B6A5F40"
ROOT_UUID = "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"
TOPIC = "com.apple.mgmt.External.2ac1a2b8-6f58-4d9b-9a4e-0b5b0f6b7c1d"


def payload(payload_type, uuid, **keys):
    return {"PayloadType": payload_type, "PayloadIdentifier": "org.example." + uuid, "PayloadUUID": uuid,
            "PayloadVersion": 1, **keys}


def profile(content):
    return {"PayloadContent": content, "PayloadIdentifier": "com.github.micromdm.micromdm.enroll",
            "PayloadType": "Configuration", "PayloadUUID": "P", "PayloadVersion": 1, "PayloadScope": "System"}


def scep(**content):
    base = {"URL": "https://mdm.example.org/scep", "Keysize": 2048, "Key Type": "RSA", "Key Usage": 5,
            "Name": "Device Management Identity Certificate", "Challenge": "sekrit",
            "Subject": [[["O", "MicroMDM"]], [["CN", "MicroMDM Identity (%ComputerName%)"]]]}
    base.update(content)
    return payload("com.apple.security.scep", SCEP_UUID, PayloadContent=base)


def mdm(**keys):
    base = {"AccessRights": 8191, "CheckInURL": "https://mdm.example.org/mdm/checkin", "CheckOutWhenRemoved": True,
            "IdentityCertificateUUID": SCEP_UUID, "ServerCapabilities": ["com.apple.mdm.per-user-connections"],
            "ServerURL": "https://mdm.example.org/mdm/connect", "SignMessage": True, "Topic": TOPIC}
    base.update(keys)
    return payload("com.apple.mdm", MDM_UUID, **base)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", work / "ca.key", "-out", work / "ca.pem", "-subj", "/CN=corpus CA", "-days", "3650"],
                       check=True, capture_output=True)
        ca_der = subprocess.run(["openssl", "x509", "-in", work / "ca.pem", "-outform", "DER"], check=True,
                                capture_output=True).stdout
        ca_pem = (work / "ca.pem").read_bytes()

        micromdm = profile([scep(), mdm(), payload("com.apple.security.root", ROOT_UUID, PayloadContent=ca_der)])
        nano_mdm = mdm(ServerURL="https://mdm.example.org/mdm")
        del nano_mdm["CheckInURL"]
        nanomdm = profile([scep(Challenge="SCEP-CHALLENGE-HERE", Subject=[]), nano_mdm])
        pkcs12 = profile([payload("com.apple.security.pkcs12", SCEP_UUID, PayloadContent=b"\x30\x82\x01\x00",
                                  Password="p12"), mdm()])
        acme = profile([payload("com.apple.security.acme", SCEP_UUID, DirectoryURL="https://acme.example.org/dir",
                                ClientIdentifier="c", KeySize=384, KeyType="ECSECPrimeRandom", HardwareBound=True,
                                Subject=[[["CN", "d"]]]), mdm()])
        second = mdm()
        second["PayloadUUID"] = "00000000-0000-4000-8000-000000000002"
        two_mdm = profile([scep(), mdm(), second])
        broken = profile([scep(Keysize=3072, SubjectAltName={"dNSName": ["a.example", "b.example"]}),
                          mdm(ServerURL="http://mdm.example.org/mdm", Topic="com.example.push", SignMessage="true",
                              AccessRights=130),
                          payload("com.apple.security.pkcs1", "B1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
                                  PayloadContent=ca_pem)])
        no_identity = profile([mdm(IdentityCertificateUUID=ROOT_UUID),
                               payload("com.apple.security.root", ROOT_UUID, PayloadContent=b"not a certificate")])

        seeds = [plistlib.dumps(p, fmt=plistlib.FMT_XML) for p in (micromdm, nanomdm, pkcs12, acme, two_mdm, broken,
                                                                     no_identity)]
        seeds.append(plistlib.dumps(micromdm, fmt=plistlib.FMT_BINARY))
        seeds.append(plistlib.dumps(broken, fmt=plistlib.FMT_BINARY))
        (work / "profile.plist").write_bytes(seeds[0])
        signed = subprocess.run(["openssl", "cms", "-sign", "-nodetach", "-binary", "-md", "sha256", "-outform", "DER",
                                 "-in", work / "profile.plist", "-signer", work / "ca.pem", "-inkey", work / "ca.key"],
                                check=True, capture_output=True).stdout
        seeds.append(signed)
    for seed in seeds:
        (out / hashlib.sha256(seed).hexdigest()).write_bytes(seed)
    print(f"{out}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
