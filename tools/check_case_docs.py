#!/usr/bin/env python3
"""Keeps docs/cases.md true to the case loader: every key it accepts is documented.

    tools/check_case_docs.py [SOURCE_DIR]    check; exit 0 when all holds, 1 when not

The loader (harness/scenario/spec.cpp, with schema_version from harness/target/yaml_reader.cpp)
reads every key of rules.yaml and of a case through its MapReader: `r.get<T>("key", ...)`,
`get_required`, `has`, `node`, `required`, or a helper handed the reader and the key
(`parse_actor(r, "as", ...)`). Each such key, and each fixed value it compares against
(`== "network"`), must appear in docs/cases.md as code: `key`, or `key: ...` in a code span.

Before checking, the script checks itself: it must find the keys every case has, and a page
with one key removed must be caught. A loader rewritten another way fails here rather than
passing with nothing checked.
"""
import os
import re
import sys

LOADER_FILES = ("harness/scenario/spec.cpp", "harness/target/yaml_reader.cpp")
DOC = "docs/cases.md"

# Keys the loader reads only to refuse them with a message (`raw` steps are gone); the page
# says so, but they need not be documented as keys.
REFUSED = {"raw"}
# Fixed strings compared against that are no value of a key: "xx" is the class suffix of `4xx`.
NOT_VALUES = {"xx"}
# Keys every case has: the scan must find them, or it no longer reads the loader.
ESSENTIAL = {"schema_version", "title", "rules", "apple", "devices", "steps", "as", "to", "expect", "status"}

READER_CALL = re.compile(r'\.(?:get|get_required|has|node|required)\s*(?:<[^()]*?>)?\s*\(\s*"([^"]+)"')
HELPER_CALL = re.compile(r'\b\w+\(\s*\w+\s*,\s*"([a-z_]+)"')
COMPARED = re.compile(r'==\s*"([^"]+)"')


def loader_source(root):
    text = ""
    for rel in LOADER_FILES:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text += f.read() + "\n"
    return re.sub(r"//[^\n]*", "", text)  # comments name keys in passing


def accepted(source):
    """(keys, values) the loader accepts."""
    keys = set(READER_CALL.findall(source)) | set(HELPER_CALL.findall(source))
    values = set(COMPARED.findall(source)) - NOT_VALUES
    return keys - REFUSED, values


def documented(doc, word):
    return f"`{word}`" in doc or f"`{word}:" in doc


def missing(doc, words):
    return sorted(w for w in words if not documented(doc, w))


def self_check(doc, keys):
    problems = []
    lost = sorted(ESSENTIAL - keys)
    if lost:
        problems.append(f"the scan of {', '.join(LOADER_FILES)} found no {', '.join(lost)}: update this script")
    for probe in ("title", "identity_of"):
        stripped = doc.replace(f"`{probe}`", "").replace(f"`{probe}:", "")
        if missing(stripped, {probe}) != [probe]:
            problems.append(f"a page without `{probe}` was not caught")
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, DOC), encoding="utf-8") as f:
        doc = f.read()
    keys, values = accepted(loader_source(root))
    problems = self_check(doc, keys)
    for key in missing(doc, keys):
        problems.append(f"{DOC} does not document the case key `{key}`, which the loader accepts")
    for value in missing(doc, values):
        problems.append(f"{DOC} does not document the value `{value}`, which the loader accepts")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"{DOC}: all {len(keys)} keys and {len(values)} fixed values the loader accepts are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
