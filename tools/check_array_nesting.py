#!/usr/bin/env python3
"""Fails on a plist::Array braced around exactly one plist::Array.

plist::Array is std::vector<plist::Value>, and a Value is made from an Array. So
`Array{Array{"CN", "x"}}` is a one-element array holding the inner one under g++, and a copy of
the inner one under clang 14 (its reading of list-initialization from one element of the same
type). The reference server's enrollment profile had a SCEP Subject one level too shallow when
built with clang, and failed its own ENR-PROFILE. Write each level as a Value instead:
`Array{Value(Array{"CN", "x"})}`.

Caught: `Array{...}`, `Array name{...}` and `Array name = {...}` whose one element is written
`Array{...}` or `Array(...)`, comments left out. Not caught: a braced list whose type is known
only from the context (`return {Array{...}};`, `f({Array{...}})`), or one whose element is a
variable of type Array.

    tools/check_array_nesting.py [ROOT]     exit 1 and one line per finding when any
"""
import pathlib
import re
import sys

FOLDERS = ("harness", "fuzzers", "bench")
ARRAY_OPEN = re.compile(r"\b(?:plist::)?Array(?:\s+[A-Za-z_]\w*(?:\s*=)?)?\s*\{")
ARRAY_START = re.compile(r"\s*(?:plist::)?Array\s*[{(]")
PAIRS = {"{": "}", "(": ")", "[": "]"}


def without_comments(text):
    """`text` with its comments blanked (line breaks kept), string and character literals kept."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = len(text) if end < 0 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:end]))
            i = end
        elif text[i] in "\"'" and not (text[i] == "'" and i > 0 and text[i - 1].isalnum()):
            end = skip_literal(text, i)
            out.append(text[i:end])
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def skip_literal(text, i):
    """Index just past the string or character literal that starts at i."""
    quote = text[i]
    i += 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def top_level_elements(text, open_brace):
    """The elements of the braced list that opens at open_brace, split at top-level commas."""
    depth, start, elements, i = 0, open_brace + 1, [], open_brace
    while i < len(text):
        c = text[i]
        if c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):  # 1'000 is a number
            i = skip_literal(text, i)
            continue
        if c in PAIRS:
            depth += 1
        elif c in PAIRS.values():
            depth -= 1
            if depth == 0:
                elements.append(text[start:i])
                return [e for e in elements if e.strip()]
        elif c == "," and depth == 1:
            elements.append(text[start:i])
            start = i + 1
        i += 1
    return []


def findings(path):
    text = without_comments(path.read_text(encoding="utf-8", errors="replace"))
    for match in ARRAY_OPEN.finditer(text):
        elements = top_level_elements(text, match.end() - 1)
        if len(elements) == 1 and ARRAY_START.match(elements[0]):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{path}:{line}: an Array braced around one Array: a copy under clang, a nesting under g++; wrap the inner one in plist::Value(...)"


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    found = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".cpp", ".hpp", ".h", ".inc"):
                found.extend(findings(path))
    for line in found:
        print(line)
    if found:
        return 1
    print("check_array_nesting: no Array braced around one Array")
    return 0


if __name__ == "__main__":
    sys.exit(main())
