#!/usr/bin/env python3
"""Every build the test command runs resolves each dependency with the same features.

Cargo resolves a dependency's features from the packages a command selects. The test command
builds the workspace's tests, then single packages (`cargo build --bin ingress`, `cargo build -p
local`, `cargo lambda watch`, the README's minimal bot); when their features differ, each builds its
own copy of tokio, hyper, serde and the AWS SDK above them. `shared/Cargo.toml` names the
workspace's union of features so that they do not; this check fails, naming the package and the
features, when a change to a manifest makes them differ again.
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = ("shared", "testkit", "ingress", "worker", "local")

# The selections the test command builds, as `cargo tree` arguments (dev-dependencies count only
# where tests or all targets are built).
SELECTIONS = {
    "cargo build --bin ingress": ["-p", "ingress", "-e", "normal,build"],
    "cargo build --bin worker": ["-p", "worker", "-e", "normal,build"],
    "cargo build -p local": ["-p", "local", "-e", "normal,build"],
    "cargo clippy -p worker -p local --all-targets": ["-p", "worker", "-p", "local"],
    "cargo test -p worker": ["-p", "worker"],
}


def features(args):
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--prefix", "none", "-f", "{p}|{f}", *args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    resolved = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        package, feats = line.split("|", 1)
        package = package.replace(" (proc-macro)", "").strip()
        resolved[package] = feats.replace(" (*)", "").strip()
    return resolved


def main():
    workspace = features(["--workspace"])
    drift = []
    for command, args in SELECTIONS.items():
        for package, feats in sorted(features(args).items()):
            if package.split(" ")[0] in WORKSPACE or package not in workspace:
                continue
            if workspace[package] != feats:
                drift.append(f"{command}: {package} gets [{feats}], the workspace [{workspace[package]}]")
    if drift:
        print("features differ between builds; add the workspace's to shared/Cargo.toml's unification list:")
        print("\n".join(drift))
        sys.exit(1)
    print(f"features: {len(SELECTIONS)} single-package builds resolve every dependency as the workspace does")


if __name__ == "__main__":
    main()
