"""moto_server, with two AWS behaviours moto 5.2.5 lacks that the tests need.

1. Cross-account SNS. On AWS a topic's subscribers may be in other accounts: a publish reaches every
   subscription of the topic, and ListSubscriptionsByTopic lists them all, whichever account subscribed.
   moto keeps a subscription in the backend of the account that made it and publishes only to the topic
   owner's, so a cross-account subscription never receives anything. This wrapper lists (and so
   publishes to) the subscriptions of every account, in the topic's region.
2. EventBridge input templates. AWS inserts a placeholder that stands outside quotes as the JSON value
   its path selects: a string arrives quoted, an array or object as itself (EventBridge User Guide,
   "Amazon EventBridge input transformation", the "Simple JSON" and "JSON with a mix of variables"
   examples; API reference, InputTransformer: "valid JSON with variables in quotes or out"). Inside
   quotes it pastes the value's text as it is ("EventBridge doesn't escape values extracted by Input
   Path"). moto pastes every string's text wherever the placeholder is, so a string placeholder outside
   quotes gives JSON that moto itself cannot read. This wrapper renders both cases as AWS documents;
   moto's own handling of what it renders (json.loads, then a delivery of the result) is unchanged.

Everything else is moto's own behaviour.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import json
import re
import sys
from collections import OrderedDict

from moto.events import utils as events_utils
from moto.server import main
from moto.sns import models as sns


def _list_subscriptions_by_topic(self, topic_arn, next_token=None):
    self.get_topic(topic_arn)  # NotFound as before
    found = OrderedDict()
    for account in list(sns.sns_backends.keys()):
        backend = sns.sns_backends[account][self.region_name]
        for sub in backend.subscriptions.values():
            if sub.topic.arn == topic_arn:
                found[sub.arn] = sub
    return self._get_values_nexttoken(found, next_token)


sns.SNSBackend.list_subscriptions_by_topic = _list_subscriptions_by_topic

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def _outside_strings(template):
    """For each index of `template`: True when it is outside a JSON string literal."""
    outside, in_string, escaped = [], False, False
    for ch in template:
        outside.append(not in_string)
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
    return outside


def _render(input_template, input_paths_map, event):
    """An input template rendered as AWS documents it (see the module docstring)."""
    from jsonpath_ng.ext import parse

    template = input_template or events_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    paths = input_paths_map or events_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP
    values = {}
    for name, path in paths.items():
        matches = parse(path).find(event)
        if matches:
            values[name] = matches[0].value
    values["aws.events.event.json"] = event
    values["aws.events.event.ingestion-time"] = event["ingestion-time"]
    outside = _outside_strings(template)

    def substitute(match):
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        if outside[match.start()]:
            return json.dumps(value)
        return value if isinstance(value, str) else json.dumps(value)

    rendered = _PLACEHOLDER.sub(substitute, template)
    try:
        return json.loads(rendered)
    except ValueError as e:
        raise ValueError(f"input template rendered as invalid JSON ({e}): {rendered}") from None


events_utils.EventTemplateParser.parse = staticmethod(_render)

if __name__ == "__main__":
    main(sys.argv[1:])
