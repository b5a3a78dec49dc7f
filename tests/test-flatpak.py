#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Offline checks of the Flatpak manifest (no runtime can be downloaded here), as TAP.

flatpak-builder --show-manifest parses it the way a build would; under
G_DEBUG=fatal-warnings an unknown key or a wrong type aborts it instead of being a warning
(a control manifest with an unknown key proves that). Then the manifest must name the
application ID, the command and one meson module building this tree, and ask for no more
than the network: the bus names of DESIGN.md are all under the application ID, which a
Flatpak app owns by default, and notifications go through the portal.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

APP_ID = "io.github.piggyback.PiggyBack"
BUS_NAMES = [APP_ID + ".Forward", APP_ID + ".Forward.instance2"]

results = []


def check(ok, name, detail=""):
    results.append((bool(ok), name, detail))


def show_manifest(builder, path, workdir):
    env = dict(os.environ, G_DEBUG="fatal-warnings")
    # flatpak-builder leaves a .flatpak-builder/ state directory in its working directory
    return subprocess.run([builder, "--show-manifest", path], cwd=workdir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    args = ap.parse_args()

    with open(args.manifest, encoding="utf-8") as f:
        manifest = json.load(f)
    check(os.path.basename(args.manifest) == APP_ID + ".json", "file is named after the app ID")

    builder = shutil.which("flatpak-builder")
    skipped = builder is None
    if not skipped:
        with tempfile.TemporaryDirectory() as workdir:
            run = show_manifest(builder, os.path.abspath(args.manifest), workdir)
            check(run.returncode == 0, "flatpak-builder --show-manifest accepts it",
                  run.stderr.strip())
            shown = {}
            try:
                shown = json.loads(run.stdout)
            except ValueError:
                pass
            check(shown.get("id") == APP_ID, "flatpak-builder reads the app ID")
            control = dict(manifest, **{"no-such-key": True})
            control_path = os.path.join(workdir, APP_ID + ".json")
            with open(control_path, "w", encoding="utf-8") as f:
                json.dump(control, f)
            run = show_manifest(builder, control_path, workdir)
            check(run.returncode != 0, "control: an unknown key fails the check")

    check(manifest.get("id") == APP_ID, "id is " + APP_ID, manifest.get("id"))
    check(manifest.get("command") == "piggyback-forward", "command is piggyback-forward")
    check(manifest.get("runtime") == "org.gnome.Platform"
          and manifest.get("sdk") == "org.gnome.Sdk", "GNOME runtime and SDK")
    modules = manifest.get("modules", [])
    check(len(modules) == 1 and isinstance(modules[0], dict), "exactly one module")
    module = modules[0] if modules and isinstance(modules[0], dict) else {}
    check(module.get("buildsystem") == "meson", "the module builds with meson")
    sources = module.get("sources", [])
    check(any(s.get("type") == "dir" and s.get("path") == ".." for s in sources),
          "the module builds this tree")
    check("-Dtests=false" in module.get("config-opts", []), "tests are not built in the sandbox")

    finish = manifest.get("finish-args", [])
    check("--share=network" in finish, "network access")
    owned = [a.split("=", 1)[1] for a in finish if a.startswith("--own-name=")]
    check(all(n == APP_ID or n.startswith(APP_ID + ".") for n in owned),
          "owns no name outside the app ID", " ".join(owned))
    check(all(n.startswith(APP_ID + ".") for n in BUS_NAMES),
          "the bus names of DESIGN.md are under the app ID (owned by default)")
    check(not any(a.startswith(("--socket=session-bus", "--socket=system-bus")) for a in finish),
          "no whole-bus access")
    check(not any(a.startswith("--talk-name=org.freedesktop.Notifications") for a in finish),
          "notifications through the portal, not the notification service")
    allowed = {"--share=network"} | {"--own-name=" + n for n in owned}
    check(set(finish) <= allowed, "nothing beyond network and own names",
          " ".join(sorted(set(finish) - allowed)))

    print(f"1..{len(results) + (1 if skipped else 0)}")
    n = 0
    for ok, name, detail in results:
        n += 1
        print(f"{'ok' if ok else 'not ok'} {n} - {name}")
        if not ok and detail:
            for line in str(detail).splitlines()[:20]:
                print(f"# {line}")
    if skipped:
        n += 1
        print(f"ok {n} - flatpak-builder --show-manifest # SKIP flatpak-builder not installed")
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
