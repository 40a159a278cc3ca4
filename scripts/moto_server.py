"""moto_server, with three AWS behaviours moto 5.2.5 lacks that the tests need.

1. Cross-account SNS. On AWS a topic's subscribers may be in other accounts: a publish reaches every
   subscription of the topic, and ListSubscriptionsByTopic lists them all, whichever account subscribed.
   moto keeps a subscription in the backend of the account that made it and publishes only to the topic
   owner's, so a cross-account subscription never receives anything. This wrapper lists (and so
   publishes to) the subscriptions of every account, in the topic's region. And a publish reaches every
   subscription: moto's reaches only the first 100 (the first page of its own listing).
2. EventBridge input templates. AWS inserts a placeholder that stands outside quotes as the JSON value
   its path selects: a string arrives quoted, an array or object as itself (EventBridge User Guide,
   "Amazon EventBridge input transformation", the "Simple JSON" and "JSON with a mix of variables"
   examples; API reference, InputTransformer: "valid JSON with variables in quotes or out"). Inside
   quotes it pastes the value's text as it is ("EventBridge doesn't escape values extracted by Input
   Path"). moto pastes every string's text wherever the placeholder is, so a string placeholder outside
   quotes gives JSON that moto itself cannot read. This wrapper renders both cases as AWS documents;
   moto's own handling of what it renders (json.loads, then a delivery of the result) is unchanged.
3. SNS's quota of 200 filter policies per topic ("Amazon SNS message filtering" > "Filter policy
   constraints": "200 filter policies per topic"; API_Subscribe lists FilterPolicyLimitExceeded, "the
   number of filter polices in your Amazon Web Services account exceeds the limit"). A Subscribe that
   sets a filter policy on a topic whose subscriptions (every account's) already hold 200 is refused
   with FilterPolicyLimitExceeded and creates nothing, and so is SetSubscriptionAttributes adding one.

Everything else is moto's own behaviour.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import json
import re
import sys
from collections import OrderedDict

from moto.events import utils as events_utils
from moto.server import main
from moto.sns import exceptions as sns_exceptions
from moto.sns import models as sns
from moto.sns import responses as sns_responses


def _subscriptions_of(backend, topic_arn):
    """Every subscription of the topic, whichever account made it, in creation order."""
    found = OrderedDict()
    for account in list(sns.sns_backends.keys()):
        for sub in sns.sns_backends[account][backend.region_name].subscriptions.values():
            if sub.topic.arn == topic_arn:
                found[sub.arn] = sub
    return found


def _list_subscriptions_by_topic(self, topic_arn, next_token=None):
    self.get_topic(topic_arn)  # NotFound as before
    return self._get_values_nexttoken(_subscriptions_of(self, topic_arn), next_token)


sns.SNSBackend.list_subscriptions_by_topic = _list_subscriptions_by_topic


def _publish_to_every_subscription(
    self, message, subject=None, message_attributes=None, group_id=None, deduplication_id=None, message_structure=None
):
    # moto's Topic.publish delivers to its listing's first page only (100 subscriptions); AWS to all.
    message_id = str(sns.mock_random.uuid4())
    for subscription in _subscriptions_of(self.sns_backend, self.arn).values():
        subscription.publish(
            message,
            message_id,
            subject=subject,
            message_attributes=message_attributes,
            group_id=group_id,
            deduplication_id=deduplication_id,
            message_structure=message_structure,
        )
    self.sent_notifications.append((message_id, message, subject, message_attributes, group_id))
    return message_id


sns.Topic.publish = _publish_to_every_subscription

FILTER_POLICIES_PER_TOPIC = 200


class FilterPolicyLimitExceeded(sns_exceptions.SNSException):
    code = "FilterPolicyLimitExceeded"
    message = "Filter policy limit exceeded: a topic holds at most 200 filter policies"


def _filtered_elsewhere(backend, topic_arn, except_endpoint):
    """Subscriptions of the topic (every account's) holding a filter policy, but the endpoint's own."""
    count = 0
    for account in list(sns.sns_backends.keys()):
        for sub in sns.sns_backends[account][backend.region_name].subscriptions.values():
            if sub.topic.arn == topic_arn and sub._filter_policy and sub.endpoint != except_endpoint:
                count += 1
    return count


_subscribe = sns_responses.SNSResponse.subscribe


def _subscribe_within_quota(self):
    attributes = self._get_attributes() or {}
    if attributes.get("FilterPolicy"):
        topic_arn, endpoint = self._get_param("TopicArn"), self._get_param("Endpoint")
        if _filtered_elsewhere(self.backend, topic_arn, endpoint) >= FILTER_POLICIES_PER_TOPIC:
            raise FilterPolicyLimitExceeded()
    return _subscribe(self)


sns_responses.SNSResponse.subscribe = _subscribe_within_quota

_set_attribute = sns.SNSBackend.set_subscription_attributes


def _set_attribute_within_quota(self, arn, name, value):
    if name == "FilterPolicy" and value:
        sub = next((s for s in self.subscriptions.values() if s.arn == arn), None)
        if sub is not None and not sub._filter_policy:
            if _filtered_elsewhere(self, sub.topic.arn, sub.endpoint) >= FILTER_POLICIES_PER_TOPIC:
                raise FilterPolicyLimitExceeded()
    return _set_attribute(self, arn, name, value)


sns.SNSBackend.set_subscription_attributes = _set_attribute_within_quota

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
