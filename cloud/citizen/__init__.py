"""The thin citizen module: server-rendered Japanese HTML pages for residents (alert
subscriptions, problem reports, a procedure guide, the current flood status) under
``/citizen`` (:mod:`cloud.citizen.routes`) and the staff API that triages reports
(:mod:`cloud.citizen.staff`). Pages work without JavaScript and follow the JIS X 8341-3
(WCAG 2.1 AA) basics.
"""
