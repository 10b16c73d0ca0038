"""The example's ``runserver``: Django's development server (with the static files of
``django.contrib.staticfiles``) that sends each answer without waiting.

Django's development server writes an answer's headers and its body in two writes. On
a kept-alive connection (a browser's, or the importer's ``requests.Session``) the
kernel holds the second write back until the client acknowledges the first (Nagle's
algorithm), and the client delays that acknowledgement by up to 40 ms: every request
after a connection's first took about 40 ms longer than its work. This app sets
``TCP_NODELAY`` on each connection the server accepts. It is listed first in
``INSTALLED_APPS`` so that its command is the one ``manage.py runserver`` runs.
"""
