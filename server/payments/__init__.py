"""Paid endpoints (selling) and agent payments (buying) over x402 and MPP; see ``finance.payments``.

The HTTP routes live in ``server.payments.routes`` and are not imported here: ``Services`` imports this package
for ``Payments``, and the routes import the admin helpers, which import ``Services``.
"""

from .service import PaidEndpoint, Payments
from .store import PaymentStore

__all__ = ["PaidEndpoint", "PaymentStore", "Payments"]
