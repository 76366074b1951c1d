"""Notifications that reach people: message formats (pure) and delivery (SMTP, Teams, Slack, webhooks)."""
