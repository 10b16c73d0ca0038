# python manage.py shell < order.py  (a commit on the quickstart's channel)
from omniman.services.commit import commit_session
from omniman.services.sessions import create_session, modify_session

session = create_session(channel="counter")
modify_session(
    channel="counter",
    session_key=session.session_key,
    ops=[{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 250}],
)
result = commit_session(channel="counter", session_key=session.session_key)
print("order", result.order_ref)
