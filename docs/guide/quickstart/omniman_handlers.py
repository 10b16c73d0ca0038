# counter/omniman_handlers.py: omniman imports this module of every installed app at start-up.
from omniman.registry import registry


# A directive handler: runs after the commit that queued it (in this process, or in a
# Celery worker), gets the directive (topic, payload) and a context with the attempt.
@registry.handler("receipt.print")
def print_receipt(directive, ctx):
    print(f"receipt for {directive.payload['order_ref']} (attempt {ctx.attempt})", flush=True)
