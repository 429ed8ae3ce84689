"""The run pipeline: every run (a CSV, subscriptions, a reviewed plan, a resume) is
planned into the journal, confirmed once, executed concurrently and summarized.

The flow a command drives:  validate the whole input (``csvinput``) -> select (list
pages for subscriptions) -> confirm -> ``start``: run row and planned payments in the
journal -> ``execute`` -> ``summarize``.  ``execute`` is also what ``--resume`` runs: it
takes the run's planned and in-flight payments, so finished ones are never touched.

Invariants:
- At most ``concurrency`` payments are in flight; each account's requests pass its
  client-side rate limiter (in ``httpclient``).
- A payment's ``in_flight`` mark is committed before its cancel is sent; ``done`` after.
- CSV rows are cancelled first (no read) where the adapter declares
  ``Capability.CANCEL_FIRST`` and nothing needs the before state (the engine decides
  per payment); ``--read-first`` reads every payment first.  The run's options keep the
  mode, so a resume follows it.
- On ``stop`` (Ctrl-C, SIGTERM, a closed standard output: see ``pipes``) no new payment
  starts; those in flight finish and are recorded.
- A journal failure stops the run (fail closed) and is raised after in-flight work ends;
  any other unexpected exception fails its one payment and the run goes on.
- After an account's credentials are rejected, its remaining payments fail without a
  request.
- Each account has a circuit breaker (``breaker``): once it opens, the account's
  payments not yet started end without a request as transient failures
  (``circuit_open``), so a dead provider ends the run promptly with exit 5.
"""
