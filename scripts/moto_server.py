"""moto_server, with the one AWS behaviour moto 5.2.5 lacks that the tests of several accounts need.

On AWS a topic's subscribers may be in other accounts: a publish reaches every subscription of the
topic, and ListSubscriptionsByTopic lists them all, whichever account subscribed. moto keeps a
subscription in the backend of the account that made it and publishes only to the topic owner's, so a
cross-account subscription never receives anything. This wrapper lists (and so publishes to) the
subscriptions of every account, in the topic's region. Everything else is moto's own behaviour.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import sys
from collections import OrderedDict

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

if __name__ == "__main__":
    main(sys.argv[1:])
