#!/usr/bin/env python3
# No jump may bypass a _cleanup_ declaration (issue 9): a goto past `_cleanup_free_ char *p = NULL;` leaves
# p uninitialised and the cleanup frees garbage at scope exit. GCC accepts that silently; clang refuses it
# ("jump bypasses initialization of variable with __attribute__((cleanup))"). This compiles every C file
# of lib/ and daemon/ with clang -fsyntax-only, with the flags of the real build (compile_commands.json),
# warnings off: only hard errors count. The build itself adds -Wjump-misses-init (lib/ and daemon/
# meson.build) for the plain-initialisation case. Prints TAP, one line per file.
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys

build = os.environ.get("EVIDOCK_BUILD_ROOT") or sys.exit("Bail out! run through meson test")
clang = shutil.which("clang")
if not clang:
    print("1..0 # SKIP clang is not installed (scripts/deps installs it)")
    sys.exit(0)
with open(os.path.join(build, "compile_commands.json")) as f:
    entries = json.load(f)

DROP_WITH_ARG = {"-o", "-MF", "-MQ", "-MT"}
DROP = {"-MD", "-c", "-Werror", "-pipe"}


def clang_args(e):
    args = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
    out, skip = [], False
    for a in args[1:]:
        if skip:
            skip = False
        elif a in DROP_WITH_ARG:
            skip = True
        elif a in DROP or a.startswith("-fsanitize") or a.startswith("-fno-sanitize"):
            continue
        else:
            out.append(a)
    return [clang, "-fsyntax-only", "-w", "-fno-color-diagnostics"] + out


def ours(e):
    f = os.path.normpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(f, os.environ.get("EVIDOCK_SOURCE_ROOT", os.path.dirname(build)))
    return rel.startswith("lib/") or rel.startswith("daemon/"), rel


todo = {}
for e in entries:
    keep, rel = ours(e)
    if keep and rel not in todo:
        todo[rel] = e


def check(item):
    rel, e = item
    p = subprocess.run(clang_args(e), cwd=e["directory"], capture_output=True, text=True)
    return rel, p.returncode, p.stderr


failed = 0
print(f"1..{len(todo)}")
with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for n, (rel, rc, err) in enumerate(pool.map(check, sorted(todo.items())), 1):
        if rc == 0:
            print(f"ok {n} - {rel}: no jump bypasses a cleanup declaration")
        else:
            failed += 1
            print(f"not ok {n} - {rel}: clang refuses it")
            for line in err.splitlines()[:20]:
                print(f"# {line}")
sys.exit(1 if failed else 0)
