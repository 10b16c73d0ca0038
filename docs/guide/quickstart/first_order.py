# python manage.py shell < first_order.py
from omniman.models import Channel
from omniman.services.commit import commit_session
from omniman.services.orders import transition_order
from omniman.services.sessions import create_session, modify_session

Channel.objects.update_or_create(
    code="counter",
    defaults={
        "name": "Counter",
        "currency": "EUR",
        "config": {
            "pricing_policy": "external",  # the terminal sends the prices
            "post_commit_directives": ["receipt.print"],
            "initial_status": "new",
            "order_flow": {"new": ["served", "cancelled"], "served": [], "cancelled": []},
        },
    },
)

create_session(channel="counter", session_key="TABLE-1")
session = modify_session(
    channel="counter",
    session_key="TABLE-1",
    ops=[
        {"op": "add_line", "sku": "COFFEE", "qty": 2, "unit_price_q": 250},
        {"op": "add_line", "sku": "CAKE", "qty": "0.5", "unit_price_q": 1200},
    ],
)
print("rev", session.rev, "total_q", session.total_q)

result = commit_session(channel="counter", session_key="TABLE-1", idempotency_key="TABLE-1-COMMIT")
print("order", result.order_ref, "total_q", result.body["total_q"], "status", result.body["status"])

again = commit_session(channel="counter", session_key="TABLE-1", idempotency_key="TABLE-1-COMMIT")
print("replayed", again.replayed, again.order_ref == result.order_ref)

order = transition_order(ref=result.order_ref, to="served")
print("status", order.status)
