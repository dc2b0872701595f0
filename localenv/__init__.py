"""The local stand-in for Render: a throwaway PostgreSQL cluster shaped like
Render Postgres (SSL, scram-sha-256, a non-superuser database owner)."""
