"""Secret redaction for observed argv: built-in rules in rules.yaml, extensible
by a user file ($XDG_CONFIG_HOME/opensre/redact.yaml). See redactor.py."""

from .redactor import Redactor, default_redactor, user_rules_path

__all__ = ["Redactor", "default_redactor", "user_rules_path"]
