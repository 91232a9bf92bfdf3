// The official LINE SDK for Node.js: validateSignature, then JSON.parse, on every body (both are
// platform-agnostic: HMAC-SHA256 over the bytes and a parse). One JSON line per body.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { validateSignature } from "@line/bot-sdk";

const [folder, secondsArg, roundsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 2);
// The best of ROUNDS counts, as every harness of scripts/bench-peers.sh counts.
const rounds = Math.max(1, Number(roundsArg ?? 1));
const manifest = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
for (const body of manifest.bodies) {
  const text = readFileSync(join(folder, body.file), "utf8");
  const run = () => {
    if (!validateSignature(text, manifest.secret, body.line_signature)) throw new Error("signature");
    return JSON.parse(text);
  };
  run();
  const warm = performance.now() + (seconds * 1000) / 4;
  while (performance.now() < warm) run();
  let best = 0;
  for (let round = 0; round < rounds; round++) {
    let count = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) { run(); count++; }
    best = Math.max(best, count / ((performance.now() - start) / 1000));
  }
  console.log(JSON.stringify({ name: body.name, ops_per_s: best }));
}
