#!/usr/bin/env python3
"""Copies one of etcd's .proto files (Debian's golang-etcd-server-dev) without the Go
code generator's and the HTTP gateway's annotations (gogoproto options, google.api.http),
which need protos Debian does not ship for C++ and change nothing on the wire.

    strip_go_options.py IN.proto OUT.proto
"""
import re
import sys


def strip(text: str) -> str:
    text = re.sub(r'^import "(gogoproto/gogo|google/api/annotations)\.proto";\n', "", text, flags=re.M)
    text = re.sub(r"^option \(gogoproto\.[^;]*;\n", "", text, flags=re.M)
    # Field options: [(gogoproto.nullable) = false, (gogoproto.customname) = "ID"].
    text = re.sub(r"\s*\[\s*\(gogoproto\.[^\]]*\]", "", text)
    # option (google.api.http) = { ... }; with nested braces.
    out, i = [], 0
    marker = re.compile(r"option\s*\(google\.api\.http\)\s*=\s*\{")
    while True:
        m = marker.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        while text[j] in " \t":
            j += 1
        if text[j] == ";":
            j += 1
        i = j
    return "".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        stripped = strip(f.read())
    if "gogoproto" in stripped or "google.api" in stripped:
        sys.exit(f"{sys.argv[1]}: an annotation was left in")
    with open(sys.argv[2], "w") as f:
        f.write(stripped)
