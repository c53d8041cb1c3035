#!/usr/bin/env python3
"""Run spread tasks over ssh, the way spread would, without spread.

spread itself cannot be installed here, so this runs the same spread.yaml and
tests/spread/<suite>/<task>/task.yaml files on an already allocated machine:

* environment cascades project -> backend -> system -> suite -> task, exported in that
  order before every script; `$(HOST: cmd)` values are evaluated on the host; variants
  (`NAME/variant: value`) are expanded;
* sections run in spread's order: project prepare, suite prepare, then per task
  project prepare-each, suite prepare-each, task prepare, execute, task restore,
  suite restore-each, project restore-each; suite restore and project restore at the end.
  On a failure the debug sections run and their output is shown; restore always runs;
* scripts run under `bash` with `set -eu`, in the task's directory, with spread's
  helpers MATCH, NOMATCH, ERROR and FATAL defined as shell functions (REBOOT is refused);
* `systems:` filters tasks (`-name` removes, `+name` adds, a plain list replaces);
* tasks run by `priority` (higher first), then by name;
* `--suite DIR` (repeatable) runs only those suites (not spread's: tests/vm/run splits the
  suites between its two VMs with it);
* each task prints PASS/FAIL/SKIP and the run ends with `N passed, N failed`.

Usage: spread-run.py --ssh 'ssh ARGS user@host' --backend adhoc --system debian-12-64
                     [--project DIR] [--suite DIR...] [TASK-FILTER...]
"""

import argparse
import base64
import os
import re
import shlex
import subprocess
import sys
import time

import yaml  # python3-yaml (Debian), installed by tests/vm/install-host.sh

SPREAD_HELPERS = r'''
# MATCH/NOMATCH read stdin and grep it (ERE); on failure they show what they got. Tracing is
# paused inside them and restored after.
MATCH() {
    { local _x=$-; set +x; } 2>/dev/null
    local input rc=0
    input=$(cat)
    if ! printf '%s\n' "$input" | grep -q -E "$@"; then
        echo "error: pattern not found, got:" >&2
        printf '%s\n' "$input" >&2
        rc=1
    fi
    case $_x in *x*) set -x ;; esac
    return $rc
}
NOMATCH() {
    { local _x=$-; set +x; } 2>/dev/null
    local input rc=0
    input=$(cat)
    if printf '%s\n' "$input" | grep -q -E "$@"; then
        echo "error: pattern found, got:" >&2
        printf '%s\n' "$input" >&2
        rc=1
    fi
    case $_x in *x*) set -x ;; esac
    return $rc
}
ERROR() { { set +x; } 2>/dev/null; echo "error: $*" >&2; exit 1; }
FATAL() { { set +x; } 2>/dev/null; echo "fatal: $*" >&2; exit 213; }
REBOOT() { { set +x; } 2>/dev/null; echo "error: REBOOT is not supported by tests/vm" >&2; exit 1; }
'''

DURATION = re.compile(r"^(\d+)([smh])$")


def seconds(value, default):
    if value is None:
        return default
    if isinstance(value, int):
        return value
    m = DURATION.match(str(value).strip())
    if not m:
        return default
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def systems_of(entries):
    """Names of a backend's systems (entries are names or one-key maps)."""
    out = {}
    for e in entries or []:
        if isinstance(e, dict):
            for k, v in e.items():
                out[k] = v or {}
        else:
            out[str(e)] = {}
    return out


def filter_systems(current, spec):
    """Apply a suite's or task's `systems:` list to the current list of names."""
    if not spec:
        return current
    plain = [s for s in spec if not s.startswith(("+", "-"))]
    result = list(plain) if plain else list(current)
    for s in spec:
        if s.startswith("-"):
            result = [r for r in result if r != s[1:]]
        elif s.startswith("+") and s[1:] not in result:
            result.append(s[1:])
    return result


def host_eval(value):
    """Spread's `$(HOST: cmd)`: evaluated on the host, before anything reaches the machine."""
    def run(m):
        return subprocess.run(["bash", "-c", m.group(1)], capture_output=True, text=True,
                              check=False).stdout.strip()
    return re.sub(r"\$\(HOST:\s*(.*?)\)", run, str(value))


def variants_of(env):
    names = []
    for key in env or {}:
        if "/" in key:
            for v in key.split("/", 1)[1].split(","):
                if v not in names:
                    names.append(v)
    return names


def env_for_variant(env, variant):
    out = {}
    for key, value in (env or {}).items():
        if "/" in key:
            name, vs = key.split("/", 1)
            if variant in vs.split(","):
                out[name] = value
        else:
            out.setdefault(key, value)
    return out


def export_lines(env):
    lines = []
    for key, value in env.items():
        value = "" if value is None else host_eval(value)
        # Like spread: double quotes, so that $OTHER references expand on the machine.
        lines.append(f'export {key}="{value}"')
    return "\n".join(lines)


class Runner:
    def __init__(self, args):
        self.args = args
        self.ssh = shlex.split(args.ssh)
        self.project_dir = os.path.abspath(args.project)
        self.project = load(os.path.join(self.project_dir, "spread.yaml"))
        self.remote_path = self.project.get("path") or f"/home/{self.project.get('project', 'project')}"
        backend = (self.project.get("backends") or {}).get(args.backend)
        if backend is None:
            raise SystemExit(f"spread-run: no backend {args.backend!r} in spread.yaml")
        self.backend = backend
        systems = systems_of(backend.get("systems"))
        if args.system not in systems:
            raise SystemExit(f"spread-run: no system {args.system!r} in backend {args.backend!r}")
        self.system = systems[args.system]
        self.results = []

    def base_env(self, suite_name, suite, task_name, variant):
        env = {
            "SPREAD_PROJECT": self.project.get("project", ""),
            "SPREAD_PATH": self.remote_path,
            "SPREAD_BACKEND": self.args.backend,
            "SPREAD_SYSTEM": self.args.system,
            "SPREAD_SUITE": suite_name or "",
            "SPREAD_TASK": task_name or "",
            "SPREAD_VARIANT": variant or "",
            "SPREAD_JOB": f"{self.args.backend}:{self.args.system}:{task_name or suite_name or ''}"
                          + (f":{variant}" if variant else ""),
            "SPREAD_REBOOT": "0",
        }
        for layer in (self.project, self.backend, self.system, suite or {}):
            env.update(env_for_variant(layer.get("environment"), variant))
        return env

    def run_script(self, script, env, cwd, timeout):
        """Run one section on the machine; returns (ok, output)."""
        if not script or not str(script).strip():
            return True, ""
        body = "\n".join([
            "set -eu",
            SPREAD_HELPERS,
            export_lines(env),
            f"cd {shlex.quote(cwd)}",
            "set -x",
            str(script),
        ])
        encoded = base64.b64encode(body.encode()).decode()
        remote = (f"f=$(mktemp /tmp/spread-XXXXXX.sh) && echo {encoded} | base64 -d >\"$f\" && "
                  f"bash \"$f\"; rc=$?; rm -f \"$f\"; exit $rc")
        try:
            p = subprocess.run(self.ssh + [remote], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return False, out + f"\nerror: killed after {timeout}s (kill-timeout)\n"
        return p.returncode == 0, p.stdout

    def section(self, name, script, env, cwd, timeout, log):
        t0 = time.monotonic()
        ok, out = self.run_script(script, env, cwd, timeout)
        if script and str(script).strip():
            log.append(f"----- {name} ({'ok' if ok else 'FAILED'}, {time.monotonic() - t0:.0f}s)\n{out}")
        return ok

    def tasks(self):
        """Yield (suite_name, suite, task_name, task) in a stable order."""
        suites = self.project.get("suites") or {}
        wanted = [w.rstrip("/") + "/" for w in self.args.suite or []]
        for suite_name in sorted(suites):
            if wanted and suite_name.rstrip("/") + "/" not in wanted:
                continue
            suite = suites[suite_name] or {}
            sdir = os.path.join(self.project_dir, suite_name)
            for entry in sorted(os.listdir(sdir)):
                tfile = os.path.join(sdir, entry, "task.yaml")
                if os.path.isfile(tfile):
                    yield suite_name, suite, os.path.join(suite_name.rstrip("/"), entry), load(tfile)

    def selected(self, task_name):
        return not self.args.filter or any(f in task_name for f in self.args.filter)

    def run(self):
        proj_timeout = seconds(self.project.get("kill-timeout"), 15 * 60)
        env0 = self.base_env("", {}, "", "")
        log = []
        if not self.section("project prepare", self.project.get("prepare"), env0,
                            self.remote_path, proj_timeout, log):
            print("".join(log))
            print("FAIL project prepare")
            self.finish()
            return
        by_suite = {}
        for suite_name, suite, task_name, task in self.tasks():
            if self.selected(task_name):
                by_suite.setdefault(suite_name, (suite, []))[1].append((task_name, task))
        for suite_name, (suite, tasks) in by_suite.items():
            # spread schedules higher `priority` first; equal priorities keep name order here.
            tasks.sort(key=lambda nt: -int(nt[1].get("priority") or 0))
            self.run_suite(suite_name, suite, tasks, proj_timeout)
        log = []
        self.section("project restore", self.project.get("restore"), env0, self.remote_path,
                     proj_timeout, log)
        self.finish()

    def run_suite(self, suite_name, suite, tasks, default_timeout):
        suite_systems = filter_systems(list(systems_of(self.backend.get("systems"))),
                                       suite.get("systems"))
        env = self.base_env(suite_name, suite, "", "")
        sdir = os.path.join(self.remote_path, suite_name)
        timeout = seconds(suite.get("kill-timeout"), default_timeout)
        runnable = [(n, t) for n, t in tasks
                    if self.args.system in filter_systems(suite_systems, t.get("systems"))]
        for n, t in tasks:
            if (n, t) not in runnable:
                self.report("SKIP", n, 0)
        if not runnable:
            return
        log = []
        if not self.section(f"suite prepare {suite_name}", suite.get("prepare"), env, sdir,
                            timeout, log):
            print("".join(log))
            for n, _ in runnable:
                self.report("FAIL", n, 0, "suite prepare failed")
        else:
            for task_name, task in runnable:
                for variant in variants_of(task.get("environment")) or [""]:
                    self.run_task(suite_name, suite, task_name, task, variant, timeout)
        log = []
        if not self.section(f"suite restore {suite_name}", suite.get("restore"), env, sdir,
                            timeout, log):
            print("".join(log))
            print(f"WARN suite restore {suite_name} failed")

    def run_task(self, suite_name, suite, task_name, task, variant, default_timeout):
        env = self.base_env(suite_name, suite, task_name, variant)
        env.update(env_for_variant(task.get("environment"), variant))
        cwd = os.path.join(self.remote_path, task_name)
        timeout = seconds(task.get("kill-timeout"), default_timeout)
        name = task_name + (f":{variant}" if variant else "")
        log = []
        t0 = time.monotonic()
        failed = None
        steps = [("project prepare-each", self.project.get("prepare-each")),
                 ("suite prepare-each", suite.get("prepare-each")),
                 ("prepare", task.get("prepare")),
                 ("execute", task.get("execute"))]
        for label, script in steps:
            if not self.section(label, script, env, cwd, timeout, log):
                failed = label
                break
        if failed:
            for label, script in (("debug", task.get("debug")),
                                  ("suite debug-each", suite.get("debug-each")),
                                  ("project debug-each", self.project.get("debug-each"))):
                self.section(label, script, env, cwd, timeout, log)
        restore_ok = True
        for label, script in (("restore", task.get("restore")),
                              ("suite restore-each", suite.get("restore-each")),
                              ("project restore-each", self.project.get("restore-each"))):
            restore_ok = self.section(label, script, env, cwd, timeout, log) and restore_ok
        if not restore_ok and not failed:
            failed = "restore"
        if failed or self.args.verbose:
            print("".join(log), end="")
        self.report("FAIL" if failed else "PASS", name, time.monotonic() - t0,
                    f"{failed} failed" if failed else "")

    def report(self, status, name, secs, why=""):
        self.results.append(status)
        extra = f" ({why})" if why else ""
        print(f"{status} {name} [{secs:.0f}s]{extra}", flush=True)

    def finish(self):
        passed = self.results.count("PASS")
        failed = self.results.count("FAIL")
        skipped = self.results.count("SKIP")
        print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""),
              flush=True)
        if not self.results:
            print("spread-run: no task ran", flush=True)
            sys.exit(1)
        sys.exit(1 if failed else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ssh", required=True, help="ssh command line that reaches the machine")
    p.add_argument("--backend", default="adhoc")
    p.add_argument("--system", default="debian-12-64")
    p.add_argument("--project", default=".")
    p.add_argument("--verbose", action="store_true", help="print every section's output")
    p.add_argument("--suite", action="append", metavar="DIR",
                   help="run only this suite (repeatable; default: every suite)")
    p.add_argument("filter", nargs="*", help="run only tasks whose name contains one of these")
    Runner(p.parse_args()).run()


if __name__ == "__main__":
    main()
