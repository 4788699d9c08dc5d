"""The trading rules every service applies, in one place (pure, no I/O).

What a Trident is worth and costs, how its orders look, and how an order's status moves:
one definition each, shared by strategy, risk, execution, the position monitor and the
gateway so a rule can never drift between the service that proposes a trade and the one
that places it. Imports only `libs.contracts`, the standard library and pure computation
libraries (see docs/decisions/0001-domain-package.md).

- `money`: the tick, the contract multiplier, marketable rounding, closing debits;
- `trident`: max risk, the ratio unit, opening and closing legs, the opening order
  request that risk's dry run checks and execution places;
- `orders`: the order request and the client tags that name a decision at the broker;
- `lifecycle`: the order transitions table and the status an event means.
"""
