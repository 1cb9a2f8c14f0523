#!/usr/bin/env python3
"""Fails when an include crosses a layer upward (docs/ARCHITECTURE.md, "Layers").

common/ is split into areas, each a folder of sources (common/<area>/) with its public headers under
common/include/alumia/<area>/. An area may include its own headers and those of areas on a LOWER
layer only; areas on one layer do not include each other. daemon/ and cli/ sit above all of common
and never include each other; common never includes CLI11 or a server. CMake's link order stops an
upward call from linking; this stops the include that would make one possible.
"""
import pathlib
import re
import sys

LAYERS = {  # area -> layer; keep in step with common/CMakeLists.txt
    "base": 0,
    "crypto": 1, "net": 1, "config": 1,
    "store": 2, "catalog": 2,
    "auth": 3,
    "connections": 4,
    "oauth": 5, "webhooks": 5,
    "setup": 6,
}
TOP = 100  # daemon/ and cli/

root = pathlib.Path(__file__).resolve().parent.parent
include_rx = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
problems = []

common = root / "common"
areas = {p.name for p in common.iterdir() if p.is_dir() and p.name != "include"}
areas |= {p.name for p in (common / "include" / "alumia").iterdir() if p.is_dir()}
for area in sorted(areas - LAYERS.keys()):
    problems.append(f"common/{area}: an area with no layer; add it to LAYERS in scripts/check-layers.py "
                    "and to common/CMakeLists.txt")


def owner(path: pathlib.Path):
    rel = path.relative_to(root).parts
    if rel[0] == "common":
        if rel[1] == "include":
            return "common", rel[3] if len(rel) > 4 else None
        return "common", rel[1]
    return rel[0], None


files = [p for d in ("common", "daemon", "cli") for p in (root / d).rglob("*") if p.suffix in (".cpp", ".hpp")]
for path in sorted(files):
    top, area = owner(path)
    here = LAYERS.get(area, TOP) if top == "common" else TOP
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = include_rx.match(line)
        if not m:
            continue
        target = m.group(1)
        where = f"{path.relative_to(root)}:{n}"
        parts = target.split("/")
        if parts[0] == "alumia":
            if len(parts) != 3 or parts[1] not in LAYERS:
                problems.append(f"{where}: {target} is not a header of a known area (alumia/<area>/<name>.hpp)")
                continue
            there = LAYERS[parts[1]]
            if top == "common" and parts[1] != area and there >= here:
                rel = "on the same layer as" if there == here else "above"
                problems.append(f"{where}: {area} (layer {here}) includes {target}, which is {rel} it "
                                f"({parts[1]}, layer {there})")
        elif top == "common" and (parts[0] in ("CLI", "CLI11.hpp") or target == "httplib.h" and area != "net"):
            problems.append(f"{where}: common/{area} includes {target} (CLI11 and the HTTP server stay in "
                            "daemon/ and cli/; only net/ speaks HTTP)")

if problems:
    print("check-layers: includes that cross a layer upward:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print(f"check-layers: {len(files)} files, no include crosses a layer upward")
