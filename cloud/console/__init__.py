"""Staff console: server-rendered Japanese pages under ``/console`` for people signed in
with a name and password (roles as in the API: viewer < operator < admin).

The pages call the same managers as the JSON API (:class:`cloud.alerts.AlertManager`,
its maintenance windows, :mod:`cloud.citizen.reports`, :mod:`cloud.api.auth` tokens);
nothing here decides business rules of its own. See ``docs/console.md``.
"""
