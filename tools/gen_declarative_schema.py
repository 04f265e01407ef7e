#!/usr/bin/env python3
"""Writes harness/protocol/declarative_schema_data.inc from Apple's declarative schema.

    tools/gen_declarative_schema.py SCHEMA_DIR [OUT]            write OUT
    tools/gen_declarative_schema.py SCHEMA_DIR [OUT] --check    exit 1 when OUT is not what SCHEMA_DIR gives

SCHEMA_DIR is a copy of github.com/apple/device-management (its SOURCE.md names the commit); OUT
defaults to harness/protocol/declarative_schema_data.inc.

Reads declarative/declarations/{activations,assets,configurations,management}/*.yaml (each
declaration Type, its group, its macOS channels, and the keys of its Payload, recursively),
declarative/declarations/declarationbase.yaml (the keys every declaration has),
declarative/protocol/*.yaml (TokensResponse, DeclarationItemsResponse, StatusReport) and
declarative/status/*.yaml (each status item's name, channels, and the type of its value), and
writes constexpr tables for harness/protocol/declarative.cpp. The output is committed; the build
and CI never run this script. It needs python3 and PyYAML (Debian: python3-yaml).

Only facts are taken: key names, types, presence, channels. No descriptive text (`content`,
`title`, `description`) goes into the output.

Defaults, where the schema leaves something out (its own docs/schema.md, in Apple's repository),
as tools/gen_command_schema.py applies them:
- A declaration or status item without a macOS block in supportedOS, or with macOS
  `introduced: n/a`, or with a macOS `removed` version, is unsupported on macOS: on neither
  channel.
- The declarative schema names channels by `allowed-scopes`: `system` is the device channel,
  `user` the user channel. A supported macOS block without `allowed-scopes` falls back on
  `devicechannel` / `userchannel` where it has them (a missing `devicechannel` true, a missing
  `userchannel` false, as for commands); with neither, the declaration is on both channels:
  only configurations carry scopes (activations, assets and management declarations apply on
  whichever channel lists them, and DeclarativeManagement runs on both). The generator reports
  how often it applied this last default.
- A key without `presence` is optional; a key inherits its parent's macOS support and narrows it
  with its own supportedOS.macOS block (`introduced: n/a` or `removed`; `allowed-scopes`,
  `devicechannel`, `userchannel`), flagged only where it narrows its parent's.
- A <dictionary> whose only sub-key is `ANY`, or which lists no sub-keys, accepts any key. An
  <array>'s sub-keys describe its items; sub-keys of a scalar enumerate values and are left out.
- declarative/declarations/assets/credentials/*.yaml describe the data an asset points to (a
  `credentialtype`, not a declaration Type): left out.

One addition that is not in the schema: tokensresponse.yaml names SyncTokens' type
(SynchronizationTokens) but lists none of its keys at b6202ca. Apple's documentation of the
SynchronizationTokens object gives two, both required: DeclarationsToken <string> and Timestamp
(a date-time, <date> here). The generator adds them when the schema lists no sub-keys and takes
the schema's own when it does.
"""

import glob
import os
import sys

import apple_schema

GROUPS = (  # folder under declarative/declarations, the group's name in the tables
    ("activations", "activation"),
    ("assets", "asset"),
    ("configurations", "configuration"),
    ("management", "management"),
)
PROTOCOL_DOCUMENTS = ("tokensresponse.yaml", "declarationitemsresponse.yaml", "statusreport.yaml")
SYNC_TOKEN_KEYS = [  # Apple's documentation, SynchronizationTokens (see the docstring)
    {"key": "DeclarationsToken", "type": "<string>", "presence": "required"},
    {"key": "Timestamp", "type": "<date>", "presence": "required"},
]

stats = {"both_channels_default": 0, "sync_tokens_added": 0}


unsupported = apple_schema.unsupported


def channels_of(mac, parent, count_default):
    """(device, user) for a macOS block, from its scopes or channel keys, else `parent`."""
    scopes = mac.get("allowed-scopes")
    if scopes is not None:
        return ("system" in scopes, "user" in scopes)
    if "devicechannel" in mac or "userchannel" in mac:
        return (bool(mac.get("devicechannel", True)), bool(mac.get("userchannel", False)))
    if count_default:
        stats["both_channels_default"] += 1
    return parent


def document_support(payload):
    """(on_macos, device, user) for a whole declaration or status item."""
    mac = apple_schema.macos(payload)
    if mac is None or unsupported(mac):
        return (False, False, False)
    device, user = channels_of(mac, (True, True), True)
    return (device or user, device, user)


def key_support(key, parent):
    mac = apple_schema.macos(key)
    if mac is None:
        return parent
    on_macos, device, user = parent
    if unsupported(mac):
        on_macos = False
    device, user = channels_of(mac, (device, user), False)
    return (on_macos, device, user)


class Table(apple_schema.KeyTable):
    """Rows: [name, type, flags, first, count, fixed], as command_schema_data.inc's."""

    def row(self, key, parent, in_array):
        name = key["key"]
        here = f"key {name!r}"
        type_ = apple_schema.key_type(key, here)
        support = key_support(key, parent)
        flags = apple_schema.key_flags(key, parent, support, in_array, here)
        fixed = apple_schema.fixed_value(key, type_)
        subkeys = key.get("subkeys") or []
        if name == "SyncTokens" and type_ == "dictionary" and not subkeys:
            stats["sync_tokens_added"] += 1
            subkeys = SYNC_TOKEN_KEYS
        first, count = 0, 0
        if type_ == "dictionary":
            if apple_schema.lists_no_keys(subkeys):
                flags.append("kOpen")
            else:
                first, count = self.emit(subkeys, support, False)
        elif type_ == "array":
            first, count = self.emit(subkeys, support, True)
        return [name, type_, flags, first, count, fixed]


def cpp_string(text):
    return apple_schema.cpp_string(text, r"A-Za-z0-9 ._\-/()")


def channel_flags(device, user):
    return " | ".join(f for f, on in (("kDeviceChannel", device), ("kUserChannel", user)) if on) or "0"


def generate(schema_dir):
    rev = apple_schema.revision(schema_dir)
    root = os.path.join(schema_dir, "declarative")
    table = Table()

    base = apple_schema.load(os.path.join(root, "declarations", "declarationbase.yaml"))
    base_rows = table.emit(base.get("payloadkeys") or [], (True, True, True), False)

    declarations = []
    for folder, group in GROUPS:
        for path in sorted(glob.glob(os.path.join(root, "declarations", folder, "*.yaml"))):
            doc = apple_schema.load(path)
            payload = doc.get("payload") or {}
            declaration_type = payload.get("declarationtype")
            if not declaration_type:
                sys.exit(f"{path}: no payload.declarationtype")
            declarations.append((declaration_type, group, os.path.relpath(path, root), document_support(payload),
                                 doc.get("payloadkeys") or []))
    declarations.sort(key=lambda d: d[0])
    names = [d[0] for d in declarations]
    if len(set(names)) != len(names):
        sys.exit("duplicate declaration Type")
    declaration_rows = []
    for declaration_type, group, file_name, support, keys in declarations:
        first, count = table.emit(keys, support, False)
        declaration_rows.append((declaration_type, group, file_name, support, first, count))

    documents = []
    for file_name in PROTOCOL_DOCUMENTS:
        doc = apple_schema.load(os.path.join(root, "protocol", file_name))
        name = (doc.get("payload") or {}).get("requesttype")
        if not name:
            sys.exit(f"protocol/{file_name}: no payload.requesttype")
        first, count = table.emit(doc.get("payloadkeys") or [], (True, True, True), False)
        documents.append((name, file_name, first, count))
    documents.append(("DeclarationBase", "declarations/declarationbase.yaml") + base_rows)
    documents.sort(key=lambda d: d[0])

    status_items = []
    for path in sorted(glob.glob(os.path.join(root, "status", "*.yaml"))):
        doc = apple_schema.load(path)
        payload = doc.get("payload") or {}
        name = payload.get("statusitemtype")
        if not name:
            continue  # statusreason.yaml: the reasons' shape, not an item
        keys = doc.get("payloadkeys") or []
        if len(keys) != 1 or keys[0]["key"] != name:
            sys.exit(f"{path}: a status item has one key, named as the item")
        status_items.append((name, os.path.basename(path), document_support(payload), keys))
    status_items.sort(key=lambda s: s[0])
    status_rows = []
    for name, file_name, support, keys in status_items:
        first, count = table.emit(keys, support, False)
        status_rows.append((name, file_name, support, first))

    if stats["sync_tokens_added"] != 1:
        sys.exit("expected TokensResponse's SyncTokens once, without sub-keys or with them")

    lines = [
        "// GENERATED by tools/gen_declarative_schema.py: do not edit; rerun the generator instead.",
        f"// Source: {rev},",
        "// declarative/{declarations,protocol,status}/*.yaml (MIT). Facts only: names, types, presence,",
        "// channels. The generator's docstring lists the defaults it applies and the one addition.",
        f"// {len(declaration_rows)} declaration types, {len(documents)} protocol documents, "
        f"{len(status_rows)} status items, {len(table.keys)} keys.",
        "",
        f"inline constexpr std::string_view kDeclarativeDataRevision = {cpp_string(rev)};",
        "",
        "// name, type, flags, first sub-key, sub-key count, the one value a string key is pinned to",
        f"inline constexpr std::array<SchemaKey, {len(table.keys)}> kDeclarativeKeys = {{{{",
    ]
    lines += table.initializers(cpp_string, lambda row: cpp_string(row[5]))
    lines += [
        "}};",
        "",
        "// Type, group, macOS channels, first Payload key, key count; sorted by Type",
        f"inline constexpr std::array<DeclarationSchema, {len(declaration_rows)}> kDeclarationSchemas = {{{{",
    ]
    for declaration_type, group, file_name, (_, device, user), first, count in declaration_rows:
        lines.append(f"    {{{cpp_string(declaration_type)}, G::{group}, {channel_flags(device, user)}, {first}, {count}}},"
                     f"  // {file_name}")
    lines += [
        "}};",
        "",
        "// The protocol's JSON documents and the base every declaration has: name, first key, key count",
        f"inline constexpr std::array<DocumentSchema, {len(documents)}> kDocumentSchemas = {{{{",
    ]
    for name, file_name, first, count in documents:
        lines.append(f"    {{{cpp_string(name)}, {first}, {count}}},  // {file_name}")
    lines += [
        "}};",
        "",
        "// Status item name, macOS channels, its value's key (named as the item); sorted by name",
        f"inline constexpr std::array<StatusItemSchema, {len(status_rows)}> kStatusItemSchemas = {{{{",
    ]
    for name, file_name, (_, device, user), first in status_rows:
        lines.append(f"    {{{cpp_string(name)}, {channel_flags(device, user)}, {first}}},  // {file_name}")
    lines += ["}};", ""]

    on_macos = sum(1 for d in declaration_rows if d[3][0])
    summary = (f"{len(declaration_rows)} declaration types ({on_macos} on macOS), {len(documents)} protocol documents, "
               f"{len(status_rows)} status items, {len(table.keys)} keys; defaults applied: both channels "
               f"{stats['both_channels_default']}; SyncTokens keys added from Apple's documentation: "
               f"{stats['sync_tokens_added']}")
    return "\n".join(lines), summary


if __name__ == "__main__":
    sys.exit(apple_schema.main(__doc__, "harness/protocol/declarative_schema_data.inc", generate))
