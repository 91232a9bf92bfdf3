#!/usr/bin/env python3
"""Runs what README.md tells a new user to do, and checks that it does what the README says.

1. The walkthrough: starts `chat-gateway` as `cargo run -p local` would (the built binary, in a
   fresh folder, on a free port), runs every command of the blocks marked
   `<!-- readme-test: walkthrough -->` (and the two-command quick start), and checks that each
   line of the `<!-- readme-test: expect -->` blocks appears in what the gateway and the commands
   printed; the `refused` block must fail with exit status 1.
2. The minimal bot: copies the project, replaces `functions/worker/src/bot.rs` with the README's
   `<!-- readme-test: minimal-bot -->` block, and runs formatting, lints and the worker's and the
   local gateway's tests there: replacing the example bot keeps the test command green.

Usage: scripts/readme_test.py [--skip-bot]
"""
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def fail(message):
    print(f"readme: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def blocks(text, mark):
    """The fenced blocks that follow `<!-- readme-test: MARK -->`."""
    pattern = rf"<!-- readme-test: {mark} -->\n```\w*\n(.*?)```"
    return re.findall(pattern, text, flags=re.S)


def commands(block):
    """Shell commands of a block, comments and blank lines dropped."""
    out = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def walkthrough(readme):
    binary = TARGET / "debug" / "chat-gateway"
    subprocess.run(["cargo", "build", "--quiet", "--locked", "-p", "local"], cwd=ROOT, check=True)
    quick = re.search(r"## From clone to your bot answering.*?```sh\n(.*?)```", readme, flags=re.S)
    if not quick:
        fail("the quick start is gone")
    first = commands(quick.group(1))
    if first[0] != "cargo run -p local":
        fail(f"the quick start no longer starts with `cargo run -p local`: {first[0]}")
    steps = first[1:] + [c for b in blocks(readme, "walkthrough") for c in commands(b)]
    refused = [c for b in blocks(readme, "refused") for c in commands(b)]
    expected = [l for b in blocks(readme, "expect") for l in b.splitlines() if l.strip()]
    if not steps or not refused or not expected:
        fail("a marked block is missing")
    work = pathlib.Path(tempfile.mkdtemp(prefix="readme-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "META_", "GATEWAY_"))}
    env.update(GATEWAY_LISTEN=f"127.0.0.1:{port}", GATEWAY_URL=f"http://127.0.0.1:{port}")
    env.pop("RUST_LOG", None)
    log = open(work / "gateway.log", "w+")
    gateway = subprocess.Popen([str(binary)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    printed = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        def run(command):
            if not command.startswith("cargo run -p local -- "):
                fail(f"a walkthrough command is not `cargo run -p local -- …`: {command}")
            args = shlex.split(command)[5:]
            args = [str(ROOT / a) if a.startswith("events/") else a for a in args]
            result = subprocess.run([str(binary)] + args, cwd=work, env=env, capture_output=True, text=True, timeout=60)
            printed.append(result.stdout + result.stderr)
            return result

        for command in steps:
            result = run(command)
            if result.returncode != 0:
                fail(f"`{command}` exited {result.returncode}: {result.stderr.strip()}")
            time.sleep(0.3)  # one event at a time, as a person would send them
        for command in refused:
            result = run(command)
            if result.returncode != 1 or "401" not in result.stdout:
                fail(f"`{command}` should answer 401 and exit 1: {result.returncode} {result.stdout.strip()}")
        deadline = time.time() + 20
        while True:
            log.seek(0)
            output = log.read() + "".join(printed)
            missing = [l for l in expected if not any(l.rstrip() in o.rstrip() or o.startswith(l.rstrip()) for o in output.splitlines())]
            if not missing or time.time() > deadline:
                break
            time.sleep(0.2)
        if missing:
            fail(f"the README promises lines nobody printed: {missing}\n--- printed:\n{output}")
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"readme: the walkthrough's {len(steps) + len(refused)} commands print the {len(expected)} promised lines")


def minimal_bot(readme):
    bot = blocks(readme, "minimal-bot")
    if len(bot) != 1:
        fail("the minimal bot block is missing")
    copy = pathlib.Path(tempfile.mkdtemp(prefix="readme-bot-"))
    try:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.split("\n")
        for name in filter(None, files):
            source = ROOT / name
            if source.is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy / name)
        (copy / "functions/worker/src/bot.rs").write_text(bot[0])
        # The same target directory: the dependencies are built once.
        env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
        for step in (["cargo", "fmt", "--all", "--", "--check"],
                     ["cargo", "clippy", "--locked", "-p", "worker", "-p", "local", "--all-targets", "--", "-D", "warnings"],
                     ["cargo", "test", "--locked", "-p", "worker", "--lib", "--test", "logs", "--test", "media_fetch"]):
            result = subprocess.run(step, cwd=copy, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                fail(f"with the README's minimal bot, `{' '.join(step)}` fails:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    print("readme: the README's minimal bot passes formatting, lints and the worker's tests in place of the example bot")


def main():
    readme = (ROOT / "README.md").read_text()
    walkthrough(readme)
    if "--skip-bot" not in sys.argv:
        minimal_bot(readme)


if __name__ == "__main__":
    main()
