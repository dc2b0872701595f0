"""Connection options shared by every PostgreSQL module (module_utils/pg_connection.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  database_url:
    description:
      - The database as a URL, C(postgresql://user:password@host:port/db), as Render shows it.
        C(sslmode) and C(sslrootcert) query parameters are honoured; without them SSL is required.
    type: str
  login_host:
    description: Database host (overrides the URL's).
    type: str
  login_port:
    description: Database port (default 5432).
    type: int
  login_user:
    description: Role to connect as; on Render the database owner, never a superuser.
    type: str
  login_password:
    description: Its password.
    type: str
  login_db:
    description: Database name.
    type: str
  ssl_mode:
    description: libpq sslmode (default C(require)).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA certificate to verify the server with.
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
    default: 10
requirements: [psycopg2]
"""
