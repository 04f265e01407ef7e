#!/usr/bin/env python3
"""Writes the network fuzzer's seeds (corpus/target_fuzzer/) from the conformance suite's messages.

    build/dev/mdmconform run --no-redact --seed 7 --out /tmp/seeds-run
    tools/make_target_corpus.py /tmp/seeds-run/report.json corpus/target_fuzzer

Every check-in and report the suite sent (its transcripts; not the admin adapter's requests) is
re-addressed to the fuzz session's device and user (harness/fuzz/session.hpp: kFuzzUdid,
kFuzzUserId), so that a seed reaches the enrolled channels; the first UserID of each case
becomes the fuzz user, other users keep theirs (network users, strangers). Duplicates are
dropped; each seed is written as XML, and every third also as a binary plist. Files are named
by the SHA-256 of their bytes, so re-running changes nothing unless the suite changed.
Needs only the Python standard library.
"""
import base64
import hashlib
import json
import os
import plistlib
import sys

FUZZ_UDID = "23EB7CD8-5567-5E97-827F-06E4E4C456B2"
FUZZ_USER_ID = "F17C470A-3ADC-47EC-A7CC-D432867F4793"


def body_bytes(body):
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, dict) and "base64" in body:
        return base64.b64decode(body["base64"])
    return b""


def main():
    report, out = sys.argv[1], sys.argv[2]
    with open(report) as f:
        run = json.load(f)
    os.makedirs(out, exist_ok=True)
    seen = set()
    written = 0
    for case in run["cases"]:
        first_user = None
        for entry in case.get("transcript", []):
            if entry.get("actor") == "admin":
                continue
            request = entry.get("request", {})
            raw = body_bytes(request.get("body", ""))
            try:
                message = plistlib.loads(raw)
            except Exception:
                continue  # a case's deliberately malformed bytes: the mutator makes its own
            if not isinstance(message, dict):
                continue
            if "UDID" in message:
                message["UDID"] = FUZZ_UDID
            user = message.get("UserID")
            if isinstance(user, str):
                first_user = first_user or user
                if user == first_user:
                    message["UserID"] = FUZZ_USER_ID
            key = plistlib.dumps(message, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            variants = [plistlib.dumps(message, fmt=plistlib.FMT_XML, sort_keys=True)]
            if len(seen) % 3 == 0:
                variants.append(plistlib.dumps(message, fmt=plistlib.FMT_BINARY, sort_keys=True))
            for data in variants:
                with open(os.path.join(out, hashlib.sha256(data).hexdigest()), "wb") as f:
                    f.write(data)
                written += 1
    print("make_target_corpus: %d seeds from %d distinct messages in %s" % (written, len(seen), out))


if __name__ == "__main__":
    main()
