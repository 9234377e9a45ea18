"""Commands to devices: the command service, notices to call units, automatic actions
(docs/commands.md). The wire contract is :mod:`schemas.commands`."""
