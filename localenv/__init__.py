"""The local stand-in for Render: a throwaway PostgreSQL cluster shaped like
Render Postgres (SSL, scram-sha-256, a non-superuser database owner)."""

import os

import ansible.module_utils

# The cluster itself is the product's (module_utils/pg_scratch_cluster.py): reach
# module_utils as Ansible ships it to modules, as ansible.module_utils.<name>.
_MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
