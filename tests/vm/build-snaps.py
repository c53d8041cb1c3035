#!/usr/bin/env python3
"""Build the snaps the VM installs, with mksquashfs only (no snapcraft, no store).

* the app snap, from the SAME snap/snapcraft.yaml and hooks/ a snapcraft build uses:
  meta/snap.yaml is generated from snapcraft.yaml (the keys snapcraft copies into it),
  hooks/ becomes meta/hooks/, and the static pocketses binary goes to bin/;
* a placeholder for the snap's base (core22): type base, the mount-point directories
  snap-confine expects, and busybox as /bin/sh with the usual applets so that the
  `#!/bin/sh` hook shims run. It is NOT Ubuntu's core22: only enough of it for this test;
* a placeholder `snapd` snap (type snapd) that carries the snap-confine AppArmor profile.
  snapd insists on a snapd snap for apps whose base is not `core`, and would otherwise
  try the store for it.

Usage: build-snaps.py --repo DIR --out DIR --binary FILE --rootfs DIR [--busybox FILE]
Prints nothing on success but the list of snaps written.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import yaml  # python3-yaml (Debian), installed by tests/vm/install-host.sh

# App keys snapcraft copies from snapcraft.yaml into meta/snap.yaml unchanged.
APP_KEYS = (
    "command", "command-chain", "daemon", "daemon-scope", "restart-condition", "restart-delay",
    "start-timeout", "stop-timeout", "stop-command", "post-stop-command", "reload-command",
    "refresh-mode", "stop-mode", "install-mode", "timer", "sockets", "plugs", "slots",
    "environment", "after", "before", "watchdog-timeout", "activates-on", "common-id",
    "busname", "autostart", "aliases", "passthrough",
)
HOOK_KEYS = ("plugs", "slots", "environment", "command-chain", "passthrough")
TOP_KEYS = ("name", "version", "summary", "description", "base", "confinement", "grade",
            "assumes", "plugs", "slots", "environment", "epoch", "license", "title", "type",
            "layout", "system-usernames")
# Directories a base must provide as mount points: snap-confine bind-mounts host paths there, and
# interfaces add mounts (system-observe binds the host's /boot on /boot; without the directory
# snap-update-ns tries a writable mimic over / and leaves a broken mount namespace behind).
BASE_DIRS = (
    "bin", "boot", "dev", "etc", "home", "lib", "lib/firmware", "lib/modules", "lib64", "media", "mnt",
    "opt", "proc", "root", "run", "run/netns", "sbin", "snap", "srv", "sys", "tmp", "usr/bin",
    "usr/lib", "usr/lib/snapd", "usr/libexec", "usr/sbin", "usr/share", "usr/src", "var/cache",
    "var/lib", "var/lib/extrausers", "var/lib/snapd", "var/log", "var/snap", "var/tmp",
    "writable", "etc/ssl",
)
APPLETS = (
    "sh", "ash", "cat", "echo", "printf", "test", "[", "true", "false", "sleep", "ls", "mkdir",
    "rm", "rmdir", "cp", "mv", "ln", "chmod", "env", "grep", "sed", "awk", "head", "tail", "tr",
    "cut", "wc", "id", "date", "touch", "readlink", "dirname", "basename", "stat", "ps",
)


def fail(msg):
    print(f"build-snaps: {msg}", file=sys.stderr)
    sys.exit(1)


def dump_yaml(data, path):
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)


def squash(src, dest):
    tmp = dest + ".tmp"
    subprocess.run(
        ["mksquashfs", src, tmp, "-noappend", "-comp", "xz", "-all-root", "-no-xattrs",
         "-no-fragments", "-quiet", "-no-progress",
         # Reproducible: same content, same bytes (the VM snapshot is keyed on the base snaps).
         "-all-time", "0", "-mkfs-time", "0"],
        check=True, stdout=subprocess.DEVNULL)
    os.replace(tmp, dest)
    print(dest)


def cargo_version(repo):
    with open(os.path.join(repo, "Cargo.toml"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    fail("no version in Cargo.toml")
    return None


def snap_yaml_from_snapcraft(sc, repo, version_suffix):
    """meta/snap.yaml as snapcraft would write it for the keys this project uses."""
    meta = {k: sc[k] for k in TOP_KEYS if k in sc}
    if "name" not in meta or "apps" not in sc:
        fail("snap/snapcraft.yaml needs at least name and apps")
    # snapcraft resolves adopt-info at build time; here the crate version stands in.
    version = str(meta.get("version") or cargo_version(repo))
    meta["version"] = version + version_suffix
    meta["architectures"] = ["amd64"]
    meta.setdefault("confinement", "strict")
    meta.setdefault("grade", "devel")
    meta["apps"] = {}
    for name, app in sc["apps"].items():
        meta["apps"][name] = {k: app[k] for k in APP_KEYS if k in app}
    if sc.get("hooks"):
        meta["hooks"] = {}
        for name, hook in sc["hooks"].items():
            meta["hooks"][name] = {k: hook[k] for k in HOOK_KEYS if k in (hook or {})}
    return meta


def hook_dirs(repo):
    """Where hook shims live: hooks/ (copied in by a part) and snap/hooks/ (snapcraft's own)."""
    return [d for d in (os.path.join(repo, "hooks"), os.path.join(repo, "snap", "hooks"))
            if os.path.isdir(d)]


def build_app(args, sc, work):
    root = os.path.join(work, "app")
    os.makedirs(os.path.join(root, "meta", "hooks"))
    os.makedirs(os.path.join(root, "bin"))
    meta = snap_yaml_from_snapcraft(sc, args.repo, args.version_suffix)
    dump_yaml(meta, os.path.join(root, "meta", "snap.yaml"))
    shutil.copy2(args.binary, os.path.join(root, "bin", "pocketses"))
    os.chmod(os.path.join(root, "bin", "pocketses"), 0o755)
    for d in hook_dirs(args.repo):
        for name in sorted(os.listdir(d)):
            src = os.path.join(d, name)
            if os.path.isfile(src) and not name.startswith(".") and not name.endswith(".md"):
                dest = os.path.join(root, "meta", "hooks", name)
                shutil.copy2(src, dest)
                os.chmod(dest, 0o755)
    for name in (meta.get("hooks") or {}):
        if not os.path.exists(os.path.join(root, "meta", "hooks", name)):
            fail(f"snapcraft.yaml declares hook {name!r} but hooks/{name} does not exist")
    # Files that a snapcraft part would also prime (the gadget, docs, ...) are not needed here.
    if args.marker:
        with open(os.path.join(root, "bin", ".build"), "w", encoding="utf-8") as f:
            f.write(args.marker + "\n")
    out = os.path.join(args.out, f"{meta['name']}_{meta['version']}_amd64.snap")
    squash(root, out)
    return meta


def build_base(args, name, work):
    root = os.path.join(work, "base")
    for d in BASE_DIRS:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.makedirs(os.path.join(root, "meta"))
    dump_yaml({"name": name, "version": "vm-placeholder", "type": "base",
               "summary": f"local placeholder for {name} (busybox only)",
               "description": "Built by tests/vm for the VM harness; not Ubuntu's base snap."},
              os.path.join(root, "meta", "snap.yaml"))
    shutil.copy2(args.busybox, os.path.join(root, "bin", "busybox"))
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    os.symlink("../../bin/busybox", os.path.join(root, "usr", "bin", "env"))
    squash(root, os.path.join(args.out, f"{name}_vm.snap"))


def build_snapd(args, work):
    root = os.path.join(work, "snapd")
    os.makedirs(os.path.join(root, "meta"))
    os.makedirs(os.path.join(root, "etc", "apparmor.d"))
    profile = os.path.join(args.rootfs, "etc/apparmor.d/usr.lib.snapd.snap-confine.real")
    if not os.path.isfile(profile):
        fail(f"missing {profile}: the guest rootfs has no snapd AppArmor profile")
    shutil.copy2(profile, os.path.join(root, "etc/apparmor.d/usr.lib.snapd.snap-confine"))
    version = subprocess.run(
        ["dpkg-query", "--admindir", os.path.join(args.rootfs, "var/lib/dpkg"), "-W",
         "-f=${Version}", "snapd"], check=True, capture_output=True, text=True).stdout
    version = version.split("-")[0] or "0"
    dump_yaml({"name": "snapd", "version": version, "type": "snapd",
               "summary": "local placeholder snapd snap (metadata and snap-confine profile)",
               "description": "Built by tests/vm; the distro snapd keeps running."},
              os.path.join(root, "meta", "snap.yaml"))
    squash(root, os.path.join(args.out, "snapd_vm.snap"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--binary", help="static pocketses binary (needed for the app snap)")
    p.add_argument("--rootfs", help="guest rootfs (for the snap-confine profile)")
    p.add_argument("--busybox", default="/bin/busybox")
    p.add_argument("--what", choices=("app", "bases"), default="app")
    p.add_argument("--version-suffix", default="", help="appended to the app version")
    p.add_argument("--marker", default="", help="text stored in the app snap to tell builds apart")
    p.add_argument("--print-base", action="store_true", help="print the app's base and exit")
    args = p.parse_args()

    sc_path = os.path.join(args.repo, "snap", "snapcraft.yaml")
    if not os.path.isfile(sc_path):
        fail(f"{sc_path} does not exist")
    with open(sc_path, encoding="utf-8") as f:
        sc = yaml.safe_load(f)
    base = sc.get("base", "core22")
    if args.print_base:
        print(base)
        return
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pocketses-snaps-") as work:
        if args.what == "bases":
            if not args.rootfs:
                fail("--rootfs is needed for the base snaps")
            build_snapd(args, work)
            build_base(args, base, work)
        else:
            if not args.binary or not os.path.isfile(args.binary):
                fail(f"binary {args.binary!r} does not exist")
            build_app(args, sc, work)


if __name__ == "__main__":
    main()
