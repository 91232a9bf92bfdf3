#!/usr/bin/env python3
"""Checks what `sam validate --lint` cannot: that template.yaml's alarms can notify, that each
function can read only its own secret, that every failure the issue list names has an alarm, and
that the dashboard and alarms name metrics the code really emits.

Usage: scripts/check_template.py [template.yaml]   (exit 1 and one line per finding when it fails)
"""
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags read as their long form ({"Ref": ...})."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def refs(value):
    """Every logical ID a value refers to (Ref, GetAtt, and ${Name} in Sub)."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt" and isinstance(inner, list):
                found.add(inner[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(inner, list):
                    found |= refs(inner[1:])
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


def emitted_metrics():
    """Names of the ChatGateway metrics the Rust code emits."""
    names = set()
    for path in list((ROOT / "shared/src").rglob("*.rs")) + list((ROOT / "functions").rglob("src/**/*.rs")):
        code = path.read_text().split("#[cfg(test)]")[0]
        names |= set(re.findall(r'Metric::(?:count|milliseconds)\(\s*"(\w+)"', code))
    return names


def alarm_metrics(alarm):
    """(namespace, metric, {dimension: value}) of every metric an alarm watches."""
    props = alarm["Properties"]
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        return [(props["Namespace"], props["MetricName"], dims)]
    out = []
    for query in props.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            out.append((metric["Namespace"], metric["MetricName"], dims))
    return out


def check(template):
    problems = []
    resources = template["Resources"]

    def of_type(kind):
        return {name: r for name, r in resources.items() if r["Type"] == kind}

    # Alarms must be able to notify: an AWS-managed SNS key cannot be used by CloudWatch.
    topics = of_type("AWS::SNS::Topic")
    alarms = of_type("AWS::CloudWatch::Alarm")
    for name, topic in topics.items():
        key = topic["Properties"].get("KmsMasterKeyId")
        if key is None:
            continue
        if isinstance(key, str):
            problems.append(f"{name}: encrypted with {key}, which CloudWatch alarms cannot use")
            continue
        key_ids = refs(key)
        for key_id in key_ids:
            policy = resources.get(key_id, {}).get("Properties", {}).get("KeyPolicy", {})
            granted = set()
            for statement in policy.get("Statement", []):
                if statement.get("Effect") == "Allow" and statement.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com":
                    actions = statement["Action"]
                    granted |= set([actions] if isinstance(actions, str) else actions)
            for needed in ("kms:Decrypt", "kms:GenerateDataKey*"):
                if needed not in granted:
                    problems.append(f"{name}: key {key_id} does not let cloudwatch.amazonaws.com {needed}")
    for name, alarm in alarms.items():
        actions = alarm["Properties"].get("AlarmActions", [])
        if not any(refs(a) & set(topics) for a in actions):
            problems.append(f"{name}: notifies no topic of this template")

    # Least privilege: each function reads one secret, its own, and is told which.
    functions = of_type("AWS::Serverless::Function")
    if "GATEWAY_SECRET_ID" in template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}):
        problems.append("Globals: GATEWAY_SECRET_ID is set for every function")
    secrets = set(of_type("AWS::SecretsManager::Secret"))
    expected = {"IngressFunction": "GatewaySecret", "WorkerFunction": "WorkerSecret"}
    # The HTTPS destination's signing secret is the worker's too (it signs deliveries), never the
    # internet-facing ingress's.
    also = {"WorkerFunction": {"DestinationSecret"}}
    for function, secret in expected.items():
        props = functions[function]["Properties"]
        readable = set()
        for policy in props.get("Policies", []):
            if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy:
                readable |= refs(policy["AWSSecretsManagerGetSecretValuePolicy"])
            elif isinstance(policy, dict) and "secretsmanager" in json.dumps(policy).lower():
                readable |= refs(policy) & secrets
        told = refs(props.get("Environment", {}).get("Variables", {}).get("GATEWAY_SECRET_ID", {}))
        if secret not in readable or not readable - {secret} <= also.get(function, set()):
            problems.append(f"{function}: may read {sorted(readable)}, should read only {secret}")
        if told != {secret}:
            problems.append(f"{function}: GATEWAY_SECRET_ID names {sorted(told)}, not {secret}")

    # An alarm for each failure that matters.
    watched = [m for alarm in alarms.values() for m in alarm_metrics(alarm)]

    def watches(namespace, metric, dimension=None, of=None):
        return any(
            ns == namespace and name == metric and (dimension is None or of in refs(dims.get(dimension)))
            for ns, name, dims in watched
        )

    required = {
        "worker errors": watches("AWS/Lambda", "Errors", "FunctionName", "WorkerFunction"),
        "ingress errors": watches("AWS/Lambda", "Errors", "FunctionName", "IngressFunction"),
        "dead-letter queue depth": watches("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "DeadLetterQueue"),
        "age of the oldest queued event": watches("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "EventsQueue"),
        "webhook 5xx answers": watches("AWS/ApiGateway", "5xx", "ApiId", "HttpApi"),
        "ingress throttles": watches("AWS/Lambda", "Throttles", "FunctionName", "IngressFunction"),
        "worker throttles": watches("AWS/Lambda", "Throttles", "FunctionName", "WorkerFunction"),
    }
    problems += [f"no alarm on {what}" for what, present in required.items() if not present]

    # Alarms and the dashboard name metrics the code emits (a renamed metric silences an alarm).
    emitted = emitted_metrics()
    for ns, name, _ in watched:
        if ns == "ChatGateway" and name not in emitted:
            problems.append(f"an alarm watches ChatGateway/{name}, which the code never emits")
    dashboards = of_type("AWS::CloudWatch::Dashboard")
    if not dashboards:
        problems.append("no CloudWatch dashboard")
    for name, dashboard in dashboards.items():
        body = dashboard["Properties"]["DashboardBody"]
        text = body["Fn::Sub"][0] if isinstance(body, dict) else body
        for ref in refs(body):
            if ref not in resources and ref not in template.get("Parameters", {}) and not ref.startswith("AWS::"):
                if not (isinstance(body["Fn::Sub"], list) and ref in body["Fn::Sub"][1]):
                    problems.append(f"{name}: refers to {ref}, which is not defined")
        try:
            widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))["widgets"]
        except (ValueError, KeyError) as error:
            problems.append(f"{name}: the body is not dashboard JSON ({error})")
            continue
        shown = set()
        for widget in widgets:
            namespace = None
            for row in widget.get("properties", {}).get("metrics", []):
                names = [c for c in row if isinstance(c, str)]
                if names and names[0] not in (".", "..."):
                    namespace = names[0]
                if namespace == "ChatGateway" and len(names) >= 2:
                    shown.add(names[1])
                for cell in row:
                    if isinstance(cell, dict) and "expression" in cell:
                        shown |= set(re.findall(r'MetricName=\\?"(\w+)', cell["expression"]))
        for metric in sorted(emitted - shown):
            problems.append(f"{name}: the code emits ChatGateway/{metric}, the dashboard does not show it")
        for metric in sorted(shown - emitted - {"."}):
            problems.append(f"{name}: shows ChatGateway/{metric}, which the code never emits")
        alarm_refs = refs(body) & set(alarms)
        for missing in sorted(set(alarms) - alarm_refs):
            problems.append(f"{name}: does not show {missing}")
    return problems


def main():
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    template = yaml.load(path.read_text(), Loader=CfnLoader)
    problems = check(template)
    for problem in problems:
        print(f"template: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"template: {path.name} passes the security and alarm checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
