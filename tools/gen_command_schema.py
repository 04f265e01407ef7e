#!/usr/bin/env python3
"""Writes harness/protocol/command_schema_data.inc from Apple's device-management schema.

    tools/gen_command_schema.py SCHEMA_DIR [OUT]            write OUT
    tools/gen_command_schema.py SCHEMA_DIR [OUT] --check    exit 1 when OUT is not what SCHEMA_DIR gives

SCHEMA_DIR is a copy of github.com/apple/device-management (its SOURCE.md names the commit); OUT
defaults to harness/protocol/command_schema_data.inc.

Reads mdm/commands/*.yaml (every command's RequestType, its macOS channels, and the keys of its
Command dict, recursively) and mdm/profiles/*.yaml (which payload types are accounts), and writes
constexpr tables for harness/protocol/command_schema.cpp. The output is committed; the build and
CI never run this script. It needs python3 and PyYAML (Debian: python3-yaml).

Only facts are taken: key names, types, presence, channels. No descriptive text (`content`,
`title`, `description`) goes into the output.

Defaults, where the schema leaves something out (its own docs/schema.md, in Apple's repository):
- A command without a macOS block in supportedOS, or with macOS `introduced: n/a`, or with a
  macOS `removed` version, is unsupported on macOS: on neither channel.
- In a supported macOS block, a missing `devicechannel` counts as true and a missing
  `userchannel` as false (the device channel is the rule, the user channel the exception). The
  generator reports how often it applied these defaults (none at b6202ca).
- A key without `presence` is optional (the schema leaves it out only on array item types).
- A key inherits its parent's macOS support (the command's for top-level keys) and overrides it
  with its own supportedOS.macOS block: `introduced: n/a` or `removed` makes the key unsupported on
  macOS; `devicechannel` / `userchannel` override the channels. The output flags a key only
  where it narrows its parent's support, so that a device-only command is reported once, at
  RequestType, and not again at every key.
- A <dictionary> whose only sub-key is `ANY`, or which lists no sub-keys, accepts any key.
- An <array>'s sub-keys describe its items: one entry is the item type; several entries (Settings)
  are alternative item kinds, told apart by the sub-key each kind pins to a single value
  (`rangelist` of one string, e.g. Item: Wallpaper).
- Sub-keys of a scalar array item (DeviceInformation's Queries values) enumerate values; values
  are not checked, so they are left out. `rangelist`, `range`, `format` are not checked either.
"""

import os
import sys

import apple_schema

# Account payloads (PRF-ONE-ACCOUNT): every payload type ending in ".account", and the two whose
# type does not say so but whose payload configures one account: Mail and Google.
ACCOUNT_SUFFIX = ".account"
ACCOUNT_EXTRAS = {"com.apple.mail.managed", "com.apple.google-oauth"}

stats = {"device_default": 0, "user_default": 0}


unsupported = apple_schema.unsupported


def command_channels(payload):
    """(device, user) on macOS for a whole command."""
    mac = apple_schema.macos(payload)
    if mac is None or unsupported(mac):
        return (False, False)
    if "devicechannel" not in mac:
        stats["device_default"] += 1
    if "userchannel" not in mac:
        stats["user_default"] += 1
    return (bool(mac.get("devicechannel", True)), bool(mac.get("userchannel", False)))


def key_support(key, parent):
    """(on_macos, device, user) for a key, from its parent's and its own macOS block."""
    mac = apple_schema.macos(key)
    if mac is None:
        return parent
    on_macos, device, user = parent
    if unsupported(mac):
        on_macos = False
    device = bool(mac.get("devicechannel", device))
    user = bool(mac.get("userchannel", user))
    return (on_macos, device, user)


class Table(apple_schema.KeyTable):
    """Rows: [name, type, flags, first, count, fixed]; emit(subkeys, parent, in_array)."""

    def row(self, key, parent, in_array):
        name = key["key"]
        here = f"key {name!r}"
        type_ = apple_schema.key_type(key, here)
        support = key_support(key, parent)
        flags = apple_schema.key_flags(key, parent, support, in_array, here)
        fixed = apple_schema.fixed_value(key, type_)
        subkeys = key.get("subkeys") or []
        first, count = 0, 0
        if type_ == "dictionary":
            if apple_schema.lists_no_keys(subkeys):
                flags.append("kOpen")
            else:
                first, count = self.emit(subkeys, support, False)
        elif type_ == "array":
            first, count = self.emit(subkeys, support, True)
        # Sub-keys of a scalar enumerate its values: not checked, left out.
        return [name, type_, flags, first, count, fixed]


def cpp_string(text):
    return apple_schema.cpp_string(text, r"A-Za-z0-9 ._\-/()")


def generate(schema_dir):
    rev = apple_schema.revision(schema_dir)

    commands = []
    for path in apple_schema.schema_files(schema_dir, "commands"):
        doc = apple_schema.load(path)
        payload = doc.get("payload") or {}
        request_type = payload.get("requesttype")
        if not request_type:
            sys.exit(f"{path}: no payload.requesttype")
        keys = [k for k in (doc.get("payloadkeys") or []) if k["key"] != "RequestType"]
        commands.append((request_type, os.path.basename(path), command_channels(payload), keys))
    commands.sort(key=lambda c: c[0])
    names = [c[0] for c in commands]
    if len(set(names)) != len(names):
        sys.exit("duplicate RequestType")

    table = Table()
    command_rows = []
    for request_type, file_name, (device, user), keys in commands:
        first, count = table.emit(keys, (device or user, device, user), False)
        command_rows.append((request_type, file_name, device, user, first, count))

    accounts = []
    for path in apple_schema.schema_files(schema_dir, "profiles"):
        doc = apple_schema.load(path)
        payload_type = (doc.get("payload") or {}).get("payloadtype") or ""
        if payload_type.endswith(ACCOUNT_SUFFIX) or payload_type in ACCOUNT_EXTRAS:
            accounts.append((payload_type, os.path.basename(path)))
    accounts.sort()
    missing = ACCOUNT_EXTRAS - {a for a, _ in accounts}
    if missing:
        sys.exit(f"account payload types not in the schema: {sorted(missing)}")

    lines = [
        "// GENERATED by tools/gen_command_schema.py: do not edit; rerun the generator instead.",
        f"// Source: {rev},",
        "// mdm/commands/*.yaml and mdm/profiles/*.yaml (MIT). Facts only: names, types, presence,",
        "// channels. The generator's docstring lists the defaults it applies.",
        f"// {len(command_rows)} commands, {len(table.keys)} keys, {len(accounts)} account payload types.",
        "",
        f"inline constexpr std::string_view kSchemaDataRevision = {cpp_string(rev)};",
        "",
        "// name, type, flags, first sub-key, sub-key count, the one value a string key is pinned to",
        f"inline constexpr std::array<SchemaKey, {len(table.keys)}> kSchemaKeys = {{{{",
    ]
    lines += table.initializers(cpp_string, lambda row: cpp_string(row[5]))
    lines += [
        "}};",
        "",
        "// RequestType, macOS channels, first key, key count; sorted by RequestType",
        f"inline constexpr std::array<SchemaCommand, {len(command_rows)}> kSchemaCommands = {{{{",
    ]
    for request_type, file_name, device, user, first, count in command_rows:
        channels = " | ".join(f for f, on in (("kDeviceChannel", device), ("kUserChannel", user)) if on) or "0"
        lines.append(f"    {{{cpp_string(request_type)}, {channels}, {first}, {count}}},  // {file_name}")
    lines += [
        "}};",
        "",
        "// Payload types that configure an account: *.account, com.apple.mail.managed,",
        "// com.apple.google-oauth (mdm/profiles/<type>.yaml)",
        f"inline constexpr std::array<std::string_view, {len(accounts)}> kAccountPayloadTypes = {{{{",
    ]
    for payload_type, _ in accounts:
        lines.append(f"    {cpp_string(payload_type)},")
    lines += ["}};", ""]

    summary = (f"{len(command_rows)} commands ({sum(1 for c in command_rows if c[2] or c[3])} on macOS), "
               f"{len(table.keys)} keys, {len(accounts)} account payload types; defaults applied: devicechannel "
               f"{stats['device_default']}, userchannel {stats['user_default']}")
    return "\n".join(lines), summary


if __name__ == "__main__":
    sys.exit(apple_schema.main(__doc__, "harness/protocol/command_schema_data.inc", generate))
