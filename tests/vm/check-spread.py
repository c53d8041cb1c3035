#!/usr/bin/env python3
"""Check spread.yaml and every tests/spread/<suite>/<task>/task.yaml against spread's schema.

spread cannot be installed here, so this checks what spread's project loader would reject:
unknown keys at each level, wrong types, suites without a directory, tasks without
summary/execute, `systems:` entries naming no system of any backend, bad durations,
sections that are not shell text (and shell syntax, with `bash -n`), an adhoc backend
without allocate/ADDRESS.

Usage: check-spread.py [PROJECT-DIR]; prints problems and exits 1 if there are any.
"""

import os
import re
import subprocess
import sys

import yaml  # python3-yaml (Debian)

SECTIONS = ("prepare", "restore", "debug", "prepare-each", "restore-each", "debug-each")
PROJECT_KEYS = {"project", "path", "environment", "backends", "suites", "include", "exclude",
                "rename", "repack", "reroot", "warn-timeout", "kill-timeout", *SECTIONS}
BACKEND_KEYS = {"type", "key", "location", "plan", "memory", "storage", "systems", "environment",
                "allocate", "discard", "halt-timeout", "warn-timeout", "kill-timeout", "priority",
                "cpu-family", "features", "wait-timeout", *SECTIONS}
BACKEND_TYPES = {"google", "linode", "lxd", "qemu", "adhoc", "humbox", "openstack"}
SYSTEM_KEYS = {"image", "kernel", "username", "password", "workers", "storage", "bios",
               "secure-boot", "manual", "priority", "environment", "plan", "memory",
               "cpu-family", "location", "halt-timeout", *SECTIONS}
SUITE_KEYS = {"summary", "details", "systems", "backends", "variants", "environment", "manual",
              "priority", "warn-timeout", "kill-timeout", *SECTIONS}
TASK_KEYS = {"summary", "details", "systems", "backends", "variants", "environment", "prepare",
             "execute", "restore", "debug", "artifacts", "samples", "priority", "manual",
             "warn-timeout", "kill-timeout"}
DURATION = re.compile(r"^-?\d+(\.\d+)?(ns|us|ms|s|m|h)$")


class Checker:
    def __init__(self, root):
        self.root = root
        self.problems = []

    def bad(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def keys(self, where, data, allowed):
        if not isinstance(data, dict):
            self.bad(where, "must be a mapping")
            return False
        for k in data:
            if k not in allowed:
                self.bad(where, f"unknown key {k!r}")
        return True

    def durations(self, where, data):
        for k in ("warn-timeout", "kill-timeout", "halt-timeout", "wait-timeout"):
            if k in data and not DURATION.match(str(data[k])):
                self.bad(where, f"{k} {data[k]!r} is not a duration like 10m")

    def script(self, where, text):
        if text is None:
            return
        if not isinstance(text, str):
            self.bad(where, "must be shell text")
            return
        # Spread helpers are functions at run time; bash -n only checks syntax.
        p = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True,
                           check=False)
        if p.returncode != 0:
            self.bad(where, "shell syntax: " + p.stderr.strip().replace("\n", "; "))

    def sections(self, where, data, names):
        for s in names:
            if s in data:
                self.script(f"{where} {s}", data[s])

    def environment(self, where, env):
        if env is None:
            return
        if not isinstance(env, dict):
            self.bad(where, "environment must be a mapping")
            return
        for k, v in env.items():
            name = str(k).split("/", 1)[0]
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                self.bad(where, f"bad environment name {k!r}")
            if isinstance(v, (dict, list)):
                self.bad(where, f"environment {k!r} must be a scalar")

    def systems_filter(self, where, spec, known):
        if spec is None:
            return
        if not isinstance(spec, list):
            self.bad(where, "systems must be a list")
            return
        for s in spec:
            name = str(s).lstrip("+-")
            pattern = re.compile("^" + re.escape(name).replace(r"\*", ".*") + "$")
            if not any(pattern.match(k) for k in known):
                self.bad(where, f"system {s!r} is in no backend")

    def run(self):
        path = os.path.join(self.root, "spread.yaml")
        with open(path, encoding="utf-8") as f:
            project = yaml.safe_load(f)
        if not self.keys("spread.yaml", project, PROJECT_KEYS):
            return self.problems
        for k in ("project", "backends", "suites"):
            if k not in project:
                self.bad("spread.yaml", f"missing {k!r}")
        if "path" in project and not str(project["path"]).startswith("/"):
            self.bad("spread.yaml", "path must be absolute")
        self.durations("spread.yaml", project)
        self.environment("spread.yaml", project.get("environment"))
        self.sections("spread.yaml", project, SECTIONS)
        known = set()
        for name, backend in (project.get("backends") or {}).items():
            where = f"spread.yaml backend {name}"
            if not self.keys(where, backend, BACKEND_KEYS):
                continue
            btype = backend.get("type", name)
            if btype not in BACKEND_TYPES:
                self.bad(where, f"unknown backend type {btype!r}")
            self.durations(where, backend)
            self.environment(where, backend.get("environment"))
            self.sections(where, backend, SECTIONS + ("allocate", "discard"))
            if btype == "adhoc":
                if "ADDRESS" not in str(backend.get("allocate", "")):
                    self.bad(where, "adhoc allocate must call ADDRESS")
            systems = backend.get("systems") or []
            if not systems:
                self.bad(where, "no systems")
            for entry in systems:
                if isinstance(entry, dict):
                    for sname, sdata in entry.items():
                        known.add(sname)
                        self.keys(f"{where} system {sname}", sdata or {}, SYSTEM_KEYS)
                else:
                    known.add(str(entry))
        for sname, suite in (project.get("suites") or {}).items():
            where = f"spread.yaml suite {sname}"
            if not sname.endswith("/"):
                self.bad(where, "suite names end with '/'")
            suite = suite or {}
            if not self.keys(where, suite, SUITE_KEYS):
                continue
            if "summary" not in suite:
                self.bad(where, "missing summary")
            self.durations(where, suite)
            self.environment(where, suite.get("environment"))
            self.sections(where, suite, SECTIONS)
            self.systems_filter(where, suite.get("systems"), known)
            sdir = os.path.join(self.root, sname)
            if not os.path.isdir(sdir):
                self.bad(where, "directory does not exist")
                continue
            tasks = [d for d in sorted(os.listdir(sdir))
                     if os.path.isfile(os.path.join(sdir, d, "task.yaml"))]
            if not tasks:
                self.bad(where, "no tasks")
            for t in tasks:
                self.task(os.path.join(sname, t), os.path.join(sdir, t, "task.yaml"), known)
        return self.problems

    def task(self, name, path, known):
        with open(path, encoding="utf-8") as f:
            task = yaml.safe_load(f)
        where = f"{name}/task.yaml"
        if not self.keys(where, task, TASK_KEYS):
            return
        for k in ("summary", "execute"):
            if not task.get(k):
                self.bad(where, f"missing {k}")
        self.durations(where, task)
        self.environment(where, task.get("environment"))
        self.systems_filter(where, task.get("systems"), known)
        self.sections(where, task, ("prepare", "execute", "restore", "debug"))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    problems = Checker(root).run()
    for p in problems:
        print(f"spread check: {p}")
    if problems:
        sys.exit(1)
    print("spread check: spread.yaml and task.yaml files are valid")


if __name__ == "__main__":
    main()
