"""Secret redaction for observed argv: built-in rules in rules.yaml, extensible
by user files ($XDG_CONFIG_HOME/opensre/redact.yaml, --redact-rules). See redactor.py."""

from .redactor import Redactor, default_redactor, redact_rule_files

__all__ = ["Redactor", "default_redactor", "redact_rule_files"]
