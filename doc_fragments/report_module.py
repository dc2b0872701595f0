"""Options shared by the report modules, run_report and verify_report (module_utils/report_module.py
builds the matching argument spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  environment:
    description: The environment's name (recovery_environment).
    type: str
    required: true
  commands:
    description:
      - The command lines the report names, composed by the role from this project's playbooks and the
        run's inventory (module_utils spells none of them); a missing one reads C(<the NAME command>).
      - run_report reads C(recover), C(reopen) (maintenance off), C(maintenance_on), C(verify), C(backup),
        C(rotate), C(restore), C(restore_path) (the option naming a backup, followed by its path) and
        C(scheduling) (where the scheduling examples are); verify_report reads C(backup).
    type: dict
    default: {}
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
