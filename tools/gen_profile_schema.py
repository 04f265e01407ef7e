#!/usr/bin/env python3
"""Writes harness/enroll/profile_schema_data.inc from Apple's device-management schema.

    tools/gen_profile_schema.py SCHEMA_DIR [OUT]            write OUT
    tools/gen_profile_schema.py SCHEMA_DIR [OUT] --check    exit 1 when OUT is not what SCHEMA_DIR gives

SCHEMA_DIR is a copy of github.com/apple/device-management (its SOURCE.md names the commit); OUT
defaults to harness/enroll/profile_schema_data.inc. Reads, from mdm/profiles/, the payloads an
enrollment profile is made of: TopLevel.yaml, CommonPayloadKeys.yaml, com.apple.mdm.yaml,
com.apple.security.scep.yaml, .pkcs12, .acme, .root and .pkcs1, and writes constexpr tables for
harness/enroll/profile_schema.cpp (ENR-PROFILE, docs/enrollment-profile.md). The output is
committed; the build never runs this script (CI has no copy of the schema). When the build is
configured with MDMC_APPLE_SCHEMA_DIR, ctest runs --check (harness/enroll/CMakeLists.txt). Needs
python3 and PyYAML (Debian: python3-yaml).

Only facts are taken: key names, types, presence, `format` patterns, `rangelist` values,
`repetition` bounds, and whether macOS allows more than one payload of the type. No descriptive
text goes into the output, except four facts com.apple.mdm.yaml states only in its prose, read
with fixed patterns (the script stops when a pattern no longer matches, so a reworded schema is
noticed, not silently dropped):
- Topic: "The topic must begin with the '<prefix>' prefix."
- AccessRights: its bit flags ("* '<bit>': ..."), "Don't set to '0'", and each
  "Specify '<needed>' if you specify '<bit>'".

Defaults and readings, where the schema leaves something open (its docs/schema.md):
- A key without `presence` is optional (the schema leaves it out only on array item types).
- A <dictionary> whose only sub-key is `ANY`, or which lists no sub-keys, accepts any key
  (TopLevel's PayloadContent items). So does one whose only sub-key is itself a <dictionary> of
  `ANY` (TopLevel's ConsentText: language codes to texts); its values are not checked.
- An <array>'s one sub-key is its item type; `repetition` on that item bounds the array's length
  (a SCEP Subject pair has exactly two strings).
- `rangelist` gives the values a string or integer key may take; `format` a pattern its string
  must match, in the subset profile_schema.cpp matches (^, $, literals, ., [classes],
  *, +, ?, {n}, {n,m}); the script stops on a pattern outside it.
"""

import re
import sys

import apple_schema

# The payloads an enrollment profile is read and judged against, by file name.
FILES = [
    "TopLevel.yaml",
    "CommonPayloadKeys.yaml",
    "com.apple.mdm.yaml",
    "com.apple.security.scep.yaml",
    "com.apple.security.pkcs12.yaml",
    "com.apple.security.acme.yaml",
    "com.apple.security.root.yaml",
    "com.apple.security.pkcs1.yaml",
]

PATTERN_TOKEN = re.compile(r"(\\.|\.|\[\^?(?:\\.|[^\]\\])+\]|[^\\.\[\]*+?{}()|^$])(\*|\+|\?|\{\d+\}|\{\d+,\d*\})?")


def check_pattern(pattern, where):
    """Stops unless `pattern` is in the subset profile_schema.cpp matches."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        sys.exit(f"{where}: format {pattern!r} is not anchored with ^ and $")
    body = pattern[1:-1]
    position = 0
    while position < len(body):
        match = PATTERN_TOKEN.match(body, position)
        if not match:
            sys.exit(f"{where}: format {pattern!r} uses more than profile_schema.cpp matches (at {body[position:]!r})")
        position = match.end()


def is_open_dictionary(subkeys):
    if apple_schema.lists_no_keys(subkeys):
        return True
    # TopLevel's ConsentText: language codes to texts.
    if (len(subkeys) == 1 and subkeys[0].get("type") == "<dictionary>"
            and [k["key"] for k in subkeys[0].get("subkeys") or []] == ["ANY"]):
        return True
    return False


class Table(apple_schema.KeyTable):
    """Rows: [name, type, flags, first, count, format, values_first, values_count, min, max];
    emit(subkeys, in_array, where)."""

    def __init__(self):
        super().__init__()
        self.values = []

    def row(self, key, in_array, where):
        name = key["key"]
        here = f"{where} {name}"
        type_ = apple_schema.key_type(key, here)
        flags = []
        if apple_schema.is_required(key, here) and not in_array:
            flags.append("kRequired")
        pattern = key.get("format") or ""
        if pattern:
            if type_ != "string":
                sys.exit(f"{here}: format on a {type_}")
            check_pattern(pattern, here)
        values_first, values_count = 0, 0
        ranges = key.get("rangelist")
        if ranges is not None:
            if type_ not in ("string", "integer") or not isinstance(ranges, list) or not ranges:
                sys.exit(f"{here}: rangelist {ranges!r} on a {type_}")
            values_first, values_count = len(self.values), len(ranges)
            for value in ranges:
                if type_ == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
                    sys.exit(f"{here}: rangelist value {value!r} is not an integer")
                self.values.append(str(value))
        repetition = key.get("repetition") or {}
        low, high = int(repetition.get("min", 0)), int(repetition.get("max", 0))
        if repetition and not in_array:
            sys.exit(f"{here}: repetition outside an array")
        subkeys = key.get("subkeys") or []
        first, count = 0, 0
        if type_ == "dictionary":
            if is_open_dictionary(subkeys):
                flags.append("kOpen")
            else:
                first, count = self.emit(subkeys, False, here)
        elif type_ == "array":
            if len(subkeys) > 1:
                sys.exit(f"{here}: an array with {len(subkeys)} item kinds")
            first, count = self.emit(subkeys, True, here)
        elif subkeys:
            sys.exit(f"{here}: sub-keys under a {type_}")
        return [name, type_, flags, first, count, pattern, values_first, values_count, low, high]


def cpp_string(text):
    return apple_schema.cpp_string(text, r"A-Za-z0-9 ._\-/()\[\]{}^$*+?:,")


def prose_facts(mdm):
    """The facts com.apple.mdm.yaml states only in the prose of Topic and AccessRights."""
    keys = {k["key"]: k for k in mdm.get("payloadkeys") or []}
    topic = re.search(r"must begin with the '([^']+)' prefix", keys["Topic"].get("content", ""))
    if not topic:
        sys.exit("com.apple.mdm.yaml: Topic no longer says which prefix it must begin with")
    text = keys["AccessRights"].get("content", "")
    bits = [int(b) for b in re.findall(r"^\* '(\d+)':", text, re.MULTILINE)]
    if not bits or any(b & (b - 1) for b in bits) or len(set(bits)) != len(bits):
        sys.exit("com.apple.mdm.yaml: AccessRights no longer lists its bit flags as \"* '<bit>':\"")
    not_zero = "Don't set to '0'" in text
    if not not_zero:
        sys.exit("com.apple.mdm.yaml: AccessRights no longer says \"Don't set to '0'\"")
    needs = [(int(bit), int(needed)) for needed, bit in re.findall(r"Specify '(\d+)' if you specify '(\d+)'", text)]
    if not needs:
        sys.exit("com.apple.mdm.yaml: AccessRights no longer says which bit needs which")
    for bit, needed in needs:
        if bit not in bits or needed not in bits:
            sys.exit(f"com.apple.mdm.yaml: AccessRights: {bit} needs {needed}, not both among its flags")
    return topic.group(1), sorted(bits), sorted(needs)


def generate(schema_dir):
    rev = apple_schema.revision(schema_dir)
    table = Table()
    payloads = []
    mdm_doc = None
    for file_name in FILES:
        path = apple_schema.schema_path(schema_dir, "profiles", file_name)
        doc = apple_schema.load(path)
        payload = doc.get("payload") or {}
        payload_type = payload.get("payloadtype")
        if not payload_type:
            sys.exit(f"{path}: no payload.payloadtype")
        mac = apple_schema.macos(payload) or {}
        if not mac or mac.get("introduced") == "n/a":
            sys.exit(f"{path}: {payload_type} is not for macOS")
        multiple = bool(mac.get("multiple", False))
        first, count = table.emit(doc.get("payloadkeys"), False, payload_type)
        payloads.append((payload_type, file_name, multiple, first, count))
        if payload_type == "com.apple.mdm":
            mdm_doc = doc
    if mdm_doc is None:
        sys.exit("no com.apple.mdm payload among the files")
    payloads.sort()
    topic_prefix, bits, needs = prose_facts(mdm_doc)

    lines = [
        "// GENERATED by tools/gen_profile_schema.py: do not edit; rerun the generator instead.",
        f"// Source: {rev},",
        "// mdm/profiles/{" + ",".join(f[:-len(".yaml")] for f in FILES) + "}.yaml (MIT).",
        "// Facts only: names, types, presence, format, rangelist, repetition, multiple; the generator's",
        "// docstring lists its readings and the four facts it reads from com.apple.mdm.yaml's prose.",
        f"// {len(payloads)} payloads, {len(table.keys)} keys, {len(table.values)} allowed values.",
        "",
        f"inline constexpr std::string_view kProfileSchemaRevision = {cpp_string(rev)};",
        "",
        "// name, type, flags, first sub-key, sub-key count, format, first allowed value, allowed",
        "// value count, the array's least and most items (0: unbounded) when this is its item",
        f"inline constexpr std::array<ProfileKey, {len(table.keys)}> kProfileKeys = {{{{",
    ]
    lines += table.initializers(cpp_string, lambda row: f"{cpp_string(row[5])}, {row[6]}, {row[7]}, {row[8]}, {row[9]}")
    lines += [
        "}};",
        "",
        "// Allowed values (rangelist), as text: integers in decimal",
        f"inline constexpr std::array<std::string_view, {len(table.values)}> kProfileValues = {{{{",
    ]
    lines += [f"    /*{i}*/ {cpp_string(v)}," for i, v in enumerate(table.values)]
    lines += [
        "}};",
        "",
        "// PayloadType, whether macOS takes more than one in a profile, first key, key count; sorted",
        f"inline constexpr std::array<ProfilePayloadSchema, {len(payloads)}> kProfilePayloads = {{{{",
    ]
    for payload_type, file_name, multiple, first, count in payloads:
        lines.append(f"    {{{cpp_string(payload_type)}, {'true' if multiple else 'false'}, {first}, {count}}},"
                     f"  // {file_name}")
    lines += [
        "}};",
        "",
        "// com.apple.mdm.yaml, Topic: \"The topic must begin with the '...' prefix.\"",
        f"inline constexpr std::string_view kTopicPrefix = {cpp_string(topic_prefix)};",
        "// com.apple.mdm.yaml, AccessRights: its bit flags; \"Don't set to '0'\"; \"Specify 'b' if you",
        "// specify 'a'\" as {a, b}",
        f"inline constexpr std::array<std::int64_t, {len(bits)}> kAccessRightsBits = {{{{"
        + ", ".join(str(b) for b in bits) + "}};",
        "inline constexpr bool kAccessRightsNotZero = true;",
        f"inline constexpr std::array<AccessRightsNeed, {len(needs)}> kAccessRightsNeeds = {{{{"
        + ", ".join(f"{{{bit}, {needed}}}" for bit, needed in needs) + "}};",
        "",
    ]
    summary = (f"{len(payloads)} payloads, {len(table.keys)} keys, {len(table.values)} allowed values; "
               f"Topic prefix {topic_prefix}, {len(bits)} AccessRights bits, {len(needs)} needs")
    return "\n".join(lines), summary


if __name__ == "__main__":
    sys.exit(apple_schema.main(__doc__, "harness/enroll/profile_schema_data.inc", generate))
