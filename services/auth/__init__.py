"""Identity and permissions: users, groups, API tokens, OIDC, grants, and the checks the
gateway makes with them (docs/security.md)."""
