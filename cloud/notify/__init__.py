"""Alert notifications: channels (SMTP e-mail, SMS gateways, webhooks), routing of
alerts to staff contact groups and resident subscribers, message templates,
rate limits, the delivery dispatcher with retries, escalation of unacknowledged
critical alerts, and the CAP 1.2 feed of public alerts.
"""
