#!/usr/bin/env python3
"""Checks the source tree's include graph against the layer order of
docs/DESIGN.md section 3, and that the tree's references to DESIGN.md name
the copy in the repository.

Layers, lowest first: base, kvm, memory, devices, virtio, vmm, runtime. A file
in a layer may include its own layer and the ones below it. api/ is shared by
the host and the guest and includes only api/. agent/ (the guest) includes
only agent/ and api/: nothing of the host side. tests/, fuzz/ and bench/ sit
on top and may include anything, but nothing includes them.

usage: include_graph.py ROOT      check the tree at ROOT
       include_graph.py --self-test  check that the checker catches violations
Exit status 0 when clean, 1 with one line per violation."""
import os
import re
import sys
import tempfile

LAYERS = ["base", "kvm", "memory", "devices", "virtio", "vmm", "runtime"]
RANK = {name: i for i, name in enumerate(LAYERS)}
TOP = {"tests", "fuzz", "bench"}
SOURCE = re.compile(r"\.(h|hh|hpp|c|cc|cpp|S)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
DESIGN_REF = re.compile(r"(\S*)DESIGN\.md(?:,? section (\d+)|\s+(\d+)\b)?")
TEXT = re.compile(r"\.(h|hh|hpp|c|cc|cpp|S|sh|py|md|txt|cmake)$")


# Narrower rules inside a layer: (folder prefix, folder it may not include, why).
NARROW = [("runtime/cli/", "virtio", "the CLI parses strings into vmm/device_config.h, never device models")] + [
    ("runtime/shim/ttrpc/", low, "ttrpc is containerd's wire protocol: it knows nothing of the VM")
    for low in ("vmm", "virtio", "devices", "memory", "kvm")
]


def may_include(src_top, dst_top):
    if src_top in TOP:
        return True
    if dst_top in TOP:
        return False
    if src_top == "agent":
        return dst_top in ("agent", "api")
    if src_top == "api":
        return dst_top == "api"
    if dst_top == "api":
        return True
    if dst_top == "agent":
        return False
    if src_top in RANK and dst_top in RANK:
        return RANK[dst_top] <= RANK[src_top]
    return True


def walk(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not d.startswith("build")]
        for f in filenames:
            yield os.path.relpath(os.path.join(dirpath, f), root)


def check(root):
    problems = []
    known = set(LAYERS) | TOP | {"api", "agent"}
    design = os.path.join(root, "docs", "DESIGN.md")
    sections = set()
    if os.path.exists(design):
        sections = set(re.findall(r"^## (\d+)\.", open(design, encoding="utf-8").read(), re.M))
    for rel in walk(root):
        top = rel.split(os.sep)[0]
        if TEXT.search(rel) and rel != os.path.join("tests", "layering", "include_graph.py"):
            text = open(os.path.join(root, rel), encoding="utf-8", errors="replace").read()
            for m in DESIGN_REF.finditer(text):
                prefix, section = m.group(1), m.group(2) or m.group(3)
                where = prefix.strip("`'\"([")
                if rel == os.path.join("docs", "DESIGN.md"):
                    continue
                if not where.endswith("docs/") and not (rel.startswith("docs" + os.sep) and where == ""):
                    problems.append(f"{rel}: names {where}DESIGN.md; the design in the repo is docs/DESIGN.md")
                elif not os.path.exists(design):
                    problems.append(f"{rel}: names docs/DESIGN.md, which does not exist")
                elif section and section not in sections:
                    problems.append(f"{rel}: names docs/DESIGN.md section {section}, which it has not")
        if not SOURCE.search(rel) or top not in known:
            continue
        text = open(os.path.join(root, rel), encoding="utf-8", errors="replace").read()
        for target in INCLUDE.findall(text):
            dst_top = target.split("/")[0]
            if "/" not in target or dst_top not in known:
                continue  # same-folder or generated header
            # A Cap'n Proto or protobuf header is generated from its schema at build time.
            generated_from = None
            if target.endswith(".capnp.h"):
                generated_from = target[: -len(".h")]
            elif target.endswith(".pb.h"):
                generated_from = target[: -len(".pb.h")] + ".proto"
            if generated_from and os.path.exists(os.path.join(root, generated_from)):
                pass
            elif not os.path.exists(os.path.join(root, target)):
                problems.append(f"{rel}: includes {target}, which does not exist")
            elif not may_include(top, dst_top):
                problems.append(f"{rel}: includes {target}: {top}/ may not depend on {dst_top}/")
            else:
                for prefix, banned, why in NARROW:
                    if rel.replace(os.sep, "/").startswith(prefix) and dst_top == banned:
                        problems.append(f"{rel}: includes {target}: {why}")
    return problems


def self_test():
    cases = {
        "devices/a.h": '#include "vmm/b.h"\n',       # upward: caught
        "vmm/b.h": '#include "devices/a.h"\n',       # downward: fine
        "agent/c.cc": '#include "base/log.h"\n',     # guest into host: caught
        "base/log.h": '#include "tests/x.h"\n',      # into tests: caught
        "tests/x.h": '#include "runtime/gone.h"\n',  # missing file: caught
        "virtio/d.cc": "// see ../shared/DESIGN.md section 2\n",  # outside the repo: caught
        "docs/DESIGN.md": "## 2. Threads\n",
        "memory/e.h": "// docs/DESIGN.md section 9\n",  # no such section: caught
        "kvm/f.h": "// docs/DESIGN.md section 2\n",     # fine
        "runtime/cli/g.cc": '#include "virtio/h.h"\n',  # the CLI into device models: caught
        "virtio/h.h": "",
        "runtime/shim/ttrpc/i.cc": '#include "vmm/j.h"\n',  # the wire protocol into the VMM: caught
        "vmm/j.h": "",
    }
    with tempfile.TemporaryDirectory() as root:
        for rel, body in cases.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(body)
        found = check(root)
    expected = ["devices/a.h", "agent/c.cc", "base/log.h", "tests/x.h", "virtio/d.cc", "memory/e.h", "runtime/cli/g.cc",
                "runtime/shim/ttrpc/i.cc"]
    missing = [e for e in expected if not any(p.startswith(e + ":") for p in found)]
    extra = [p for p in found if not any(p.startswith(e + ":") for e in expected)]
    for m in missing:
        print(f"self-test: the checker missed the violation in {m}")
    for e in extra:
        print(f"self-test: the checker flagged a clean file: {e}")
    if missing or extra:
        return 1
    print(f"self-test: {len(expected)} planted violations found, no false alarm")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s)")
        return 1
    print("include graph follows " + " -> ".join(reversed(LAYERS)) + "; agent/ and api/ include no host code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
