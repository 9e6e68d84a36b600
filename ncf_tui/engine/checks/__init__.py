"""The troubleshooting checks, one module per area; ``ncf_tui.engine.checklist`` runs them.

``base`` holds what every check shares (``CheckResult``, ``ChecklistContext``); ``account`` the account-level
checks (credentials, service role, project, repository, build image); ``model`` the Neo checks; ``build`` the
checks that read the latest build and its log.
"""
