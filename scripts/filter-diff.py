#!/usr/bin/env python3
"""Differential test of tasksub-filter against LocalStack's SNS filter-policy engine.

Generates seeded cases (a policy, its scope, and a message built to hit or to miss it), evaluates each
with LocalStack's `FilterPolicyValidator` + `SubscriptionFilter` (localstack.services.sns.filter, imported
without the server) and with the Rust engine (`cargo run -p tasksub-filter --example eval`, JSON lines),
and compares validity and matching.

A disagreement is *explained* only when the case shows one of the KNOWN differences below: places where
LocalStack departs from the AWS documentation, which the Rust side follows. Anything else is a failure
(exit status 1), printed with the case.

Usage: filter-diff.py --eval PATH/TO/eval [--cases 5000] [--seed 1] [--show N]
"""

import argparse
import json
import random
import subprocess
import sys
from collections import Counter

from localstack.aws.api.sns import InvalidParameterException
from localstack.services.sns.filter import FilterPolicyValidator, SubscriptionFilter

from filter_diff_known import KNOWN, explain

WORDS = ["red", "green", "blue", "rugby", "tennis", "baseball", "order_placed", "Order", "eu-west-1", "a"]
KEYS = ["color", "sport", "price", "event", "region", "size", "store", "tags"]
NUMBERS = [-1000000000, -150, -2.5, -1, 0, 0.5, 1, 2, 3.015e2, 100, 150, 999999999.99999, 1000000000]
# anything-but suffix is rare: LocalStack refuses it (a known difference), which hides the rest of the case.
STRING_OPS = ["exact", "prefix", "suffix", "eic", "ab-list", "ab-one", "ab-prefix", "cidr"] * 8 + ["ab-suffix"]
NUMBER_OPS = ["num-exact", "num-op", "num-range", "ab-num"]


# ---- policy generation -------------------------------------------------------------------------------


def string_rule(r, kind):
    """A string rule, values it accepts, and values that come close but must not match."""
    w = r.choice(WORDS)
    p, x = w[:2], w[-2:]
    if kind == "exact":
        return w, [w], [w + "!", w.upper(), w[:-1], " " + w, ""]
    if kind == "prefix":
        return {"prefix": p}, [p, p + "ball"], ["x" + p, p[:-1], p.upper() + "x"]
    if kind == "suffix":
        return {"suffix": x}, [x, "foot" + x], [x + "y", x[1:], "q" + x.upper()]
    if kind == "eic":
        return {"equals-ignore-case": w}, [w.upper(), w.swapcase(), w], [w + "x", w[1:], "x" + w]
    if kind == "ab-list":
        listed = r.sample(WORDS, 2)
        return {"anything-but": listed}, [v for v in WORDS if v not in listed][:2] + ["zz"], listed
    if kind == "ab-one":
        return {"anything-but": w}, [w + "z", w.upper()], [w]
    if kind == "ab-prefix":
        return {"anything-but": {"prefix": p}}, ["zz" + w, p[:-1]], [p, p + "x"]
    if kind == "ab-suffix":
        return {"anything-but": {"suffix": x}}, [w + "qq", x[1:]], [x, "q" + x]
    net, inside, outside = r.choice([
        ("10.1.0.0/16", "10.1.7.9", ["10.2.0.1", "10.0.255.255", "11.1.0.1"]),
        ("192.168.4.0/24", "192.168.4.200", ["192.168.5.1", "192.168.3.255"]),
        ("172.16.0.0/12", "172.20.1.1", ["172.32.0.1", "172.15.255.255"]),
        ("2001:db8::/32", "2001:db8::1", ["2001:db9::1", "10.1.0.1"]),
        ("10.1.2.3/32", "10.1.2.3", ["10.1.2.4"]),
    ])
    return {"cidr": net}, [inside], outside + ["not-an-ip", inside + "x"]


def number_rule(r, kind):
    """A numeric rule, values it accepts, and nearby values (each side of its bounds)."""
    n = r.choice(NUMBERS)
    if kind == "num-exact":
        return n, [n, float(n)], [n + 1, round(n + 0.00001, 5), -n if n else 0.5]
    if kind == "num-op":
        op = r.choice(["=", "<", "<=", ">", ">="])
        return {"numeric": [op, n]}, boundaries(n), boundaries(n)
    if kind == "num-range":
        low, high = sorted(r.sample(NUMBERS, 2))
        ops = [r.choice([">", ">="]), low, r.choice(["<", "<="]), high]
        return {"numeric": ops}, boundaries(low) + boundaries(high), boundaries(low) + boundaries(high)
    listed = r.sample(NUMBERS, 2)
    return {"anything-but": listed}, [n + 1, round(listed[0] + 0.00001, 5)], listed


def boundaries(n):
    return [n - 1, round(n - 0.00001, 5), n, round(n + 0.00001, 5), n + 1]


def key_spec(r, scope, path):
    """A key of the policy: its path, its rules, and for each rule a value it accepts."""
    family = r.choices(["string", "number", "exists", "literal"], [5, 4, 1, 1])[0]
    rules, hits, misses = [], [], []
    for _ in range(r.choice([1, 1, 2, 3])):
        if family in ("string", "number"):
            make, kind = (string_rule, "str") if family == "string" else (number_rule, "num")
            rule, good, bad = make(r, r.choice(STRING_OPS if family == "string" else NUMBER_OPS))
            good, bad = [(kind, v) for v in good], [(kind, v) for v in bad]
        elif family == "exists":
            wanted = r.random() < 0.5
            present, absent = [("str", "x")], [("absent",)]
            rule, good, bad = {"exists": wanted}, present if wanted else absent, absent if wanted else present
        elif scope == "MessageBody":
            lit = r.choice([True, False, None])
            rule, good, bad = lit, [("lit", lit)], [("lit", v) for v in [True, False, None, 0, 1, "true"] if v is not lit]
        else:
            lit = r.choice(["true", "null"])
            rule, good, bad = lit, [("str", lit)], [("str", lit.upper())]
        rules.append(rule)
        hits += good
        misses += bad
    return {"path": path, "rules": rules, "hits": hits, "misses": misses, "family": family}


def paths(r, scope, count):
    keys = r.sample(KEYS, count)
    if scope == "MessageAttributes":
        return [[k] for k in keys]
    return [[r.choice(["detail", "meta"])] + [k] if r.random() < 0.4 else [k] for k in keys]


def policy_of(specs):
    policy = {}
    for spec in specs:
        node = policy
        for segment in spec["path"][:-1]:
            node = node.setdefault(segment, {})
        node[spec["path"][-1]] = spec["rules"]
    return policy


def gen_policy(r, scope):
    specs = [key_spec(r, scope, p) for p in paths(r, scope, r.choice([1, 1, 2, 2, 3]))]
    policy = policy_of(specs)
    branches = []
    if r.random() < 0.2:
        used = {s["path"][-1] for s in specs}
        free = [k for k in KEYS if k not in used]
        for key in r.sample(free, 2):
            branch = [key_spec(r, scope, [key])]
            branches.append(branch)
        policy["$or"] = [policy_of(b) for b in branches]
    return policy, specs, branches


BAD_NUMERIC = [["<", 5, ">", 1], [">", 10, "<", 5], ["=", "5"], ["~", 1], [">", 1, "<", 5, "<", 9], ["=", 1, "<", 5], []]
BAD_CIDR = ["10.0.0.1/8", "10.0.0.0", "300.0.0.0/8", "10.0.0.0/x"]
# Each takes (random, policy, key) and returns {key: rules} to merge into the policy.
BREAKS = [
    lambda r, p, k: {k: []},
    lambda r, p, k: {k: "scalar"},
    lambda r, p, k: {k: [{"wildcard-ish": "x"}]},
    lambda r, p, k: {k: [{"prefix": 5}]},
    lambda r, p, k: {k: [{"exists": "yes"}]},
    lambda r, p, k: {k: [{"numeric": r.choice(BAD_NUMERIC)}]},
    lambda r, p, k: {k: [{"prefix": "a", "suffix": "b"}]},
    lambda r, p, k: {k: {"inner": ["x"]}},  # nested: refused in attribute scope only
    lambda r, p, k: {key: ["x"] for key in KEYS[:6]},  # six keys
    lambda r, p, k: {key: ["a", "b", "c", "d"] for key in KEYS[:4]},  # 256 combinations
    lambda r, p, k: {k: [{"numeric": [">", r.choice([1e10, -5e9, 1000000001])]}]},
    lambda r, p, k: {k: [["nested", "array"]]},
    lambda r, p, k: {k: [{"cidr": r.choice(BAD_CIDR)}]},
    lambda r, p, k: {"detail": {key: ["x"] for key in KEYS[:6]}},  # six nested keys under one parent
]


def break_policy(r, policy):
    """A mutation that SNS should refuse (or, for big numbers, a known difference)."""
    key = next(k for k in policy if k != "$or")
    policy.update(r.choice(BREAKS)(r, policy, key))
    return policy


# ---- message generation ------------------------------------------------------------------------------


def chosen_specs(r, specs, branches):
    chosen = list(specs)
    if branches:
        chosen += r.choice(branches)
    return chosen


def spec_value(r, spec, hit):
    return r.choice(spec["hits"] if hit else spec["misses"])


def number_text(r, n):
    if isinstance(n, float) and n == int(n) and r.random() < 0.3:
        return str(int(n))
    if r.random() < 0.15 and n != 0:
        return f"{n:.4e}" if abs(n) >= 1 else str(n)
    return repr(n) if isinstance(n, float) else str(n)


def as_attribute(r, value):
    kind = value[0]
    if kind == "str":
        if value[1] == "":
            value = ("str", "nonempty")  # SNS refuses empty attribute values at Publish
        if r.random() < 0.25:
            return {"DataType": "String.Array", "StringValue": json.dumps(r.sample(WORDS, 1) + [value[1]])}
        return {"DataType": "String", "StringValue": value[1]}
    if kind == "num":
        roll = r.random()
        if roll < 0.1:
            return {"DataType": "String", "StringValue": number_text(r, value[1])}  # number as string
        if roll < 0.3:
            return {"DataType": "String.Array", "StringValue": json.dumps([value[1], "other"])}
        return {"DataType": "Number", "StringValue": number_text(r, value[1])}
    if kind == "lit":
        return {"DataType": "String.Array", "StringValue": json.dumps([value[1]])}
    return None


def as_body_value(r, value):
    kind = value[0]
    if kind in ("str", "lit"):
        v = value[1]
    else:
        v = value[1]
        if r.random() < 0.08:
            v = number_text(r, v)  # number as string
    return [v, "decoy"] if r.random() < 0.2 else v


def place(body, path, value, r):
    node = body
    for segment in path[:-1]:
        child = node.setdefault(segment, {})
        if isinstance(child, list):
            child = child[0]
        node = child
    node[path[-1]] = value
    if len(path) > 1 and not isinstance(body[path[0]], list) and r.random() < 0.15:
        body[path[0]] = [body[path[0]], {"unrelated": 1}]  # the parent as an array of objects


def gen_message(r, scope, specs, branches):
    hit = r.random() < 0.6
    chosen = chosen_specs(r, specs, branches)
    miss_index = r.randrange(len(chosen)) if not hit else -1
    attributes, body = {}, {}
    for i, spec in enumerate(chosen):
        value = spec_value(r, spec, i != miss_index)
        if r.random() < 0.05:
            value = ("absent",)
        if value[0] == "absent":
            continue
        if scope == "MessageAttributes":
            attribute = as_attribute(r, value)
            if attribute:
                attributes[spec["path"][0]] = attribute
        else:
            place(body, spec["path"], as_body_value(r, value), r)
    edge(r, scope, attributes, body, chosen)
    return attributes, body


def edge(r, scope, attributes, body, chosen):
    roll = r.random()
    name = chosen[0]["path"][0]
    if scope == "MessageAttributes":
        if roll < 0.03:
            attributes[name] = {"DataType": "Binary", "BinaryValue": b"\x00\x01"}
        elif roll < 0.05:
            attributes[name] = {"DataType": "String.Array", "StringValue": "[]"}
        elif roll < 0.15:
            attributes["unrelated"] = {"DataType": "String", "StringValue": "x"}
    elif roll < 0.04:
        body[name] = []
    elif roll < 0.06:
        body[name] = {"deeper": "x"}


def body_text(r, body):
    roll = r.random()
    if roll < 0.02:
        return "not json"
    if roll < 0.04:
        return json.dumps([body])
    return json.dumps(body)


def gen_case(r):
    scope = r.choice(["MessageAttributes", "MessageBody"])
    policy, specs, branches = gen_policy(r, scope)
    if r.random() < 0.12:
        policy = break_policy(r, policy)
    attributes, body = gen_message(r, scope, specs, branches)
    return {"policy": policy, "scope": scope, "attributes": attributes, "body": body_text(r, body)}


# ---- evaluation --------------------------------------------------------------------------------------


def localstack(case):
    policy, scope = case["policy"], case["scope"]
    try:
        if not isinstance(policy, dict):
            return {"valid": False, "error": "not an object"}
        if policy:
            FilterPolicyValidator(scope=scope, is_subscribe_call=True).validate_filter_policy(policy)
    except InvalidParameterException as e:
        return {"valid": False, "error": str(e)}
    except Exception as e:  # the validator itself failed on a malformed policy: a refusal all the same
        return {"valid": False, "error": f"validator raised {type(e).__name__}: {e}"}
    engine = SubscriptionFilter()
    try:
        if scope == "MessageAttributes":
            matches = engine.check_filter_policy_on_message_attributes(policy, case["attributes"])
        else:
            matches = engine.check_filter_policy_on_message_body(policy, case["body"])
    except Exception as e:
        return {"valid": True, "matches": None, "crash": type(e).__name__, "error": str(e)}
    return {"valid": True, "matches": bool(matches)}


def rust_line(case):
    attributes = {
        name: {"data_type": a["DataType"], "value": a.get("StringValue") or "AAE="}
        for name, a in case["attributes"].items()
    }
    return json.dumps({"policy": json.dumps(case["policy"]), "scope": case["scope"],
                       "attributes": attributes, "body": case["body"]})


def rust(eval_bin, cases):
    lines = "\n".join(rust_line(c) for c in cases) + "\n"
    out = subprocess.run([eval_bin], input=lines, capture_output=True, text=True, check=True).stdout
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(cases), f"eval answered {len(results)} of {len(cases)} cases"
    return results


def printable(case):
    shown = dict(case)
    shown["attributes"] = {n: {k: (v if k != "BinaryValue" else "<binary>") for k, v in a.items()}
                           for n, a in case["attributes"].items()}
    return json.dumps(shown)


def compare(cases, ls_results, rust_results, show):
    counts, explained, failures = Counter(), Counter(), []
    for case, ls, rs in zip(cases, ls_results, rust_results):
        counts["cases"] += 1
        counts["valid (both)" if ls["valid"] and rs["valid"] else
               "invalid (both)" if not ls["valid"] and not rs["valid"] else "validity differs"] += 1
        if ls["valid"] and rs["valid"]:
            counts["matched (LocalStack)"] += ls.get("matches") is True
            counts["matched (Rust)"] += rs["matches"] is True
        agree = ls["valid"] == rs["valid"] and (not ls["valid"] or ls.get("matches") == rs["matches"])
        if agree:
            counts["agree"] += 1
            continue
        reason = explain(case, ls, rs)
        if reason:
            explained[reason] += 1
            counts["explained differences"] += 1
        else:
            counts["UNEXPLAINED disagreements"] += 1
            failures.append((case, ls, rs))
    for case, ls, rs in failures[:show]:
        print(f"DISAGREE localstack={json.dumps(ls)} rust={json.dumps(rs)}\n  case={printable(case)}")
    return counts, explained, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", required=True, help="the built tasksub-filter eval example")
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=50, help="unexplained disagreements to print")
    args = parser.parse_args()
    r = random.Random(args.seed)
    cases = [gen_case(r) for _ in range(args.cases)]
    ls_results = [localstack(c) for c in cases]
    rust_results = rust(args.eval, cases)
    counts, explained, failures = compare(cases, ls_results, rust_results, args.show)
    print(f"filter-diff: seed {args.seed}")
    for name in ["cases", "agree", "valid (both)", "invalid (both)", "validity differs", "matched (LocalStack)",
                 "matched (Rust)", "explained differences", "UNEXPLAINED disagreements"]:
        print(f"  {name:28} {counts[name]}")
    for name, n in explained.most_common():
        print(f"  explained: {name:24} {n:5}  LocalStack {KNOWN[name][0][:70]}... ({KNOWN[name][2]})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
