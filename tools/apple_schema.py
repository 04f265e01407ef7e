"""What tools/gen_profile_schema.py and tools/gen_command_schema.py share: reading a copy of
github.com/apple/device-management (its SOURCE.md and mdm/*/*.yaml), walking its keys into a flat
table of rows, and writing or checking the generated .inc file.

Needs PyYAML (Debian: python3-yaml).
"""

import difflib
import glob
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit(f"{os.path.basename(sys.argv[0])} needs PyYAML (Debian: apt-get install python3-yaml)")

# The schema's value types, as the generated tables name them (T::string, ...).
TYPES = {
    "<string>": "string",
    "<integer>": "integer",
    "<real>": "real",
    "<boolean>": "boolean",
    "<data>": "data",
    "<date>": "date",
    "<array>": "array",
    "<dictionary>": "dictionary",
    "<any>": "any",
}


def revision(schema_dir):
    """'apple/device-management b6202ca (iOS 18.1 / macOS 15.1)' from SOURCE.md."""
    text = open(os.path.join(schema_dir, "SOURCE.md"), encoding="utf-8").read()
    commit = re.search(r"commit\s+([0-9a-f]{7,40})", text)
    release = re.search(r"release\s+(iOS [0-9.]+ / macOS [0-9.]+)", text)
    if not commit or not release:
        sys.exit("SOURCE.md does not name the commit and release")
    return f"apple/device-management {commit.group(1)} ({release.group(1)})"


def schema_path(schema_dir, kind, file_name):
    """mdm/<kind>/<file_name> (kind: commands or profiles)."""
    return os.path.join(schema_dir, "mdm", kind, file_name)


def schema_files(schema_dir, kind):
    """Every mdm/<kind>/*.yaml, sorted."""
    return sorted(glob.glob(schema_path(schema_dir, kind, "*.yaml")))


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def macos(node):
    """A payload's or key's supportedOS.macOS block; None when it has none."""
    return (node.get("supportedOS") or {}).get("macOS")


def key_type(key, where):
    """The table's name for `key`'s type; stops on a type the schema does not define."""
    if key.get("type") not in TYPES:
        sys.exit(f"{where}: unknown type {key.get('type')!r}")
    return TYPES[key["type"]]


def is_required(key, where):
    """Whether `key` is required; a key without `presence` is optional (the schema leaves it out
    only on array item types)."""
    presence = key.get("presence", "optional")
    if presence not in ("required", "optional"):
        sys.exit(f"{where}: unknown presence {presence!r}")
    return presence == "required"


def lists_no_keys(subkeys):
    """A <dictionary> whose only sub-key is `ANY`, or which lists none, accepts any key."""
    return not subkeys or (len(subkeys) == 1 and subkeys[0]["key"] == "ANY")


def unsupported(mac):
    """A macOS block that says the key or payload is not on macOS (n/a, or removed)."""
    return mac.get("introduced") == "n/a" or "removed" in mac


def key_flags(key, parent, support, in_array, where):
    """A row's flags: required (not for an array's item type), and where the key narrows its
    parent's macOS support: not on macOS, or not on one channel. `parent` and `support` are
    (on_macos, device, user)."""
    flags = []
    if is_required(key, where) and not in_array:
        flags.append("kRequired")
    if parent[0] and not support[0]:
        flags.append("kNotOnMacOS")
    elif support[0]:
        if parent[1] and not support[1]:
            flags.append("kNotOnDeviceChannel")
        if parent[2] and not support[2]:
            flags.append("kNotOnUserChannel")
    return flags


def fixed_value(key, type_):
    """A string key's one allowed value (a rangelist of one), else empty."""
    ranges = key.get("rangelist")
    if type_ == "string" and isinstance(ranges, list) and len(ranges) == 1:
        return str(ranges[0])
    return ""


class KeyTable:
    """Keys flattened into rows: each dictionary's or array's sub-keys stand contiguously, and a
    row names its children by (first, count). Subclasses make a row of a key with row()."""

    def __init__(self):
        self.keys = []

    def emit(self, subkeys, *context):
        """Appends `subkeys` contiguously, then their children; returns (first, count).
        `context` is handed to row() as it is."""
        subkeys = subkeys or []
        first = len(self.keys)
        self.keys.extend([None] * len(subkeys))
        for i, key in enumerate(subkeys):
            self.keys[first + i] = self.row(key, *context)
        return (first, len(subkeys)) if subkeys else (0, 0)

    def row(self, key, *context):
        raise NotImplementedError

    def initializers(self, quote, rest):
        """The rows as C++ initializers, `/*index*/ {"name", T::type, flags, first, count, ...}`:
        a row starts with those five; `rest(row)` writes what follows count."""
        lines = []
        for i, row in enumerate(self.keys):
            name, type_, flags, first, count = row[:5]
            flag_text = " | ".join(flags) if flags else "0"
            lines.append(f"    /*{i}*/ {{{quote(name)}, T::{type_}, {flag_text}, {first}, {count}, {rest(row)}}},")
        return lines


def cpp_string(text, allowed):
    """`text` as a C++ string literal; stops unless every character is in the class `allowed`
    (nothing in the output needs escaping)."""
    if not re.fullmatch(f"[{allowed}]*", text):
        sys.exit(f"unexpected characters in {text!r}")
    return f'"{text}"'


def main(doc, default_out, generate):
    """The command line both generators take (`doc`, the generator's docstring, shows it in its
    second paragraph):

        TOOL SCHEMA_DIR [OUT]            write OUT
        TOOL SCHEMA_DIR [OUT] --check    exit 1 when OUT is not what SCHEMA_DIR gives

    OUT defaults to `default_out`, a path in the repository. `generate(schema_dir)` returns the
    file's text and a one-line summary."""
    args = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv[1:]
    if len(args) not in (1, 2):
        sys.exit(doc.split("\n\n")[1])
    schema_dir = args[0]
    out_path = args[1] if len(args) == 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                           default_out)
    text, summary = generate(schema_dir)
    out_name = os.path.normpath(out_path)
    if check:
        try:
            committed = open(out_path, encoding="utf-8").read()
        except OSError as error:
            print(f"{out_name}: cannot read ({error})")
            return 1
        if committed != text:
            sys.stdout.writelines(difflib.unified_diff(committed.splitlines(True), text.splitlines(True),
                                                       out_name, "generated", n=1))
            print(f"\n{out_name} is not what {schema_dir} gives: rerun tools/{os.path.basename(sys.argv[0])}")
            return 1
        print(f"{out_name}: in sync ({summary})")
        return 0
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{out_name}: {summary}")
    return 0
