#!/usr/bin/env python3
"""Checks every LINE message builder (shared::messages::line::catalogue) against LINE's own
OpenAPI definition of the Messaging API: each reply request must match `ReplyMessageRequest`,
with every message dispatched on its `type` the way the definition's discriminators say, every
required property present, every property one the definition declares, and types, enums and
lengths respected.

Usage: scripts/check_messages.py [SPEC]   (default ../shared/specs/line/messaging-api.yml;
skipped, saying so, when the definition is absent)
"""
import json
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "specs" / "line" / "messaging-api.yml"
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


class Checker:
    def __init__(self, spec):
        self.schemas = spec["components"]["schemas"]

    def resolve(self, schema):
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def merged(self, schema):
        """Properties, required names and other keywords of a schema and its allOf parts."""
        schema = self.resolve(schema)
        props, required, extra, keywords = {}, set(schema.get("required", [])), None, dict(schema)
        for part in schema.get("allOf", []):
            p, r, e, k = self.merged(part)
            props.update(p)
            required |= r
            extra = extra or e
            for key, value in k.items():
                keywords.setdefault(key, value)
        props.update(schema.get("properties", {}))
        extra = schema.get("additionalProperties", extra)
        return props, required, extra, keywords

    def check(self, value, schema, path, dispatch=True):
        problems = []
        schema = self.resolve(schema)
        discriminator = schema.get("discriminator")
        if dispatch and discriminator and isinstance(value, dict):
            tag = value.get(discriminator["propertyName"])
            target = discriminator.get("mapping", {}).get(tag)
            if target is None:
                return [f"{path}: {discriminator['propertyName']} {tag!r} is not one the definition knows"]
            # The concrete schema includes the base through allOf; do not dispatch again there.
            return self.check(value, {"$ref": target}, f"{path}<{tag}>", dispatch=False)
        props, required, extra, keywords = self.merged(schema)
        kind = keywords.get("type")
        if kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(f"{path}: expected an integer, got {type(value).__name__}")
        elif kind == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f"{path}: expected a number")
        elif kind in TYPES and not isinstance(value, TYPES[kind]):
            return [f"{path}: expected {kind}, got {type(value).__name__}"]
        if "enum" in keywords and value not in keywords["enum"]:
            problems.append(f"{path}: {value!r} is not one of {keywords['enum']}")
        if isinstance(value, str) and "maxLength" in keywords and len(value) > keywords["maxLength"]:
            problems.append(f"{path}: longer than {keywords['maxLength']}")
        if isinstance(value, list):
            if len(value) > keywords.get("maxItems", len(value)):
                problems.append(f"{path}: more than {keywords['maxItems']} items")
            if len(value) < keywords.get("minItems", 0):
                problems.append(f"{path}: fewer than {keywords['minItems']} items")
            for i, item in enumerate(value):
                problems += self.check(item, keywords.get("items", {}), f"{path}[{i}]")
        if isinstance(value, dict):
            for name in sorted(required - value.keys()):
                problems.append(f"{path}: missing required {name}")
            for name, inner in value.items():
                if name in props:
                    problems += self.check(inner, props[name], f"{path}.{name}")
                elif isinstance(extra, dict):
                    problems += self.check(inner, extra, f"{path}.{name}")
                elif props or extra is False:
                    problems.append(f"{path}: {name} is not a property the definition declares")
        return problems


def main():
    spec_path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC
    if not spec_path.exists():
        print(f"messages: SKIPPED, LINE's OpenAPI definition is not at {spec_path}")
        return 0
    checker = Checker(yaml.safe_load(spec_path.read_text()))
    request = {"$ref": "#/components/schemas/ReplyMessageRequest"}
    # The checker must be able to fail: a misspelt property and a missing one are caught.
    wrong = {"replyToken": "r", "messages": [{"type": "sticker", "packageID": "1", "stickerId": "2"}]}
    assert len(checker.check(wrong, request, "self-test")) == 2, checker.check(wrong, request, "self-test")
    output = subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "-p", "shared", "--example", "message_catalogue"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    problems, count = [], 0
    for line in output.splitlines():
        entry = json.loads(line)
        count += 1
        problems += checker.check(entry["request"], request, entry["name"])
    for problem in problems:
        print(f"messages: {problem}", file=sys.stderr)
    if problems or count == 0:
        return 1
    print(f"messages: {count} LINE message builders match {spec_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
