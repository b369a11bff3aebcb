"""Publish alerts to the SNS alert topic: the logic behind ``functions/notify_topic``.

The alert rule (template.yaml) sends each outcome that needs a person here. SNS cannot take a subject
from an EventBridge input transformer, so this small step words the subject and body for people,
or, with ``AlertFormat: amazon-q``, publishes the Amazon Q Developer custom-notification JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from iics_monitor.alerts import Alert, subject, text_body
from iics_monitor.config import require_env
from iics_monitor.errors import ConfigError
from iics_monitor.observability import logger, metrics
from iics_monitor.slack import amazon_q_message

FORMATS = ("text", "amazon-q")
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class TopicConfig:
    """What functions/notify_topic needs."""

    topic_arn: str
    format: str

    @property
    def region(self) -> str:
        return self.topic_arn.split(":")[3]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TopicConfig:
        topic_arn = require_env(env, "ALERT_TOPIC_ARN")
        if not _TOPIC_ARN.fullmatch(topic_arn):
            raise ConfigError("environment variable ALERT_TOPIC_ARN is not an SNS topic ARN")
        fmt = require_env(env, "ALERT_FORMAT")
        if fmt not in FORMATS:
            raise ConfigError(f"environment variable ALERT_FORMAT must be one of {', '.join(FORMATS)}")
        return cls(topic_arn=topic_arn, format=fmt)


def publish_alert(event: Mapping[str, Any], *, sns: Any, config: TopicConfig) -> dict[str, str]:
    """Publish one outcome event to the alert topic; return the SNS message id."""
    alert = Alert.from_event(event)
    logger.set_correlation_id(alert.job_id)
    if config.format == "amazon-q":
        message = json.dumps(amazon_q_message(event, config.region))
    else:
        message = text_body(alert, config.region)
    published = sns.publish(TopicArn=config.topic_arn, Subject=subject(alert), Message=message)
    metrics.add_metric(name="AlertsPublished", unit=MetricUnit.Count, value=1)
    return {"messageId": published["MessageId"]}
