"""Connections the database tests open as the app's owner role."""

import psycopg2


def app_conn(url):
    """A connection with transactions, as the module uses it."""
    conn = psycopg2.connect(url)
    conn.autocommit = False
    return conn


def dbname(url: str) -> str:
    return psycopg2.extensions.parse_dsn(url)["dbname"]
