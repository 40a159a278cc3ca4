"""Known differences between LocalStack's SNS filter engine and the AWS documentation (filter-diff.py).

Each entry says what LocalStack does, what AWS documents (the Rust engine follows AWS), and where AWS says
so; each has a predicate that recognises a case showing the difference. A disagreement is explained only
when one of these predicates holds for its case; `explain` returns the first that does.
"""

import json

DOCS = "https://docs.aws.amazon.com/sns/latest/dg/"

# Known differences: id -> (what LocalStack does, what AWS documents, citation).
KNOWN = {
    "typed-attributes": (
        "compares a Number attribute's text with the policy (so [100] or anything-but [100] never equal "
        "Number 100, and string operators match its digits), and applies numeric operators to String "
        "attributes whose text parses as a float",
        "Number attributes compare by numeric value (301.5 matches 3.015e2); prefixes are for string "
        "matching only; numeric matching examples are Number attributes",
        DOCS + "numeric-value-matching.html",
    ),
    "strings-as-numbers": (
        "applies numeric operators to any body value float() accepts: strings such as \"5\" and booleans",
        "numeric values are not enclosed in quotation marks; numeric matching matches numbers",
        DOCS + "numeric-value-matching.html",
    ),
    "anything-but-suffix": (
        "refuses {\"anything-but\": {\"suffix\": ..}} (only prefix is accepted inside anything-but)",
        "anything-but takes a value, a list, or a prefix or suffix pattern",
        DOCS + "string-value-matching.html",
    ),
    "key-count": (
        "counts only top-level entries (a nested object or \"$or\" counts once) against the five-key limit",
        "the keys counted are the keys holding values, nested or in $or branches, not their parents",
        DOCS + "subscription-filter-policy-constraints.html",
    ),
    "number-range": (
        "accepts numbers outside -1e9..1e9 in a policy",
        "numeric values range from -10^9 to 10^9",
        DOCS + "subscription-filter-policy-constraints.html",
    ),
    "empty-array-attribute": (
        "evaluates String.Array conditions per element, so an empty or unparsable array fails even "
        "{\"exists\": true}",
        "exists:true matches any message that has the attribute key",
        DOCS + "attribute-key-matching.html",
    ),
    "binary-attribute": (
        "treats a Binary attribute as present (exists:true matches, exists:false fails)",
        "SNS compares policies only to String, String.Array and Number attributes",
        DOCS + "subscription-filter-policy-constraints.html",
    ),
    "exists-false-in-arrays": (
        "evaluates exists:false per element of an array of objects, so a body with the key in one element "
        "and not in another matches",
        "exists:false matches only messages that don't contain the key",
        DOCS + "attribute-key-matching.html",
    ),
    "precision": (
        "compares floats exactly",
        "numbers have five digits of accuracy after the decimal point",
        DOCS + "subscription-filter-policy-constraints.html",
    ),
    "python-bool-int": (
        "uses Python equality, where True == 1 and False == 0",
        "true and false are keywords distinct from numbers",
        DOCS + "subscription-filter-policy-constraints.html",
    ),
    "non-string-crash": (
        "raises (AttributeError) when prefix, suffix, equals-ignore-case or anything-but prefix meets a "
        "number or boolean, failing the publish",
        "prefixes are supported for string matching only: the rule simply does not match",
        DOCS + "numeric-value-matching.html",
    ),
}

OPERATORS_ON_STRINGS = ("prefix", "suffix", "equals-ignore-case", "anything-but", "cidr")


def leaves(policy, prefix=()):
    """(path, rules) for every key holding rules, through nesting and $or branches."""
    for key, value in policy.items():
        if key == "$or" and isinstance(value, list) and len(value) > 1 and all(isinstance(b, dict) for b in value):
            for branch in value:
                yield from leaves(branch, prefix)
        elif isinstance(value, dict):
            yield from leaves(value, prefix + (key,))
        elif isinstance(value, list):
            yield prefix + (key,), value


def body_values(node, path):
    if isinstance(node, list):
        return [v for item in node for v in body_values(item, path)]
    if not path:
        return [] if isinstance(node, dict) else [node]
    if isinstance(node, dict) and path[0] in node:
        return body_values(node[path[0]], path[1:])
    return []


def key_values(case, path):
    """(attribute or None, values) the message has under a key."""
    if case["scope"] == "MessageAttributes":
        attribute = case["attributes"].get(".".join(path))
        if not attribute:
            return None, []
        text = attribute.get("StringValue")
        if attribute["DataType"] == "String.Array":
            try:
                parsed = json.loads(text)
            except ValueError:
                return attribute, []
            return attribute, parsed if isinstance(parsed, list) else []
        return attribute, [text]
    try:
        body = json.loads(case["body"])
    except ValueError:
        return None, []
    return None, body_values(body, list(path)) if isinstance(body, dict) else []


def is_numeric_rule(rule):
    return isinstance(rule, dict) and "numeric" in rule


def floatable(value):
    if isinstance(value, bool):
        return True
    if not isinstance(value, str):
        return False
    try:
        float(value)
        return True
    except ValueError:
        return False


def numbers_in(value):
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return []


def keyed(case):
    if not isinstance(case["policy"], dict):
        return []
    return [(rules, *key_values(case, path)) for path, rules in leaves(case["policy"])]


def typed_attributes(case, ls, rust):
    if not (ls["valid"] and rust["valid"]):
        return False
    if case["scope"] != "MessageAttributes":
        return False
    for rules, attribute, values in keyed(case):
        if not attribute:
            continue
        kind = attribute["DataType"]
        if kind == "Number" and any(not (isinstance(r, dict) and ("numeric" in r or "exists" in r)) for r in rules):
            return True
        if kind != "Number" and any(map(is_numeric_rule, rules)) and any(map(floatable, values)):
            return True
    return False


def strings_as_numbers(case, ls, rust):
    if not (ls["valid"] and rust["valid"]):
        return False
    return case["scope"] == "MessageBody" and any(
        any(map(is_numeric_rule, rules)) and any(map(floatable, values)) for rules, _, values in keyed(case)
    )


def anything_but_suffix(case, ls, rust):
    return rust["valid"] and "Unsupported anything-but pattern: suffix" in ls.get("error", "")


def key_count(case, ls, rust):
    policy = case["policy"]
    if ls["valid"] == rust["valid"] or not isinstance(policy, dict):
        return False
    leaf_count = len({path for path, _ in leaves(policy)})
    return (len(policy) > 5) != (leaf_count > 5)


def number_range(case, ls, rust):
    if ls["valid"] and not rust["valid"]:
        return "outside the numeric range" in rust["error"]
    numbers = []
    for _, _, values in keyed(case):
        numbers += [float(v) for v in values if floatable(v) and not isinstance(v, bool)] + numbers_in(values)
    return ls["valid"] and rust["valid"] and any(abs(n) > 1e9 for n in numbers)


def empty_array_attribute(case, ls, rust):
    if not (ls["valid"] and rust["valid"]):
        return False
    return any(
        attribute and attribute["DataType"] == "String.Array" and not values for _, attribute, values in keyed(case)
    )


def binary_attribute(case, ls, rust):
    if not (ls["valid"] and rust["valid"]):
        return False
    return any(attribute and attribute["DataType"] == "Binary" for _, attribute, _ in keyed(case))


def precision(case, ls, rust):
    if not (ls["valid"] and rust["valid"]):
        return False
    numbers = numbers_in(case["policy"])
    for _, _, values in keyed(case):
        numbers += [float(v) for v in values if floatable(v) and not isinstance(v, bool)] + numbers_in(values)
    return any(round(n, 5) != n for n in numbers)


def python_bool_int(case, ls, rust):
    if not (ls["valid"] and rust["valid"]):
        return False
    def loose(v):
        return isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1))

    for rules, _, values in keyed(case):
        literals = [r for r in rules if not isinstance(r, dict)]
        literals += [v for r in rules if isinstance(r, dict) for v in numbers_in(r.get("anything-but"))]
        if any(map(loose, literals)) and any(map(loose, values)):
            return True
    return False


def through_array(node, path):
    """Whether the path to a key crosses an array of objects in the body."""
    if isinstance(node, list):
        return any(isinstance(item, dict) for item in node)
    if not path or not isinstance(node, dict) or path[0] not in node:
        return False
    return through_array(node[path[0]], path[1:])


def exists_false_in_arrays(case, ls, rust):
    if case["scope"] != "MessageBody" or not (ls["valid"] and rust["valid"]):
        return False
    try:
        body = json.loads(case["body"])
    except ValueError:
        return False
    return any(
        {"exists": False} in rules and through_array(body, list(path[:-1]))
        for path, rules in leaves(case["policy"])
    )


def non_string_crash(case, ls, rust):
    return ls.get("crash") == "AttributeError"


PREDICATES = {
    "non-string-crash": non_string_crash,
    "anything-but-suffix": anything_but_suffix,
    "key-count": key_count,
    "number-range": number_range,
    "binary-attribute": binary_attribute,
    "empty-array-attribute": empty_array_attribute,
    "typed-attributes": typed_attributes,
    "strings-as-numbers": strings_as_numbers,
    "exists-false-in-arrays": exists_false_in_arrays,
    "precision": precision,
    "python-bool-int": python_bool_int,
}
assert PREDICATES.keys() == KNOWN.keys()


def explain(case, ls, rust):
    """The id of the known difference this case shows, or None."""
    return next((name for name, holds in PREDICATES.items() if holds(case, ls, rust)), None)
