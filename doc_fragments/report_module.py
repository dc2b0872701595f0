"""Options shared by the report modules, run_report and verify_report (module_utils/report_module.py
builds the matching argument spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  environment:
    description: The environment's name (recovery_environment).
    type: str
    required: true
  inventory:
    description: The C(-i) option(s) of the commands the report names (the run's inventory); empty says
      C(-i <your inventory>).
    type: str
    default: ""
  host:
    description: The inventory host.
    type: str
    required: true
  secrets:
    description: Values that must never appear in a report (database URL and password, API key).
    type: list
    elements: str
    default: []
"""
