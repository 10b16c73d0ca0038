"""The admin shows read-only ledgers; its refund action goes through the service."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from omniman.contrib.payments.models import Payment, Refund
from omniman.contrib.payments.services import take_payment
from omniman.models import OrderEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_ledgers_are_read_only(staff, order):
    payment = take_payment(ref=order, method="cash", amount_q=500).result
    page = staff.get(reverse("admin:omniman_payments_payment_change", args=[payment.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert staff.get(reverse("admin:omniman_payments_payment_add")).status_code == 403
    assert staff.get(reverse("admin:omniman_payments_payment_changelist")).status_code == 200
    assert staff.get(reverse("admin:omniman_payments_refund_changelist")).status_code == 200
    staff.post(reverse("admin:omniman_payments_payment_change", args=[payment.pk]), {"amount_q": 1})
    payment.refresh_from_db()
    assert payment.amount_q == 500


def test_the_refund_action_refunds_what_is_left_through_the_service(staff, order):
    paid = take_payment(ref=order, method="cash", amount_q=1000).result
    pending = take_payment(ref=order, method="card", amount_q=750).result
    response = staff.post(reverse("admin:omniman_payments_payment_changelist"), {
        "action": "refund_rest", "_selected_action": [paid.pk, pending.pk],
    }, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert f"Payment {pending.pk}: nothing to refund." in messages and "1 refund(s) made." in messages
    [refund] = Refund.objects.all()
    assert (refund.payment_id, refund.amount_q, refund.status, refund.actor) == (paid.pk, 1000, "done", "root")
    assert OrderEvent.objects.filter(type="refund.done").count() == 1
    assert Payment.objects.count() == 2
