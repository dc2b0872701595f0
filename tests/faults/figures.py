"""The suite's measured figures, one row per fault, for the README's "Faults" table."""

from __future__ import annotations

import json
import os
import threading


class Figures:
    def __init__(self):
        self.rows: dict[str, dict] = {}
        self.lock = threading.Lock()

    def record(self, fault: str, **figures) -> None:
        """Add to a fault's figures: numbers add up, lists extend, anything else is replaced,
        except max_* which keep their maximum."""
        with self.lock:
            row = self.rows.setdefault(fault, {})
            for name, value in figures.items():
                old = row.get(name)
                if old is None:
                    row[name] = value
                elif name.startswith("max_"):
                    row[name] = max(old, value)
                elif isinstance(value, bool) or not isinstance(value, int | float | list):
                    row[name] = value
                else:
                    row[name] = old + value

    def merge(self, rows: dict[str, dict]) -> None:
        """Add another process's rows (a pytest-xdist worker's) with record's rules."""
        for fault, figures in rows.items():
            self.record(fault, **figures)

    def markdown(self) -> str:
        lines = ["| fault | figures |", "|---|---|"]
        for fault in sorted(self.rows):
            shown = ", ".join(f"{k} {v}" for k, v in sorted(self.rows[fault].items()))
            lines.append(f"| {fault} | {shown} |")
        return "\n".join(lines)

    def write(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("# Fault suite figures\n\n" + self.markdown() + "\n")
        with open(os.path.splitext(path)[0] + ".json", "w") as handle:
            json.dump(self.rows, handle, indent=2, sort_keys=True)


def write_figures(config, collected: Figures) -> None:
    """Write the summary (FAULTS_SUMMARY or reports/faults-summary.md) and keep it for the
    terminal summary."""
    path = os.environ.get("FAULTS_SUMMARY") or str(config.rootpath / "reports" / "faults-summary.md")
    collected.write(path)
    config._faults_summary = (path, collected.markdown())


def terminal_summary(terminalreporter, config) -> None:
    found = getattr(config, "_faults_summary", None)
    if found:
        terminalreporter.write_sep("=", f"fault suite figures ({found[0]})")
        terminalreporter.write_line(found[1])
