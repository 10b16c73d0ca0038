"""Given to locust beside the example's locustfile (``-f locustfile.py,this.py``) by
tests/example/test_tools.py: ends the run once every simulated user has committed an
order, so the run takes as long as the machine needs; ``-t`` stays as the upper bound.
"""

from __future__ import annotations

import sys

import gevent
from locust import events

COMMIT = "/api/sessions/{key}/commit/"


@events.init.add_listener
def stop_once_every_user_committed(environment, **kwargs) -> None:
    committed: set[int] = set()  # the users' greenlets: a request's listener runs in its user's

    def on_request(name: str, exception: BaseException | None, **kw) -> None:
        if name != COMMIT or exception is not None:
            return
        committed.add(id(gevent.getcurrent()))
        if len(committed) == environment.parsed_options.num_users:
            sys.stdout.write(f"every user committed ({len(committed)}): stopping\n")
            gevent.spawn(environment.runner.quit)

    environment.events.request.add_listener(on_request)
