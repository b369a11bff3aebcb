"""Shared code of iics-export-monitor, shipped to Lambda as one layer.

Modules, one concern each:
- errors: the typed errors; their class names are the Step Functions error names.
- validation: parsing untrusted input (job ids, trigger events, monitor overrides).
- config: the typed configuration each function reads once at cold start.
- credentials: IICS credentials from Secrets Manager.
- hosts: which hosts the IICS client may send the password and session id to.
- client: the IICS REST client (login, status, log) on urllib3.
- status: the export status body, parsed, and IICS state values normalised.
- policy: how long to wait before the next poll.
- check: one status check, the logic behind functions/check_status.
- archive: streaming the log to S3.
- outcome: the outcome event detail, the contract users subscribe to.
- submit: one monitor execution per job (the logic behind functions/start_monitor).
- finish: what happens once a job ends (the logic behind functions/archive_log).
- alerts: the facts an alert shows, worded for people (subject and plain text).
- alert_topic: publishing alerts to the SNS alert topic (the logic behind functions/notify_topic).
- slack: the Slack message, the Amazon Q notification and the webhook (behind functions/notify_slack).
- observability: Logger, Tracer and Metrics, created once.
"""
