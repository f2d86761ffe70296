"""Store order notifications once, and fetch each order's details with query order."""

import logging

from flask import current_app
from sqlalchemy import select

from app.calllog import redact
from app.extensions import commit_if_new, db
from app.marketplace.client import MarketplaceClient, MarketplaceError
from app.models import OrderNotification, utcnow

log = logging.getLogger(__name__)


def record_notification(order_id: str, order_line_id: str, test: bool) -> OrderNotification:
    """Store a notification; a resend finds the stored one (unique orderId + orderLineId)."""
    notification = OrderNotification(order_id=order_id, order_line_id=order_line_id, test=test)
    db.session.add(notification)
    if commit_if_new():
        return notification
    query = select(OrderNotification).where(
        OrderNotification.order_id == order_id, OrderNotification.order_line_id == order_line_id
    )
    return db.session.scalars(query).one()


def needs_details(notification: OrderNotification) -> bool:
    """Tell whether the order's details are still to be fetched and can be."""
    return notification.fetched_at is None and bool(
        current_app.config.get("KOOGALLERY_AK") and current_app.config.get("KOOGALLERY_SK")
    )


def fetch_details(notification_id: int) -> None:
    """Fetch and store an order's details; a failure is recorded and retried on the next resend."""
    notification = db.session.get(OrderNotification, notification_id)
    client = MarketplaceClient.from_config(current_app.config)
    if notification is None or client is None:
        return
    try:
        order = client.query_order(notification.order_id, notification.order_line_id)
    except MarketplaceError as error:
        notification.fetch_error = str(error.code or error)[:255]
        log.warning("query order %s failed: %s", notification.order_id, notification.fetch_error)
    else:
        # buyerInfo carries the customer's phone and e-mail in clear: keep them out of the table.
        notification.details = redact(order)
        notification.order_type = order.get("orderType")
        notification.fetched_at = utcnow()
        notification.fetch_error = None
    db.session.commit()
