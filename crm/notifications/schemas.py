"""The notification resources of ``/api/v1``: a message as the appeal shows it, and the answer to a
provider's delivery report."""
from __future__ import annotations

from crm.api.schemas import Schema, fields, nullable


class CitizenNotificationSchema(Schema):
    id = fields.String(required=True)
    channel = fields.String(required=True, metadata={"description": "sms or email"})
    kind = fields.String(required=True, metadata={"description": "registered, status, incident (code, link: self-service)"})
    purpose = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "logged (written to the outbox only, not sent: no transport configured), queued, scheduled "
                       "(quiet hours), sending, sent, delivered, failed, cancelled"})
    status_label = fields.String(required=True)
    to = nullable(fields.String, metadata={"description": "the recipient, masked"})
    text = nullable(fields.String, metadata={"description": "the text with the citizen-facing comment masked"})
    created_at = fields.String(required=True)
    scheduled_for = nullable(fields.String)
    sent_at = nullable(fields.String)
    delivered_at = nullable(fields.String)
    attempts = fields.Integer(required=True)
    error = nullable(fields.String)


class DeliveryReportAckSchema(Schema):
    ok = fields.Boolean(required=True)
    updated = fields.Boolean(required=True, metadata={"description": "false: no message of this provider has that id"})
    status = nullable(fields.String)
