"""The broker adapter: the only code that talks to TastyTrade (through the ``tastytrade`` SDK).

Services call `BrokerAdapter`; credentials come from the `CredentialsVault`. Nothing
outside this package imports ``tastytrade``.
"""
