"""Payments against orders: tenders (cash with change, card), tips, split payments,
refunds and what is still due. An optional app: add ``"omniman.contrib.payments"`` to
``INSTALLED_APPS`` (after ``omniman`` and ``omniman_api``) and migrate."""
