"""A local stand-in for the TastyTrade REST API that the pinned SDK can talk to.

Run it with ``senex sim`` or ``python -m services.simulator``; tests use
:class:`services.simulator.server.SimulatorServer`.
"""
