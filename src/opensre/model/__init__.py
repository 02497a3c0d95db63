from .process import PROCESS_FIELDS, SAMPLE_FIELDS, Event, Exec, Host, Process, Run, Sample

__all__ = ["Event", "Exec", "Host", "Process", "Run", "Sample", "PROCESS_FIELDS", "SAMPLE_FIELDS"]
