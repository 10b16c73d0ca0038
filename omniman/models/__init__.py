from __future__ import annotations

from omniman.models.channel import Channel, ChannelConfig, ChannelGrant
from omniman.models.directive import Directive
from omniman.models.idempotency import IdempotencyKey
from omniman.models.order import Order, OrderEvent, OrderItem, TicketCounter
from omniman.models.session import Session, SessionLine

__all__ = [
    "Channel",
    "ChannelConfig",
    "ChannelGrant",
    "Directive",
    "IdempotencyKey",
    "Order",
    "OrderEvent",
    "OrderItem",
    "Session",
    "SessionLine",
    "TicketCounter",
]
