from .process import PROCESS_FIELDS, Exec, Host, Process, Run

__all__ = ["Exec", "Host", "Process", "Run", "PROCESS_FIELDS"]
